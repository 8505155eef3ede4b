"""The Opacus wiring of DP-SGD: the engine, the model check, the loaders and ``make_private``.

With :mod:`training.accounting` this is the only module that imports Opacus (inside the
functions). :func:`make_private` always returns one shape, :class:`PrivateTraining`, whether
Opacus clips with ghost clipping (it then returns a 4-tuple with its own loss) or with
per-sample hooks (a 3-tuple), and whether the noise came from a budget or was fixed: a budget is
turned into a noise multiplier beforehand (:func:`training.accounting.dp_sgd_noise`, for the
loader :func:`record_loader` makes), so one ``make_private`` call serves every run.

Under ``torchrun`` the model is wrapped in Opacus' ``DifferentiallyPrivateDistributedDataParallel``
and the processes draw the same Poisson global batch, each training on its share
(:class:`training.distributed.SharedPoissonBatchSampler`); Opacus' distributed optimiser sums
the clipped per-sample gradients of all processes and rank 0 adds the noise once, so the noisy
update, the sample rate and the steps the accountant composes are those of one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from guard.errors import ConfigError
from training.distributed import DistributedContext

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PrivateTraining:
    """What DP-SGD trains with, as Opacus prepared it.

    Attributes:
        model: The model wrapped for per-sample gradients (what training batches run through;
            its parameters are the model's own).
        optimizer: Opacus' ``DPOptimizer``: clips per-sample gradients, adds the noise, steps.
        criterion: The loss to call as ``criterion(logits, targets)``; with ghost clipping
            Opacus' own, whose ``backward`` runs the two passes ghost clipping needs.
        loader: Batches of training-record indices, one tensor each, Poisson-sampled.
        accountant: The engine's accountant: the releases before DP-SGD, then its steps.
    """

    model: Any
    optimizer: Any
    criterion: Any
    loader: Any
    accountant: Any


def privacy_engine(*, accountant: str, secure_mode: bool) -> Any:
    """An Opacus ``PrivacyEngine`` (secure mode needs ``torchcsprng``)."""
    from opacus import PrivacyEngine

    return PrivacyEngine(accountant=accountant, secure_mode=secure_mode)


def noise_generator(engine: Any, seeded: torch.Generator) -> torch.Generator | None:
    """The generator noise is drawn with: the engine's cryptographic one in secure mode."""
    return engine.secure_rng if engine.secure_mode else seeded


def check_trainable(model: Any) -> None:
    """Refuse a model with layers Opacus cannot compute per-sample gradients for.

    Raises:
        ConfigError: Naming the first problems Opacus' ``ModuleValidator`` found.
    """
    from opacus.validators import ModuleValidator

    problems = [str(e) for e in ModuleValidator.validate(model, strict=False)]
    if problems:
        raise ConfigError("Opacus cannot train this model as is: " + "; ".join(problems[:3])
                          + ". Freeze those layers (dp_trainable='head') or replace them")


def _collate_records(rows: list[tuple[torch.Tensor]]) -> tuple[torch.Tensor]:
    """Record indices of a (possibly empty) local batch, shaped like Opacus' batches."""
    import torch

    return (torch.tensor([int(row[0]) for row in rows], dtype=torch.long),)


def record_loader(*, records: int, batch_size: int, generator: torch.Generator,
                  context: DistributedContext) -> Any:
    """The loader of record indices to hand :func:`make_private`.

    Its sampling rate, ``1 / len(loader)``, is the one Opacus will account with. In one
    process a plain loader, which Opacus replaces with its Poisson sampler; in several, a
    shared Poisson sampler of the global batch (Opacus' own distributed sampler skips empty
    local batches, which leaves the processes waiting on different collectives).
    """
    import torch

    from training.distributed import SharedPoissonBatchSampler

    dataset = torch.utils.data.TensorDataset(torch.arange(records))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, generator=generator)
    if not context.enabled:
        return loader
    # the loader draws its workers' base seed from its generator at every epoch, as Opacus'
    # does in one process: the same generator keeps the draws in step
    return torch.utils.data.DataLoader(
        dataset, collate_fn=_collate_records, generator=generator,
        batch_sampler=SharedPoissonBatchSampler(
            num_samples=records, sample_rate=1 / len(loader), context=context,
            generator=generator))


def make_private(engine: Any, *, model: Any, optimizer: torch.optim.Optimizer, loader: Any,
                 noise_multiplier: float, max_grad_norm: float,
                 clipping: Literal["ghost", "hooks"], noise_rng: torch.Generator,
                 context: DistributedContext,
                 prior: Sequence[tuple[float, float, int]] = ()) -> PrivateTraining:
    """Prepare ``model``, ``optimizer`` and ``loader`` for DP-SGD with Opacus.

    Args:
        engine: From :func:`privacy_engine`.
        model: The model; only its parameters with ``requires_grad`` are trained.
        optimizer: Over those parameters.
        loader: From :func:`record_loader`.
        noise_multiplier: Noise standard deviation over the clip norm.
        max_grad_norm: The per-sample gradient clip norm.
        clipping: ``ghost`` (norms without materialising per-sample gradients) or ``hooks``
            (per-sample gradients in each parameter's ``grad_sample``).
        noise_rng: Seeded generator for the noise (unused in secure mode).
        context: This process's place in a data-parallel run.
        prior: Releases made before DP-SGD, composed first in the accountant.
    """
    import torch

    module: Any = model
    if context.enabled:
        from opacus.distributed import DifferentiallyPrivateDistributedDataParallel

        module = DifferentiallyPrivateDistributedDataParallel(model)
    options: dict[str, Any] = {
        "module": module, "optimizer": optimizer, "data_loader": loader,
        "noise_multiplier": noise_multiplier, "max_grad_norm": max_grad_norm,
        # a distributed run brings its own Poisson sampler (record_loader)
        "poisson_sampling": not context.enabled,
        "noise_generator": None if engine.secure_mode else noise_rng}
    if clipping == "ghost":
        options |= {"grad_sample_mode": "ghost", "criterion": torch.nn.CrossEntropyLoss()}
        private_model, private_optimizer, criterion, private_loader = \
            engine.make_private(**options)
    else:
        private_model, private_optimizer, private_loader = engine.make_private(**options)
        criterion = torch.nn.CrossEntropyLoss()
    engine.accountant.history.extend(tuple(release) for release in prior)
    return PrivateTraining(model=private_model, optimizer=private_optimizer,
                           criterion=criterion, loader=private_loader,
                           accountant=engine.accountant)
