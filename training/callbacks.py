"""Training callbacks in the State / Control / Callback shape of transformers' Trainer.

The loop owns a :class:`TrainerState` (what happened) and a :class:`TrainerControl` (what to do
next); callbacks read the state and set flags on the control. Adversarial augmentation and
privacy accounting plug in here without touching the loop.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from guard.data import TextDataset


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


class TrainerCallback:
    """Base callback: override the events you need. Every event gets the state and the control."""

    def bind(self, trainer: Any) -> None:
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
