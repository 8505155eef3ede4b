"""One training loop for sequence classifiers, steered by callbacks."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from guard.data import TextDataset
from guard.errors import DataError
from training.callbacks import TrainerCallback, TrainerControl, TrainerState
from training.config import TrainConfig

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) random generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Fine-tunes a sequence classifier with AdamW, linear warm-up/decay and dynamic padding.

    After each epoch it measures validation loss and accuracy, keeps the best weights in memory
    and restores them at the end, so the returned model is the best validated one.

    Args:
        model: A ``transformers`` sequence-classification model whose ``config.label2id`` covers
            every training label.
        tokenizer: Its tokenizer.
        train: Training rows.
        validation: Validation rows, used for early stopping and model selection.
        config: Hyper-parameters.
        callbacks: Event handlers (progress bar, early stopping, ...).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        train: TextDataset,
        validation: TextDataset,
        config: TrainConfig,
        callbacks: Sequence[TrainerCallback] = (),
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.train_data = train
        self.validation = validation
        self.config = config
        self.callbacks = list(callbacks)
        self.label2id: dict[str, int] = {
            str(k): int(v) for k, v in (model.config.label2id or {}).items()
        }
        unknown = sorted(set(train.labels) - set(self.label2id))
        if unknown:
            raise DataError(f"training labels {unknown} are not among the model's labels")
        self.state = TrainerState()
        self.control = TrainerControl()
        for callback in self.callbacks:
            callback.bind(self)

    def _encode(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        batch = self.tokenizer(list(texts), padding=True, truncation=True,
                               max_length=self.config.max_length, return_tensors="pt")
        return {k: v.to(self.model.device) for k, v in batch.items()}

    def _targets(self, labels: Sequence[str]) -> torch.Tensor:
        import torch

        return torch.tensor([self.label2id[label] for label in labels], device=self.model.device)

    def _optimizer(self) -> torch.optim.Optimizer:
        import torch

        no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if not n.endswith(no_decay)],
             "weight_decay": self.config.weight_decay},
            {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=self.config.learning_rate)

    def evaluate(self, data: TextDataset) -> tuple[float, float]:
        """Mean loss and accuracy of the current model on ``data``."""
        import torch

        self.model.eval()
        total_loss, correct = 0.0, 0
        order = sorted(range(len(data)), key=lambda i: len(data.texts[i]))
        size = max(self.config.batch_size, 64)
        with torch.inference_mode():
            for start in range(0, len(order), size):
                idx = order[start : start + size]
                targets = self._targets([data.labels[i] for i in idx])
                out = self.model(**self._encode([data.texts[i] for i in idx]), labels=targets)
                total_loss += float(out.loss) * len(idx)
                correct += int((out.logits.argmax(-1) == targets).sum())
        return total_loss / len(data), correct / len(data)

    def _emit(self, event: str, **kwargs: object) -> None:
        for callback in self.callbacks:
            getattr(callback, event)(self.state, self.control, **kwargs)

    def train(self) -> TrainerState:
        """Run the loop; returns the final state (``best_metric`` is the validation accuracy)."""
        import torch
        from transformers import get_linear_schedule_with_warmup

        cfg = self.config
        seed_everything(cfg.seed)
        order_rng = torch.Generator().manual_seed(cfg.seed)
        steps_per_epoch = math.ceil(len(self.train_data) / cfg.batch_size)
        self.state.max_steps = steps_per_epoch * cfg.epochs
        optimizer = self._optimizer()
        # Linear warm-up and decay as in transformers, driven by progress through the epochs,
        # so epochs enlarged with adversarial examples keep the planned shape. With plain
        # epochs the virtual step is exactly the optimiser step count.
        virtual_step = [0.0]
        shape = get_linear_schedule_with_warmup(
            optimizer, int(cfg.warmup_ratio * self.state.max_steps), self.state.max_steps
        ).lr_lambdas[0]
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda _: float(shape(virtual_step[0])))
        best_weights: dict[str, torch.Tensor] | None = None
        self._emit("on_train_begin")
        for epoch in range(cfg.epochs):
            self.state.augmented = None
            self._emit("on_epoch_begin")
            self.model.train()
            texts, labels = list(self.train_data.texts), list(self.train_data.labels)
            if self.state.augmented is not None:
                texts += self.state.augmented.texts
                labels += self.state.augmented.labels
            n = len(texts)
            batches = math.ceil(n / cfg.batch_size)
            perm = torch.randperm(n, generator=order_rng).tolist()
            epoch_loss = 0.0
            for batch, start in enumerate(range(0, n, cfg.batch_size)):
                idx = perm[start : start + cfg.batch_size]
                targets = self._targets([labels[i] for i in idx])
                out = self.model(**self._encode([texts[i] for i in idx]), labels=targets)
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                optimizer.step()
                virtual_step[0] = (epoch * batches + batch + 1) * steps_per_epoch / batches
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                self.state.global_step += 1
                loss = float(out.loss.detach())
                epoch_loss += loss * len(idx)
                correct = int((out.logits.argmax(-1) == targets).sum())
                self._emit("on_step_end", loss=loss, correct=correct, seen=len(idx))
            val_loss, val_accuracy = self.evaluate(self.validation)
            self.state.epoch += 1
            metrics = {"epoch": float(self.state.epoch), "train_loss": epoch_loss / n,
                       "val_loss": val_loss, "val_accuracy": val_accuracy,
                       "examples": float(n)}
            self.state.log_history.append(metrics)
            if self.state.best_metric is None or val_accuracy > self.state.best_metric:
                self.state.best_metric = val_accuracy
                self.state.best_epoch = self.state.epoch
                best_weights = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
                )
            self._emit("on_evaluate", metrics=metrics)
            self._emit("on_epoch_end")
            if self.control.should_stop:
                break
        if best_weights is not None:
            self.model.load_state_dict(best_weights)
        self.model.eval()
        self._emit("on_train_end")
        return self.state
