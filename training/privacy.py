"""Differentially private fine-tuning with Opacus DP-SGD (the only module that imports opacus).

Per-sample gradients are clipped to ``dp_max_grad_norm`` and Gaussian noise is added; batches
are Poisson-sampled, as the accountants (PRV or RDP) assume. With ``dp_epsilon`` the noise is
calibrated so that the budget is spent exactly at the last planned epoch; epsilon spent is
recorded after every epoch. Clipping uses ghost clipping by default (per-sample gradient norms
without materialising per-sample gradients) or Opacus' per-sample hooks.

In ``adversarial+dp`` mode an adversarial example derived from training record *i* is trained
in the same step as *i* and the two rows' per-sample gradients are averaged into *i*'s single
per-sample gradient before clipping, so each record still moves the summed gradient by at most
the clip norm and the accountant's figure holds unchanged (``docs/hardening.md``).

Under ``torchrun`` the processes draw the same Poisson global batch and each trains on its share
(:class:`training.distributed.SharedPoissonBatchSampler`); Opacus' distributed optimiser sums the
clipped per-sample gradients of all processes and rank 0 adds the noise once, so the noisy
update, the sample rate and the steps the accountant composes are those of one process.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from guard.errors import ConfigError, require
from training.loop import Trainer
from training.private_head import CentroidSpanHead

if TYPE_CHECKING:
    import torch

# Logits of a head started from class centroids are this times the cosine similarity between
# a text's embedding and each centroid: confident enough to classify well from the first step,
# soft enough for DP-SGD to refine (docs/hardening.md has the trials).
CENTROID_LOGIT_SCALE = 10.0
# Without an explicit dp_centroid_noise, the centroid release is calibrated to spend this share of
# the budget on its own (composition then leaves DP-SGD the rest): noise 0.7 at epsilon 8,
# delta 1e-5 (docs/hardening.md has the trials).
CENTROID_BUDGET_SHARE = 5 / 6
# The release's noise when the run has a fixed DP-SGD noise instead of a budget.
DEFAULT_CENTROID_NOISE = 0.7

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


@contextlib.contextmanager
def _quiet_prv_domain(accountant: str) -> Iterator[None]:
    """Silence the RDP warning Opacus' PRV accountant raises while sizing its domain.

    The PRV accountant bounds its numerical domain with an RDP accountant, which warns
    "Optimal order is the largest alpha" for strong noise. That bound only sizes the domain;
    the epsilon reported is the PRV one. With the RDP accountant the warning stays.
    """
    with warnings.catch_warnings():
        if accountant == "prv":
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha",
                                    category=UserWarning)
        yield


def _epsilon(accountant: Any, delta: float) -> float:
    """Epsilon spent; the PRV accountant's log(1 - q) is -inf for a full-data release."""
    import numpy as np

    with np.errstate(divide="ignore"), _quiet_prv_domain(accountant.mechanism()):
        return float(accountant.get_epsilon(delta=delta))


def _noise_for_budget(accountant: str, epsilon: float, delta: float, *, sample_rate: float,
                      steps: int, prior: list[tuple[float, float, int]]) -> float:
    """The DP-SGD noise multiplier that spends ``epsilon`` after the ``prior`` releases.

    A bisection like Opacus' ``get_noise_multiplier`` (tolerance 0.01), with the earlier
    releases composed in, which Opacus' cannot do.

    Raises:
        ConfigError: If the prior releases alone spend the budget.
    """
    from opacus.accountants import create_accountant

    def spent(noise: float) -> float:
        tracker = create_accountant(mechanism=accountant)
        tracker.history = [*prior, (noise, sample_rate, steps)]
        return _epsilon(tracker, delta)

    low, high, at_high = 0.0, 10.0, spent(10.0)
    while at_high > epsilon:
        low, high = high, 2 * high
        if high > 1e4:
            tracker = create_accountant(mechanism=accountant)
            tracker.history = list(prior)
            raise ConfigError(f"the centroid release alone spends epsilon "
                              f"{_epsilon(tracker, delta):.3g} of the budget {epsilon:g}; "
                              "raise dp_centroid_noise or the budget")
        at_high = spent(high)
    while epsilon - at_high > 0.01:
        middle = (low + high) / 2
        at_middle = spent(middle)
        if at_middle < epsilon:
            high, at_high = middle, at_middle
        else:
            low = middle
    return high


def _collate_records(rows: list[tuple[torch.Tensor]]) -> tuple[torch.Tensor]:
    """Record indices of a (possibly empty) local batch, shaped like Opacus' batches."""
    import torch

    return (torch.tensor([int(row[0]) for row in rows], dtype=torch.long),)


class PrivateTrainer(Trainer):
    """The training loop under DP-SGD; same callbacks, early stopping, model selection, resume.

    Raises:
        MissingExtraError: If Opacus is not installed.
        ConfigError: For a delta not below 1/N, layers Opacus cannot handle, or secure mode in
            a distributed run.
    """

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
        self._epsilons: list[float | None] = []
        self._engine: Any = None
        self._private_model: Any = None
        self._criterion: Any = None
        self._loader: Any = None
        self._noise_rng: torch.Generator | None = None
        self._sampling_rng: torch.Generator | None = None
        self._trainable: list[str] = []
        self._release_unbounded = False  # a noiseless centroid release: no epsilon holds
        self._prior: list[tuple[float, float, int]] = []  # releases before DP-SGD's steps
        self._centroid_noise: float | None = None

    @property
    def clipping(self) -> str:
        """``ghost`` or ``hooks``: adversarial+dp needs materialised per-sample gradients."""
        return "hooks" if self.config.adversarial else self.config.dp_clipping

    def _setup(self) -> None:
        import torch
        from opacus import PrivacyEngine
        from opacus.distributed import DifferentiallyPrivateDistributedDataParallel
        from opacus.validators import ModuleValidator

        from training.distributed import SharedPoissonBatchSampler

        cfg = self.config
        self._engine = PrivacyEngine(accountant=cfg.dp_accountant, secure_mode=cfg.dp_secure_mode)
        # Opacus draws the noise on the parameters' device, with this generator
        self._noise_rng = torch.Generator(device=self.model.device).manual_seed(cfg.seed)
        self._sampling_rng = torch.Generator().manual_seed(cfg.seed + 1)
        prior: list[tuple[float, float, int]] = []  # releases before DP-SGD, for the accountant
        if cfg.dp_head_init != "random":
            self._centroid_noise = self._release_noise()
            self._init_head_from_private_centroids(self._centroid_noise)
            if self._centroid_noise > 0:
                prior.append((self._centroid_noise, 1.0, 1))
            else:
                self._release_unbounded = True
        self._trainable = _select_trainable(self.model, cfg.dp_trainable)
        self.model.train()  # from_pretrained returns eval mode; Opacus needs training mode
        problems = [str(e) for e in ModuleValidator.validate(self.model, strict=False)]
        if problems:
            raise ConfigError("Opacus cannot train this model as is: " + "; ".join(problems[:3])
                              + ". Freeze those layers (dp_trainable='head') or replace them")
        self._optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        records = torch.utils.data.TensorDataset(torch.arange(len(self.train_data)))
        loader = torch.utils.data.DataLoader(records, batch_size=cfg.batch_size,
                                             generator=self._sampling_rng)
        sample_rate = 1 / len(loader)
        steps = int(1 / sample_rate) * cfg.epochs  # Poisson steps, counted as Opacus does
        module: Any = self.model
        if self.dist.enabled:
            module = DifferentiallyPrivateDistributedDataParallel(self.model)
            # the loader draws its workers' base seed from its generator at every epoch, as
            # Opacus' does in one process: the same generator keeps the draws in step
            loader = torch.utils.data.DataLoader(
                records, collate_fn=_collate_records, generator=self._sampling_rng,
                batch_sampler=SharedPoissonBatchSampler(
                    num_samples=len(records), sample_rate=sample_rate, context=self.dist,
                    generator=self._sampling_rng))
        common: dict[str, Any] = {
            "module": module, "optimizer": self._optimizer, "data_loader": loader,
            "max_grad_norm": cfg.dp_max_grad_norm,
            # a distributed run brings its own Poisson sampler (above)
            "poisson_sampling": not self.dist.enabled,
            "noise_generator": None if cfg.dp_secure_mode else self._noise_rng}
        if self.clipping == "ghost":
            common |= {"grad_sample_mode": "ghost", "criterion": torch.nn.CrossEntropyLoss()}
        if cfg.dp_epsilon is not None and not prior:
            with _quiet_prv_domain(cfg.dp_accountant):
                made = self._engine.make_private_with_epsilon(
                    **common, target_epsilon=cfg.dp_epsilon, target_delta=cfg.dp_delta,
                    epochs=cfg.epochs)
        else:
            noise = cfg.dp_noise_multiplier if cfg.dp_epsilon is None else \
                _noise_for_budget(cfg.dp_accountant, cfg.dp_epsilon, cfg.dp_delta,
                                  sample_rate=sample_rate, steps=steps, prior=prior)
            made = self._engine.make_private(**common, noise_multiplier=noise)
        self._engine.accountant.history.extend(prior)
        self._prior = prior
        if self.clipping == "ghost":
            self._private_model, self._optimizer, self._criterion, self._loader = made
        else:
            self._private_model, self._optimizer, self._loader = made
            self._criterion = torch.nn.CrossEntropyLoss()
        self.state.max_steps = len(self._loader) * cfg.epochs

    def _release_noise(self) -> float:
        """The centroid release's noise: ``dp_centroid_noise``, or calibrated to the budget."""
        cfg = self.config
        if cfg.dp_centroid_noise is not None:
            return cfg.dp_centroid_noise
        if cfg.dp_epsilon is None:
            return DEFAULT_CENTROID_NOISE
        return _noise_for_budget(cfg.dp_accountant, CENTROID_BUDGET_SHARE * cfg.dp_epsilon,
                                 cfg.dp_delta, sample_rate=1.0, steps=1, prior=[])

    def _init_head_from_private_centroids(self, noise: float) -> None:
        """Start the head at the class centroids of the training embeddings, released privately.

        Every training text adds its unit-norm embedding to its class's sum, so adding or
        removing one text moves the stacked class sums by exactly 1 in L2 norm. Gaussian noise
        of standard deviation ``noise`` on every sum makes their release one Gaussian mechanism
        (sampling rate 1, one step), which the accountant composes with DP-SGD. Only the
        directions of the noisy sums are used, so no count is released. With
        ``dp_head_init='centroid-span'`` the head becomes a :class:`CentroidSpanHead` over them.

        Raises:
            ConfigError: If the model has no mean-pooled embedding to take centroids of.
        """
        import torch
        from opacus.optimizers.optimizer import _generate_noise

        cfg, data = self.config, self.train_data
        embed = getattr(self.model, "sentence_embedding", None)
        if embed is None:
            raise ConfigError(f"dp_head_init={cfg.dp_head_init!r} needs a mean-pooled model "
                              f"(pooling='mean'); use dp_head_init='random'")
        head: Any = self.model.classifier
        sums = torch.zeros_like(head.weight, dtype=torch.float32)
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(data), 64):
                texts = data.texts[start : start + 64]
                targets = self._targets(data.labels[start : start + 64])
                sums.index_add_(0, targets, embed(**self._encode(texts)).float())
        self.model.train()
        if cfg.dp_secure_mode:  # the cryptographic generator lives on the CPU
            sums, generator = sums.cpu(), self._engine.secure_rng
        else:
            generator = self._noise_rng
        noisy = sums + _generate_noise(std=noise, reference=sums, generator=generator,
                                       secure_mode=cfg.dp_secure_mode)
        centroids = torch.nn.functional.normalize(noisy, dim=-1).to(head.weight)
        if cfg.dp_head_init == "centroid-span":
            self.model.classifier = CentroidSpanHead(centroids, CENTROID_LOGIT_SCALE)
            return
        with torch.no_grad():
            head.weight.copy_(CENTROID_LOGIT_SCALE * centroids)
            head.bias.zero_()

    def _enter_train_mode(self) -> None:
        """Training mode for what DP-SGD trains; frozen blocks stay in eval mode.

        Dropout in a frozen block only adds noise to the features the trained layers see, and
        differs from what they see at inference; DP-SGD already brings all the noise it needs.
        """
        self.model.train()
        for module in self.model.modules():
            parameters = list(module.parameters(recurse=True))
            if parameters and not any(p.requires_grad for p in parameters):
                module.eval()

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

    def _fold_into_records(self, groups: list[int], records: int) -> None:
        """Average each record's rows' per-sample gradients into one per-sample gradient."""
        import torch

        index = torch.tensor(groups)
        counts = torch.bincount(index, minlength=records).clamp(min=1)
        for parameter in self._optimizer.params:
            rows = parameter.grad_sample
            summed = torch.zeros((records, *rows.shape[1:]), dtype=rows.dtype,
                                 device=rows.device).index_add_(0, index.to(rows.device), rows)
            shape = (records,) + (1,) * (rows.dim() - 1)
            parameter.grad_sample = summed / counts.to(rows.device, rows.dtype).view(shape)

    def _train_epoch(self) -> tuple[float, int]:
        epoch_loss, seen = 0.0, 0
        for batch in self._loader:
            idx = [int(i) for i in batch[0]]
            if not idx:
                # Poisson sampling drew an empty batch. DP-SGD still takes a step: a noise-only
                # update, which is also what the accountant counts. A zero-weighted placeholder
                # example yields zero per-sample gradients.
                logits = self._private_model(**self._encode([""])).logits
                (self._criterion(logits, self._targets([self.train_data.labels[0]]))
                 * 0.0).backward()
                self._optimizer.step()
                self._optimizer.zero_grad(set_to_none=True)
                self.state.global_step += 1
                continue
            texts, labels, groups = self._rows(idx)
            targets = self._targets(labels)
            logits = self._private_model(**self._encode(texts)).logits
            loss = self._criterion(logits, targets)
            loss.backward()
            if len(groups) > len(idx):
                self._fold_into_records(groups, len(idx))
            self._optimizer.step()
            self._optimizer.zero_grad(set_to_none=True)
            self.state.global_step += 1
            value = float(loss.detach())
            epoch_loss += value * len(idx)
            seen += len(idx)
            correct = int((logits[: len(idx)].argmax(-1) == targets[: len(idx)]).sum())
            self._emit("on_step_end", loss=value, correct=correct, seen=len(idx))
        return epoch_loss, seen

    def _epoch_metrics(self) -> dict[str, float]:
        cfg = self.config
        # without noise there is no privacy to account for: epsilon is unbounded (None)
        bounded = self._optimizer.noise_multiplier > 0 and not self._release_unbounded
        epsilon = _epsilon(self._engine.accountant, cfg.dp_delta) if bounded else None
        self._epsilons.append(epsilon)
        if cfg.dp_epsilon is not None and epsilon is not None and \
                epsilon >= cfg.dp_epsilon - 1e-6:
            self.control.should_stop = True  # the budget is spent
        return {} if epsilon is None else {"epsilon": epsilon}

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self._noise_rng is None or self._sampling_rng is None:
            raise RuntimeError("the private trainer was not set up")
        accountant = self._engine.accountant.state_dict()
        meta = {"epsilons": self._epsilons, "accountant_history": accountant["history"],
                "accountant_mechanism": accountant["mechanism"]}
        return meta, {"noise_rng": self._noise_rng.get_state(),
                      "sampling_rng": self._sampling_rng.get_state()}

    def _restore_extra_state(self, meta: dict[str, Any], tensors: dict[str, Any]) -> None:
        if self._noise_rng is None or self._sampling_rng is None:
            raise RuntimeError("the private trainer was not set up")
        self._epsilons = list(meta["epsilons"])
        self._engine.accountant.load_state_dict({
            "history": [tuple(entry) for entry in meta["accountant_history"]],
            "mechanism": meta["accountant_mechanism"]})
        self._noise_rng.set_state(tensors["noise_rng"])
        self._sampling_rng.set_state(tensors["sampling_rng"])

    def train(self) -> Any:
        """Run DP-SGD; ``self.privacy`` then holds epsilon, delta, noise, sample rate and steps."""
        with warnings.catch_warnings():
            # torch's note on Opacus' hooks over frozen inputs, repeated at every step: noise
            warnings.filterwarnings("ignore", message="Full backward hook is firing",
                                    category=UserWarning)
            state = super().train()
        if isinstance(self.model.classifier, CentroidSpanHead):  # the best weights are loaded
            self.model.classifier = self.model.classifier.folded()
        cfg = self.config
        # What the accountant actually composed: Opacus derives the sample rate from the
        # loader's length, which can differ slightly from batch_size / N.
        history = list(self._engine.accountant.history)[len(self._prior):]  # DP-SGD's steps
        self.privacy = {
            "epsilon": self._epsilons[-1] if self._epsilons else None, "delta": cfg.dp_delta,
            "epsilon_per_epoch": self._epsilons,
            "noise_multiplier": float(self._optimizer.noise_multiplier),
            "max_grad_norm": cfg.dp_max_grad_norm,
            "sample_rate": float(history[-1][1]) if history else 1 / len(self._loader),
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
        return state
