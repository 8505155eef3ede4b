"""Training callbacks in the State / Control / Callback shape of transformers' Trainer.

The loop owns a :class:`TrainerState` (what happened) and a :class:`TrainerControl` (what to do
next); callbacks read the state and set flags on the control. A callback that needs the model
or the data gets them once, in a :class:`TrainingContext`, never the trainer itself (as
transformers hands its callbacks the objects they may use). Adversarial augmentation
(:mod:`training.adversarial`) and privacy accounting (:class:`PrivacyBudgetCallback`) plug in
here without touching the loop.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from guard.data import TextDataset
    from guard.models.synonym_encoding import SynonymEncoder
    from guard.models.word_recognition import WordRecognizer
    from training.config import TrainConfig
    from training.distributed import DistributedContext


@dataclass
class TrainerState:
    """Mutable record of a training run.

    Attributes:
        epoch: Epochs completed.
        global_step: Optimiser steps taken.
        max_steps: Steps planned for the whole run.
        best_metric: Best validation accuracy so far.
        best_epoch: Epoch that reached it.
        log_history: One dict per epoch with its losses and metrics.
        augmented: Extra examples trained on in the current epoch besides the training data
            (set by callbacks in ``on_epoch_begin``, e.g. adversarial examples).
        augmented_sources: For each augmented example, the index of the training example it
            was derived from (private training keeps the two in one per-sample gradient).
    """

    epoch: int = 0
    global_step: int = 0
    max_steps: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    log_history: list[dict[str, float]] = field(default_factory=list)
    augmented: TextDataset | None = None
    augmented_sources: list[int] | None = None


@dataclass
class TrainerControl:
    """Flags callbacks set to steer the loop."""

    should_stop: bool = False


@dataclass(frozen=True)
class TrainingContext:
    """What a training run works on, handed once to each of its callbacks.

    Attributes:
        model: The model being trained (in training or evaluation mode as the loop left it; a
            callback that switches it to evaluation mode switches it back).
        tokenizer: Its tokenizer.
        train: The training rows.
        validation: The validation rows.
        config: The run's settings.
        distributed: This process's place in a data-parallel run.
        word_recognizer: The recogniser every text passes through before tokenization, if any.
        synonym_encoder: The synonym encoder every text passes through after it, if any.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    train: TextDataset
    validation: TextDataset
    config: TrainConfig
    distributed: DistributedContext
    word_recognizer: WordRecognizer | None = None
    synonym_encoder: SynonymEncoder | None = None


class TrainerCallback:
    """Base callback: override the events you need. Every event gets the state and the control."""

    def bind(self, context: TrainingContext) -> None:
        """Called once by the trainer it is given to (callbacks that need the model keep it)."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state to save with a resumable checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def on_train_begin(self, state: TrainerState, control: TrainerControl) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, state: TrainerState, control: TrainerControl) -> None:
        """Before each epoch."""

    def on_step_end(self, state: TrainerState, control: TrainerControl, *, loss: float,
                    correct: int, seen: int) -> None:
        """After each optimiser step, with that batch's loss and correct-prediction count."""

    def on_metrics(self, state: TrainerState, control: TrainerControl, *,
                   metrics: dict[str, float]) -> None:
        """After validation, before the epoch's figures are logged: add your own to ``metrics``.

        ``metrics`` holds the epoch's ``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``
        and ``examples``; the loop adds ``seconds`` after this event.
        """

    def on_evaluate(self, state: TrainerState, control: TrainerControl, *,
                    metrics: dict[str, float]) -> None:
        """After validation at the end of an epoch."""

    def on_epoch_end(self, state: TrainerState, control: TrainerControl) -> None:
        """After each epoch (and its validation)."""

    def on_train_end(self, state: TrainerState, control: TrainerControl) -> None:
        """After the last epoch."""


class EarlyStoppingCallback(TrainerCallback):
    """Stop when validation accuracy has not improved by ``min_delta`` for ``patience`` epochs."""

    def __init__(self, *, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.stale_epochs = 0
        self._best: float | None = None

    def state_dict(self) -> dict[str, Any]:
        """Epochs without improvement and the best score so far."""
        return {"stale_epochs": self.stale_epochs, "best": self._best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters."""
        self.stale_epochs = int(state["stale_epochs"])
        self._best = state["best"]

    def on_evaluate(self, state: TrainerState, control: TrainerControl, *,
                    metrics: dict[str, float]) -> None:
        """Count epochs without improvement and stop after ``patience`` of them."""
        score = metrics["val_accuracy"]
        if self._best is None or score > self._best + self.min_delta:
            self._best = score
            self.stale_epochs = 0
        else:
            self.stale_epochs += 1
            if self.stale_epochs >= self.patience:
                control.should_stop = True


class ProgressCallback(TrainerCallback):
    """A tqdm progress bar over all steps: the epoch's running loss and accuracy, epsilon spent."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._loss = 0.0
        self._correct = 0
        self._seen = 0
        self._epsilon: float | None = None

    def on_train_begin(self, state: TrainerState, control: TrainerControl) -> None:
        """Open the bar."""
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train",
                         unit="step", file=sys.stderr, disable=not self.enabled,
                         dynamic_ncols=True)

    def on_epoch_begin(self, state: TrainerState, control: TrainerControl) -> None:
        """Reset the running figures."""
        self._loss, self._correct, self._seen = 0.0, 0, 0
        if self._bar is not None:
            self._bar.set_description(f"train epoch {state.epoch + 1}")

    def on_step_end(self, state: TrainerState, control: TrainerControl, *, loss: float,
                    correct: int, seen: int) -> None:
        """Advance and show the epoch's running loss and accuracy."""
        self._loss += loss * seen
        self._correct += correct
        self._seen += seen
        if self._bar is not None:
            if self._bar.n >= self._bar.total:  # an epoch enlarged with adversarial examples
                self._bar.total = self._bar.n + 1
            self._bar.update(1)
            figures = {"loss": f"{self._loss / self._seen:.3f}",
                       "acc": f"{self._correct / self._seen:.3f}"}
            if self._epsilon is not None:
                figures["eps"] = f"{self._epsilon:.2f}"
            self._bar.set_postfix(figures)

    def on_evaluate(self, state: TrainerState, control: TrainerControl, *,
                    metrics: dict[str, float]) -> None:
        """Print the epoch's validation figures (and epsilon spent so far) under the bar."""
        self._epsilon = metrics.get("epsilon", self._epsilon)
        if self._bar is not None and self.enabled:
            spent = "" if self._epsilon is None else f", epsilon {self._epsilon:.3f}"
            self._bar.write(
                f"epoch {state.epoch}: train loss {metrics['train_loss']:.4f}, "
                f"val loss {metrics.get('val_loss', float('nan')):.4f}, "
                f"val accuracy {metrics['val_accuracy']:.4f}{spent}"
            )

    def on_train_end(self, state: TrainerState, control: TrainerControl) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()


class PrivacyBudgetCallback(TrainerCallback):
    """Records epsilon spent after every epoch and stops the run once the budget is spent.

    The private trainer registers it once Opacus is wired up. After each epoch it asks the
    accountant (the releases before DP-SGD and every DP-SGD step so far) for epsilon at
    ``delta``, keeps it, and adds it to the epoch's figures as ``epsilon`` (the progress bar
    and the manifest's history show it); without noise no epsilon holds and ``None`` is kept.
    Its state, saved with a resumable checkpoint, holds the epsilons and the accountant's
    history, so a resumed run accounts for the epochs before the interruption.

    Args:
        accountant: The Opacus accountant DP-SGD's optimiser reports its steps to.
        delta: The delta epsilon is reported at.
        budget: The epsilon to stop at (``None``: a fixed noise, no stop).
        bounded: ``False`` when nothing is noised (no DP-SGD noise, or a noiseless release).

    Attributes:
        epsilons: Epsilon spent after each epoch trained (``None``: unbounded).
    """

    def __init__(self, *, accountant: Any, delta: float, budget: float | None,
                 bounded: bool) -> None:
        self.accountant = accountant
        self.delta = delta
        self.budget = budget
        self.bounded = bounded
        self.epsilons: list[float | None] = []

    def spent(self) -> float | None:
        """Epsilon spent so far (``None``: unbounded, nothing was noised)."""
        from training.accounting import accountant_epsilon

        return accountant_epsilon(self.accountant, self.delta) if self.bounded else None

    def state_dict(self) -> dict[str, Any]:
        """The epsilons so far and the accountant's history."""
        accountant = self.accountant.state_dict()
        return {"epsilons": self.epsilons, "accountant_history": accountant["history"],
                "accountant_mechanism": accountant["mechanism"]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the epsilons and the accountant's history."""
        self.epsilons = list(state["epsilons"])
        self.accountant.load_state_dict({
            "history": [tuple(entry) for entry in state["accountant_history"]],
            "mechanism": state["accountant_mechanism"]})

    def on_metrics(self, state: TrainerState, control: TrainerControl, *,
                   metrics: dict[str, float]) -> None:
        """Record epsilon, show it with the epoch's figures, stop once the budget is spent."""
        epsilon = self.spent()
        self.epsilons.append(epsilon)
        if epsilon is None:
            return
        metrics["epsilon"] = epsilon
        if self.budget is not None and epsilon >= self.budget - 1e-6:
            control.should_stop = True  # the budget is spent
