"""Differentially private fine-tuning with Opacus DP-SGD (the only module that imports opacus).

Per-sample gradients are clipped to ``dp_max_grad_norm`` and Gaussian noise is added; batches
are Poisson-sampled, as the accountants (PRV or RDP) assume. With ``dp_epsilon`` the noise is
calibrated so that the budget is spent exactly at the last planned epoch; epsilon spent is
recorded after every epoch.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from guard.errors import ConfigError, require
from training.loop import Trainer, seed_everything

if TYPE_CHECKING:
    import torch

# Parameters DP-SGD trains for each choice (prefixes of BERT-family parameter names).
_HEAD = ("classifier.", "bert.pooler.", "pre_classifier.")
_FROZEN_ALWAYS = ("position_embeddings", "token_type_embeddings")


def _select_trainable(model: Any, trainable: str) -> list[str]:
    """Freeze what DP-SGD must not train; return the names of the trainable parameters."""
    layers = sorted({int(part) for name, _ in model.named_parameters()
                     for i, part in enumerate(name.split(".")) if part.isdigit()
                     and name.split(".")[i - 1] == "layer"})
    last = f"layer.{layers[-1]}." if layers else None
    names = []
    for name, parameter in model.named_parameters():
        if trainable == "head":
            keep = name.startswith(_HEAD)
        elif trainable == "last-layer":
            keep = name.startswith(_HEAD) or (last is not None and last in name)
        else:
            # Opacus cannot compute per-sample gradients through the broadcast position /
            # token-type id buffers of BERT-family embeddings: those embeddings stay frozen.
            keep = not any(frozen in name for frozen in _FROZEN_ALWAYS)
        parameter.requires_grad = keep
        if keep:
            names.append(name)
    if not names:
        raise ConfigError(f"dp_trainable={trainable!r} leaves nothing to train in this model")
    return names


class PrivateTrainer(Trainer):
    """The training loop under DP-SGD; same callbacks, early stopping and model selection.

    Raises:
        MissingExtraError: If Opacus is not installed.
        ConfigError: For a delta not below 1/N, or layers Opacus cannot handle.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        require("opacus", extra="dp", feature="differentially private training")
        super().__init__(*args, **kwargs)
        n = len(self.train_data)
        if self.config.dp_delta >= 1 / n:
            raise ConfigError(f"dp_delta {self.config.dp_delta} must be below 1/N = {1 / n:.3g} "
                              f"for N = {n} training examples; use e.g. {0.1 / n:.1g}")
        self.privacy: dict[str, Any] = {}

    def _loader(self) -> torch.utils.data.DataLoader[Any]:
        import torch

        texts, labels = self.train_data.texts, self.train_data.labels

        def collate(items: list[tuple[torch.Tensor]]) -> tuple[dict[str, torch.Tensor],
                                                               torch.Tensor]:
            idx = [int(item[0]) for item in items]
            return self._encode([texts[i] for i in idx]), self._targets([labels[i] for i in idx])

        dataset = torch.utils.data.TensorDataset(torch.arange(len(texts)))
        return torch.utils.data.DataLoader(dataset, batch_size=self.config.batch_size,
                                           collate_fn=collate)

    def train(self) -> Any:
        """Run DP-SGD; ``self.privacy`` holds epsilon, delta, noise, sample rate and steps."""
        import torch
        from opacus import PrivacyEngine
        from opacus.validators import ModuleValidator

        cfg = self.config
        seed_everything(cfg.seed)
        trainable = _select_trainable(self.model, cfg.dp_trainable)
        self.model.train()  # from_pretrained returns eval mode; Opacus needs training mode
        problems = [str(e) for e in ModuleValidator.validate(self.model, strict=False)]
        if problems:
            raise ConfigError("Opacus cannot train this model as is: " + "; ".join(problems[:3])
                              + ". Freeze those layers (dp_trainable='head') or replace them")
        optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                      lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        engine = PrivacyEngine(accountant=cfg.dp_accountant, secure_mode=cfg.dp_secure_mode)
        generator = torch.Generator().manual_seed(cfg.seed)
        common = {"module": self.model, "optimizer": optimizer, "data_loader": self._loader(),
                  "max_grad_norm": cfg.dp_max_grad_norm, "poisson_sampling": True,
                  "noise_generator": None if cfg.dp_secure_mode else generator}
        if cfg.dp_epsilon is not None:
            private_model, optimizer, loader = engine.make_private_with_epsilon(
                **common, target_epsilon=cfg.dp_epsilon, target_delta=cfg.dp_delta,
                epochs=cfg.epochs)
        else:
            private_model, optimizer, loader = engine.make_private(
                **common, noise_multiplier=cfg.dp_noise_multiplier)
        plain_model = self.model  # the wrapper shares its parameters; save this one
        self.state.max_steps = math.ceil(1 / loader.sample_rate) * cfg.epochs
        best: dict[str, torch.Tensor] | None = None
        epsilons: list[float | None] = []
        self._emit("on_train_begin")
        for _ in range(cfg.epochs):
            self._emit("on_epoch_begin")
            private_model.train()
            epoch_loss, seen = 0.0, 0
            for batch in loader:
                inputs, targets = batch if isinstance(batch, tuple) else ({}, batch[0])
                if len(targets) == 0:
                    # Poisson sampling drew an empty batch. DP-SGD still takes a step: a
                    # noise-only update, which is also what the accountant counts. A
                    # zero-weighted placeholder example yields zero per-sample gradients.
                    out = private_model(**self._encode([""]),
                                        labels=self._targets([self.train_data.labels[0]]))
                    (out.loss * 0.0).backward()
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    self.state.global_step += 1
                    continue
                out = private_model(**inputs, labels=targets)
                out.loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                self.state.global_step += 1
                loss = float(out.loss.detach())
                epoch_loss += loss * len(targets)
                seen += len(targets)
                correct = int((out.logits.argmax(-1) == targets).sum())
                self._emit("on_step_end", loss=loss, correct=correct, seen=len(targets))
            # without noise there is no privacy to account for: epsilon is unbounded (None)
            epsilon = (float(engine.get_epsilon(cfg.dp_delta)) if optimizer.noise_multiplier > 0
                       else None)
            epsilons.append(epsilon)
            val_loss, val_accuracy = self.evaluate(self.validation)
            self.state.epoch += 1
            metrics = {"epoch": float(self.state.epoch), "train_loss": epoch_loss / max(seen, 1),
                       "val_loss": val_loss, "val_accuracy": val_accuracy,
                       "examples": float(seen)}
            if epsilon is not None:
                metrics["epsilon"] = epsilon
            self.state.log_history.append(metrics)
            if self.state.best_metric is None or val_accuracy > self.state.best_metric:
                self.state.best_metric = val_accuracy
                self.state.best_epoch = self.state.epoch
                best = copy.deepcopy({k: v.detach().cpu()
                                      for k, v in plain_model.state_dict().items()})
            self._emit("on_evaluate", metrics=metrics)
            self._emit("on_epoch_end")
            if cfg.dp_epsilon is not None and epsilon is not None and \
                    epsilon >= cfg.dp_epsilon - 1e-6:
                self.control.should_stop = True  # the budget is spent
            if self.control.should_stop:
                break
        if best is not None:
            plain_model.load_state_dict(best)
        plain_model.eval()
        self._emit("on_train_end")
        # What the accountant actually composed: Opacus derives the sample rate from the
        # loader's length, which can differ slightly from batch_size / N.
        history = list(engine.accountant.history)
        self.privacy = {
            "epsilon": epsilons[-1] if epsilons else None, "delta": cfg.dp_delta,
            "epsilon_per_epoch": epsilons,
            "noise_multiplier": float(optimizer.noise_multiplier),
            "max_grad_norm": cfg.dp_max_grad_norm,
            "sample_rate": float(history[-1][1]) if history else float(loader.sample_rate),
            "steps": int(sum(entry[2] for entry in history)), "accountant": cfg.dp_accountant,
            "secure_mode": cfg.dp_secure_mode, "trainable": cfg.dp_trainable,
            "trainable_parameters": len(trainable),
            "note": "epsilon covers the training split for every epoch trained; the validation "
                    "split used to pick the best epoch is treated as public (not covered)",
        }
        return self.state
