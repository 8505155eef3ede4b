"""Differentially private fine-tuning: the DP-SGD trainer.

Per-sample gradients are clipped to ``dp_max_grad_norm`` and Gaussian noise is added; batches
are Poisson-sampled, as the accountants (PRV or RDP) assume. With ``dp_epsilon`` the noise is
calibrated so that the budget is spent exactly at the last planned epoch. Clipping uses ghost
clipping by default (per-sample gradient norms without materialising per-sample gradients) or
Opacus' per-sample hooks. The parts live beside this trainer, each with one job: the
accounting in :mod:`training.accounting`, the Opacus wiring in :mod:`training.opacus_adapter`,
the centroid release that starts the head in :mod:`training.private_head`, and epsilon's record
and the budget stop in :class:`training.callbacks.PrivacyBudgetCallback`.

In ``adversarial+dp`` mode an adversarial example derived from training record *i* is trained
in the same step as *i* and the two rows' per-sample gradients are averaged into *i*'s single
per-sample gradient before clipping, so each record still moves the summed gradient by at most
the clip norm and the accountant's figure holds unchanged (``docs/hardening.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from guard.errors import ConfigError, require
from training import opacus_adapter
from training.accounting import Release, dp_sgd_noise
from training.callbacks import PrivacyBudgetCallback
from training.loop import Batch, StepResult, Trainer
from training.opacus_adapter import PrivateTraining
from training.private_head import (
    CENTROID_LOGIT_SCALE,
    CentroidSpanHead,
    centroid_release_noise,
    class_centroid_sums,
    install_centroid_head,
    release_centroids,
)

# Parameters DP-SGD trains for each choice (prefixes of BERT-family parameter names).
_HEAD = ("classifier.", "bert.pooler.", "pre_classifier.")
_FROZEN_ALWAYS = ("position_embeddings", "token_type_embeddings")


def select_trainable(model: Any, trainable: str) -> list[str]:
    """Freeze what DP-SGD must not train; return the names of the trainable parameters.

    Raises:
        ConfigError: If nothing is left to train.
    """
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
    """The training loop under DP-SGD; same callbacks, early stopping, model selection, resume.

    It replaces the loop's setup (Opacus' engine, the centroid release, the frozen layers),
    its batches (Poisson-sampled records, each with its adversarial rows) and its gradient step
    (per-sample clipping and noise); the epoch loop is the base trainer's. After training,
    :attr:`privacy` holds epsilon, delta, noise, sample rate and steps for the manifest.

    Raises:
        MissingExtraError: If Opacus is not installed.
        ConfigError: For a delta not below 1/N, layers Opacus cannot handle, or secure mode in
            a distributed run.
    """

    # torch's note on Opacus' hooks over frozen inputs, repeated at every step: noise
    _ignored_warnings = ("Full backward hook is firing",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        require("opacus", extra="dp", feature="differentially private training")
        super().__init__(*args, **kwargs)
        n = len(self.train_data)
        if self.config.dp_delta >= 1 / n:
            raise ConfigError(f"dp_delta {self.config.dp_delta} must be below 1/N = {1 / n:.3g} "
                              f"for N = {n} training examples; use e.g. {0.1 / n:.1g}")
        if self.config.dp_secure_mode and self.dist.enabled:
            raise ConfigError("secure mode draws its batches from a cryptographic generator "
                              "that the processes cannot share; train with one process")
        self.privacy: dict[str, Any] = {}
        self._dp: PrivateTraining | None = None
        self._budget: PrivacyBudgetCallback | None = None
        self._trainable: list[str] = []
        self._prior: list[Release] = []  # releases before DP-SGD's steps
        self._centroid_noise: float | None = None

    @property
    def clipping(self) -> Literal["ghost", "hooks"]:
        """``ghost`` or ``hooks``: adversarial+dp needs materialised per-sample gradients."""
        return "hooks" if self.config.adversarial else self.config.dp_clipping

    def _wired(self) -> PrivateTraining:
        if self._dp is None:
            raise RuntimeError("the private trainer was not set up")
        return self._dp

    def _setup(self) -> None:
        import torch

        cfg = self.config
        engine = opacus_adapter.privacy_engine(accountant=cfg.dp_accountant,
                                               secure_mode=cfg.dp_secure_mode)
        # Opacus draws the noise on the parameters' device, with this generator
        noise_rng = torch.Generator(device=self.model.device).manual_seed(cfg.seed)
        sampling_rng = torch.Generator().manual_seed(cfg.seed + 1)
        self._generators.update(noise_rng=noise_rng, sampling_rng=sampling_rng)
        noiseless_release = False  # a noiseless centroid release: no epsilon holds
        if cfg.dp_head_init != "random":
            self._centroid_noise = centroid_release_noise(cfg)
            sums = class_centroid_sums(self.model, self.train_data, encode=self._encode,
                                       targets=self._targets)
            centroids = release_centroids(
                sums, self._centroid_noise, secure=cfg.dp_secure_mode,
                generator=opacus_adapter.noise_generator(engine, noise_rng))
            install_centroid_head(self.model, centroids, span=cfg.dp_head_init == "centroid-span")
            if self._centroid_noise > 0:
                self._prior.append(Release(self._centroid_noise, 1.0, 1))
            else:
                noiseless_release = True
        self._trainable = select_trainable(self.model, cfg.dp_trainable)
        self.model.train()  # from_pretrained returns eval mode; Opacus needs training mode
        opacus_adapter.check_trainable(self.model)
        optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        loader = opacus_adapter.record_loader(records=len(self.train_data),
                                              batch_size=cfg.batch_size, generator=sampling_rng,
                                              context=self.dist)
        if cfg.dp_epsilon is not None:
            noise = dp_sgd_noise(cfg.dp_epsilon, accountant=cfg.dp_accountant, delta=cfg.dp_delta,
                                 sample_rate=1 / len(loader), epochs=cfg.epochs,
                                 prior=self._prior,
                                 prior_name="the centroid release (dp_centroid_noise)")
        elif cfg.dp_noise_multiplier is not None:
            noise = cfg.dp_noise_multiplier
        else:  # TrainConfig refuses this; fail closed all the same
            raise ConfigError("dp mode needs dp_epsilon or dp_noise_multiplier")
        self._dp = opacus_adapter.make_private(
            engine, model=self.model, optimizer=optimizer, loader=loader, noise_multiplier=noise,
            max_grad_norm=cfg.dp_max_grad_norm,
            clipping=self.clipping, noise_rng=noise_rng, context=self.dist, prior=self._prior)
        self._optimizer = self._dp.optimizer
        self.state.max_steps = len(self._dp.loader) * cfg.epochs
        # without noise there is no privacy to account for: epsilon is unbounded (None)
        self._budget = PrivacyBudgetCallback(
            accountant=self._dp.accountant, delta=cfg.dp_delta, budget=cfg.dp_epsilon,
            bounded=self._dp.optimizer.noise_multiplier > 0 and not noiseless_release)
        self.add_callback(self._budget, first=True)

    def _rows(self, idx: list[int]) -> tuple[list[str], list[str], list[int]]:
        """The batch's texts and labels, plus adversarial rows, and each row's record slot."""
        texts = [self.train_data.texts[i] for i in idx]
        labels = [self.train_data.labels[i] for i in idx]
        groups = list(range(len(idx)))
        extra, sources = self.state.augmented, self.state.augmented_sources
        if extra is not None and sources is not None:
            slot = {record: position for position, record in enumerate(idx)}
            for text, label, source in zip(extra.texts, extra.labels, sources, strict=True):
                if source in slot:
                    texts.append(text)
                    labels.append(label)
                    groups.append(slot[source])
        return texts, labels, groups

    def _batches(self) -> Iterator[Batch]:
        """Poisson-sampled training records, each with the adversarial rows derived from it."""
        loader = self._wired().loader
        for index, batch in enumerate(loader):
            texts, labels, groups = self._rows([int(i) for i in batch[0]])
            yield Batch(index=index, count=len(loader), texts=texts, labels=labels,
                        sources=groups)

    def _fold_into_records(self, groups: list[int], records: int) -> None:
        """Average each record's rows' per-sample gradients into one per-sample gradient."""
        import torch

        index = torch.tensor(groups)
        counts = torch.bincount(index, minlength=records).clamp(min=1)
        for parameter in self._wired().optimizer.params:
            rows = parameter.grad_sample
            summed = torch.zeros((records, *rows.shape[1:]), dtype=rows.dtype,
                                 device=rows.device).index_add_(0, index.to(rows.device), rows)
            shape = (records,) + (1,) * (rows.dim() - 1)
            parameter.grad_sample = summed / counts.to(rows.device, rows.dtype).view(shape)

    def _train_step(self, batch: Batch) -> StepResult | None:
        """One DP-SGD step: per-sample gradients (a record's rows folded), clipped, noised."""
        dp = self._wired()
        result = None
        if not batch.texts:
            # Poisson sampling drew an empty batch. DP-SGD still takes a step: a noise-only
            # update, which is also what the accountant counts. A zero-weighted placeholder
            # example yields zero per-sample gradients.
            logits = dp.model(**self._encode([""])).logits
            (dp.criterion(logits, self._targets([self.train_data.labels[0]])) * 0.0).backward()
        else:
            records = batch.records
            targets = self._targets(batch.labels)
            logits = dp.model(**self._encode(batch.texts, training=True)).logits
            loss = dp.criterion(logits, targets)
            loss.backward()
            if batch.sources is not None and len(batch.sources) > records:
                self._fold_into_records(batch.sources, records)
            result = StepResult(
                loss=float(loss.detach()), seen=records,
                correct=int((logits[:records].argmax(-1) == targets[:records]).sum()))
        dp.optimizer.step()
        dp.optimizer.zero_grad(set_to_none=True)
        return result

    def _finish(self) -> None:
        """Fold a span head into a linear one; fill :attr:`privacy` with what was spent."""
        if isinstance(self.model.classifier, CentroidSpanHead):  # the best weights are loaded
            self.model.classifier = self.model.classifier.folded()
        cfg, dp = self.config, self._wired()
        epsilons = self._budget.epsilons if self._budget is not None else []
        # What the accountant actually composed: Opacus derives the sample rate from the
        # loader's length, which can differ slightly from batch_size / N.
        history = list(dp.accountant.history)[len(self._prior):]  # DP-SGD's steps
        self.privacy = {
            "epsilon": epsilons[-1] if epsilons else None, "delta": cfg.dp_delta,
            "epsilon_per_epoch": epsilons,
            "noise_multiplier": float(dp.optimizer.noise_multiplier),
            "max_grad_norm": cfg.dp_max_grad_norm,
            "sample_rate": float(history[-1][1]) if history else 1 / len(dp.loader),
            "steps": int(sum(entry[2] for entry in history)), "accountant": cfg.dp_accountant,
            "secure_mode": cfg.dp_secure_mode, "trainable": cfg.dp_trainable,
            "trainable_parameters": len(self._trainable), "clipping": self.clipping,
            "head_init": {"method": cfg.dp_head_init, **(
                {"noise_multiplier": self._centroid_noise, "logit_scale": CENTROID_LOGIT_SCALE}
                if self._centroid_noise is not None else {})},
            "processes": self.dist.world_size,
            "unit": "training record (an adversarial example counts with the record it came "
                    "from)" if cfg.adversarial else "training record",
            "note": "epsilon covers the training split for every epoch trained (and the "
                    "centroid release that starts the head, if any); the validation "
                    "split used to pick the best epoch is treated as public (not covered)",
        }
