"""One training loop for sequence classifiers, steered by callbacks."""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from guard.data import TextDataset
from guard.errors import ConfigError, DataError
from training.callbacks import TrainerCallback, TrainerControl, TrainerState, TrainingContext
from training.config import TrainConfig
from training.distributed import DistributedContext
from training.resume import (
    TrainingState,
    python_numpy_rng_state,
    restore_python_numpy_rng_state,
    save_training_state,
)

if TYPE_CHECKING:
    import torch
    from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

    from guard.models.substitution_smoothing import SubstitutionSmoother
    from guard.models.synonym_encoding import SynonymEncoder
    from guard.models.word_recognition import WordRecognizer
    from training.convex_substitution import ConvexSubstitutionAdversary


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) random generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Batch:
    """This process's rows of one training batch.

    Attributes:
        index: The batch's position in the epoch.
        count: Batches in the epoch.
        texts: The rows' texts.
        labels: Their labels.
        loss_weight: What the batch's mean loss is scaled by before the backward pass: under
            ``DistributedDataParallel``, which averages gradients over processes, it makes the
            result the global batch's mean whatever the split (exactly 1 in one process).
        sources: For each row, the position among the batch's records of the training record it
            belongs to (private training folds a record's rows into one per-sample gradient;
            the records' own rows come first); ``None``: every row is its own record.
    """

    index: int
    count: int
    texts: list[str]
    labels: list[str]
    loss_weight: float = 1.0
    sources: list[int] | None = None

    @property
    def records(self) -> int:
        """Training records in the batch (rows derived from a record count with it)."""
        return len(self.texts) if self.sources is None else len(set(self.sources))


@dataclass(frozen=True)
class StepResult:
    """What one gradient step reports: the batch's mean loss and its correct predictions.

    Attributes:
        loss: Mean loss over the batch's rows.
        correct: Correct predictions among the records' rows.
        seen: Records trained on (this process's).
    """

    loss: float
    correct: int
    seen: int


class Trainer:
    """Fine-tunes a sequence classifier with AdamW, linear warm-up/decay and dynamic padding.

    After each epoch it measures validation loss and accuracy, keeps the best weights in memory
    and restores them at the end, so the returned model is the best validated one. With a
    ``state_dir`` it saves a resumable state every ``config.checkpoint_every`` epochs; a trainer
    built with ``resume_from`` continues such a run and ends with the same weights as a run that
    was never interrupted.

    Under ``torchrun`` (a ``distributed`` context with several processes) the model is wrapped
    in ``DistributedDataParallel``; each process takes its share of every global batch of
    ``config.batch_size`` rows and the losses are weighted so that the averaged gradient is the
    global batch's mean, as in one process. Evaluation is sharded too; only rank 0 saves.

    There is one epoch loop (:meth:`train`); a subclass changes how a run is set up
    (:meth:`_setup`), how an epoch is cut into batches (:meth:`_batches`) and the gradient step
    on each batch (:meth:`_train_step`), and may finish the model after training
    (:meth:`_finish`). The private trainer (:mod:`training.privacy`) changes exactly those.

    Args:
        model: A ``transformers`` sequence-classification model whose ``config.label2id`` covers
            every training label.
        tokenizer: Its tokenizer.
        train: Training rows.
        validation: Validation rows, used for early stopping and model selection.
        config: Hyper-parameters.
        callbacks: Event handlers (progress bar, early stopping, ...).
        state_dir: Where to save resumable training states (``None``: never).
        resume_from: A saved state to continue from.
        distributed: This process's place in a data-parallel run (default: one process).
        word_recognizer: Corrects every text before tokenization, in training and evaluation
            alike (``config.word_recognition``).
        smoother: SAFER's randomised substitution (``config.substitution_defence``): each
            training row is read as one perturbed copy, drawn anew every epoch (the base
            classifier of Ye et al. 2020); evaluation reads the texts as they are.
        synonym_encoder: SEM's synonym encoding, applied to every text after the recogniser,
            in training and evaluation alike.
        convex_adversary: ASCC (``config.substitution_defence="ascc"``): each training batch's
            loss adds the divergence under the worst convex combination of synonyms found
            (:mod:`training.convex_substitution`).
    """

    #: Messages of ``UserWarning`` s that training silences (a subclass's known noise).
    _ignored_warnings: tuple[str, ...] = ()

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        train: TextDataset,
        validation: TextDataset,
        config: TrainConfig,
        callbacks: Sequence[TrainerCallback] = (),
        state_dir: Path | None = None,
        resume_from: TrainingState | None = None,
        distributed: DistributedContext | None = None,
        word_recognizer: WordRecognizer | None = None,
        smoother: SubstitutionSmoother | None = None,
        synonym_encoder: SynonymEncoder | None = None,
        convex_adversary: ConvexSubstitutionAdversary | None = None,
    ) -> None:
        self.model = model
        self.convex_adversary = convex_adversary
        self.word_recognizer = word_recognizer
        self.smoother = smoother
        self.synonym_encoder = synonym_encoder
        self.dist = distributed or DistributedContext()
        self.tokenizer = tokenizer
        self.train_data = train
        self.validation = validation
        self.config = config
        self.callbacks: list[TrainerCallback] = []
        self.state_dir = state_dir
        self.resume_from = resume_from
        self.label2id: dict[str, int] = {
            str(k): int(v) for k, v in (model.config.label2id or {}).items()
        }
        unknown = sorted(set(train.labels) - set(self.label2id))
        if unknown:
            raise DataError(f"training labels {unknown} are not among the model's labels")
        self.state = TrainerState()
        self.control = TrainerControl()
        import torch

        self._best: dict[str, torch.Tensor] | None = None
        self._order_rng = torch.Generator()
        # generators whose states a resumable checkpoint keeps (subclasses add theirs)
        self._generators: dict[str, torch.Generator] = {"order_rng": self._order_rng}
        self._optimizer: Any = None
        self._scheduler: Any = None
        self._forward: Any = model  # what training batches run through (DDP-wrapped if sharded)
        self._virtual_step = 0.0
        self.context = TrainingContext(
            model=model, tokenizer=tokenizer, train=train, validation=validation, config=config,
            distributed=self.dist, word_recognizer=word_recognizer,
            synonym_encoder=synonym_encoder)
        for callback in callbacks:
            self.add_callback(callback)

    def add_callback(self, callback: TrainerCallback, *, first: bool = False) -> None:
        """Hand ``callback`` the run's context and add it (``first``: before the others)."""
        callback.bind(self.context)
        self.callbacks.insert(0 if first else len(self.callbacks), callback)

    def _encode(self, texts: Sequence[str], *, training: bool = False) -> BatchEncoding:
        """Tokenize after the recogniser, the encoder and (``training``) a smoother's draw."""
        if self.word_recognizer is not None:
            texts = [self.word_recognizer.correct(text) for text in texts]
        if self.synonym_encoder is not None:
            texts = [self.synonym_encoder.encode(text) for text in texts]
        if training and self.smoother is not None:
            # Seeded by the row's text and the epoch alone: a resumed run draws the same
            # copies, and in private training a record's copy depends on that record only.
            salt = f"train:{self.config.seed}:{self.state.epoch}"
            texts = [self.smoother.perturb(text, salt=salt) for text in texts]
        batch = self.tokenizer(list(texts), padding=True, truncation=True,
                               max_length=self.config.max_length, return_tensors="pt")
        # a BatchEncoding (not a plain dict): it still knows each token's word (ASCC)
        return cast("BatchEncoding", batch.to(self.model.device))

    def _targets(self, labels: Sequence[str]) -> torch.Tensor:
        import torch

        return torch.tensor([self.label2id[label] for label in labels], device=self.model.device)

    def evaluate(self, data: TextDataset) -> tuple[float, float]:
        """Mean loss and accuracy of the current model on ``data`` (every process must call)."""
        import torch

        self.model.eval()
        total_loss, correct = 0.0, 0
        order = self.dist.shard(sorted(range(len(data)), key=lambda i: len(data.texts[i])))
        size = max(self.config.batch_size, 64)
        with torch.inference_mode():
            for start in range(0, len(order), size):
                idx = order[start : start + size]
                targets = self._targets([data.labels[i] for i in idx])
                out = self.model(**self._encode([data.texts[i] for i in idx]), labels=targets)
                total_loss += float(out.loss) * len(idx)
                correct += int((out.logits.argmax(-1) == targets).sum())
        total_loss, all_correct = self.dist.sum([total_loss, correct])
        return total_loss / len(data), all_correct / len(data)

    def _emit(self, event: str, **kwargs: object) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self.state, self.control, **kwargs)

    # --- the parts a private trainer replaces -------------------------------------------

    def _setup(self) -> None:
        """Build the optimiser and the schedule; set ``state.max_steps``."""
        import torch
        from transformers import get_linear_schedule_with_warmup

        cfg = self.config
        steps_per_epoch = math.ceil(len(self.train_data) / cfg.batch_size)
        self.state.max_steps = steps_per_epoch * cfg.epochs
        no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self._optimizer = torch.optim.AdamW([
            {"params": [p for n, p in named if not n.endswith(no_decay)],
             "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
        ], lr=cfg.learning_rate)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device = self.model.device
            self._forward = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        # Linear warm-up and decay as in transformers, driven by progress through the epochs,
        # so epochs enlarged with adversarial examples keep the planned shape. With plain
        # epochs the virtual step is exactly the optimiser step count.
        shape = get_linear_schedule_with_warmup(
            self._optimizer, int(cfg.warmup_ratio * self.state.max_steps), self.state.max_steps
        ).lr_lambdas[0]
        self._scheduler = torch.optim.lr_scheduler.LambdaLR(
            self._optimizer, lambda _: float(shape(self._virtual_step)))

    def _batches(self) -> Iterator[Batch]:
        """The epoch's batches: the training data plus ``state.augmented``, shuffled, sharded."""
        import torch

        cfg = self.config
        texts, labels = list(self.train_data.texts), list(self.train_data.labels)
        if self.state.augmented is not None:
            texts += self.state.augmented.texts
            labels += self.state.augmented.labels
        n = len(texts)
        count = math.ceil(n / cfg.batch_size)
        perm = torch.randperm(n, generator=self._order_rng).tolist()
        for index, start in enumerate(range(0, n, cfg.batch_size)):
            batch_rows = perm[start : start + cfg.batch_size]
            idx = self.dist.shard(batch_rows)
            yield Batch(index=index, count=count, texts=[texts[i] for i in idx],
                        labels=[labels[i] for i in idx],
                        loss_weight=len(idx) * self.dist.world_size / len(batch_rows))

    def _train_step(self, batch: Batch) -> StepResult | None:
        """Forward, backward, clip, step the optimiser and the schedule, clear the gradients.

        Returns ``None`` for an empty local batch (fewer rows than processes), which still
        takes part in the gradient exchange.
        """
        if not batch.texts:
            self._forward(**self._encode([""])).logits.sum().mul(0.0).backward()
            self._optimizer_step(batch)
            return None
        targets = self._targets(batch.labels)
        encoding = self._encode(batch.texts, training=True)
        if self.convex_adversary is not None:
            loss, logits = self.convex_adversary.loss(self.model, self._forward, encoding,
                                                      targets)
        else:
            out = self._forward(**encoding, labels=targets)
            loss, logits = out.loss, out.logits
        (loss * batch.loss_weight).backward()
        self._optimizer_step(batch)
        return StepResult(loss=float(loss.detach()),
                          correct=int((logits.argmax(-1) == targets).sum()),
                          seen=len(batch.texts))

    def _optimizer_step(self, batch: Batch) -> None:
        import torch

        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self._optimizer.step()
        steps_per_epoch = math.ceil(len(self.train_data) / self.config.batch_size)
        self._virtual_step = ((self.state.epoch * batch.count + batch.index + 1)
                              * steps_per_epoch / batch.count)
        self._scheduler.step()
        self._optimizer.zero_grad(set_to_none=True)

    def _finish(self) -> None:
        """After training, with the best weights loaded (e.g. fold a training-only head)."""

    # --- the loop ------------------------------------------------------------------------

    def _enter_train_mode(self) -> None:
        """Training mode, except blocks whose parameters are all frozen (they stay in eval).

        Dropout in a frozen block only adds noise to the features the trained layers see, and
        differs from what they see at inference (private training freezes most of the model;
        DP-SGD already brings all the noise it needs). A model trained whole is all in
        training mode.
        """
        self.model.train()
        for module in self.model.modules():
            parameters = list(module.parameters(recurse=True))
            if parameters and not any(p.requires_grad for p in parameters):
                module.eval()

    def _train_epoch(self) -> tuple[float, int]:
        """One pass over the epoch's batches; (loss sum, records) over all processes."""
        epoch_loss, seen = 0.0, 0
        for batch in self._batches():
            result = self._train_step(batch)
            self.state.global_step += 1
            if result is None:
                continue
            epoch_loss += result.loss * result.seen
            seen += result.seen
            self._emit("on_step_end", loss=result.loss, correct=result.correct,
                       seen=result.seen)
        total_loss, total_seen = self.dist.sum([epoch_loss, seen])
        return total_loss, int(total_seen)

    def train(self) -> TrainerState:
        """Run the loop; returns the final state (``best_metric`` is the validation accuracy)."""
        with warnings.catch_warnings():
            for message in self._ignored_warnings:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            return self._run()

    def _run(self) -> TrainerState:
        cfg = self.config
        seed_everything(cfg.seed + self.dist.rank)  # dropout masks differ between processes
        self._order_rng.manual_seed(cfg.seed)  # the batch order is the same everywhere
        self._setup()
        if self.resume_from is not None:
            self._restore(self.resume_from)
        self._emit("on_train_begin")
        while self.state.epoch < cfg.epochs and not self.control.should_stop:
            self.state.augmented = None
            self.state.augmented_sources = None
            started = time.perf_counter()
            self._emit("on_epoch_begin")
            self._enter_train_mode()
            epoch_loss, seen = self._train_epoch()
            val_loss, val_accuracy = self.evaluate(self.validation)
            self.state.epoch += 1
            metrics = {"epoch": float(self.state.epoch), "train_loss": epoch_loss / max(seen, 1),
                       "val_loss": val_loss, "val_accuracy": val_accuracy,
                       "examples": float(seen)}
            self._emit("on_metrics", metrics=metrics)
            metrics["seconds"] = round(time.perf_counter() - started, 3)
            self.state.log_history.append(metrics)
            if self.state.best_metric is None or val_accuracy > self.state.best_metric:
                self.state.best_metric = val_accuracy
                self.state.best_epoch = self.state.epoch
                self._best = copy.deepcopy({k: v.detach().cpu() for k, v in
                                            self.model.state_dict().items()})
            self._emit("on_evaluate", metrics=metrics)
            self._emit("on_epoch_end")
            if (self.state_dir is not None and cfg.checkpoint_every
                    and self.state.epoch % cfg.checkpoint_every == 0
                    and self.state.epoch < cfg.epochs and not self.control.should_stop):
                self._save(self.state_dir)
        if self._best is not None:
            self.model.load_state_dict(self._best)
        self.model.eval()
        self._emit("on_train_end")
        self._finish()
        return self.state

    def _save(self, folder: Path) -> None:
        """Save a resumable state (rank 0 writes; every process must call)."""
        import torch

        per_rank = self.dist.gather({"rng": python_numpy_rng_state(),
                                     "torch_rng": torch.get_rng_state()})
        if not self.dist.is_main:
            return
        weights = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self._best is not None:
            weights.update({f"best.{k}": v for k, v in self._best.items()})
        meta = {
            "config": self.config.model_dump(),
            "epoch": self.state.epoch, "global_step": self.state.global_step,
            "best_metric": self.state.best_metric, "best_epoch": self.state.best_epoch,
            "log_history": self.state.log_history,
            "world_size": self.dist.world_size,
            "rng": [entry["rng"] for entry in per_rank],
            "callbacks": [{"kind": type(cb).__name__, "state": cb.state_dict()}
                          for cb in self.callbacks],
            "virtual_step": self._virtual_step,
        }
        tensors = {"optimizer": self._optimizer.state_dict(),
                   "torch_rng": [entry["torch_rng"] for entry in per_rank],
                   **{name: generator.get_state()
                      for name, generator in self._generators.items()}}
        if self._scheduler is not None:
            tensors["scheduler"] = self._scheduler.state_dict()
        save_training_state(folder, meta=meta, weights=weights, optimizer=tensors)

    def _restore(self, saved: TrainingState) -> None:
        import torch

        meta = saved.meta
        changed = sorted(k for k, v in self.config.model_dump().items()
                         if k != "device" and meta["config"].get(k) != v)
        if changed:
            raise ConfigError(f"the saved training state was made with other settings "
                              f"({', '.join(changed)}); resume with the same settings")
        if meta["world_size"] != self.dist.world_size:
            raise ConfigError(f"the saved training state comes from {meta['world_size']} "
                              f"process(es); resume with as many (torchrun --nproc-per-node)")
        self.model.load_state_dict({k[len("model."):]: v for k, v in saved.weights.items()
                                    if k.startswith("model.")})
        best = {k[len("best."):]: v for k, v in saved.weights.items() if k.startswith("best.")}
        self._best = best or None
        self.state.epoch = int(meta["epoch"])
        self.state.global_step = int(meta["global_step"])
        self.state.best_metric = meta["best_metric"]
        self.state.best_epoch = meta["best_epoch"]
        self.state.log_history = list(meta["log_history"])
        saved_states: dict[str, list[dict[str, Any]]] = {}
        for entry in meta["callbacks"]:
            saved_states.setdefault(entry["kind"], []).append(entry["state"])
        for callback in self.callbacks:  # matched by kind, in order; extra callbacks start fresh
            queue = saved_states.get(type(callback).__name__)
            if queue:
                callback.load_state_dict(queue.pop(0))
        tensors = saved.optimizer
        self._optimizer.load_state_dict(tensors["optimizer"])
        self._virtual_step = float(meta["virtual_step"])
        if self._scheduler is not None:
            self._scheduler.load_state_dict(tensors["scheduler"])
        for name, generator in self._generators.items():
            generator.set_state(tensors[name])
        torch.set_rng_state(tensors["torch_rng"][self.dist.rank])
        restore_python_numpy_rng_state(meta["rng"][self.dist.rank])
