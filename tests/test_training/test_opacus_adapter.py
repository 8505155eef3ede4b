"""The Opacus adapter on a tiny torch model, and the shape of the private trainer."""

from __future__ import annotations

import pytest
import torch

from guard.errors import ConfigError
from training import opacus_adapter
from training.distributed import DistributedContext


class _Tiny(torch.nn.Module):
    """Records are indices; the model looks up a fixed feature per record and classifies it."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Embedding(20, 4)
        self.features.weight.requires_grad = False
        self.classifier = torch.nn.Linear(4, 3)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(idx))  # type: ignore[no-any-return]


@pytest.mark.parametrize("clipping", ["ghost", "hooks"])
def test_make_private_returns_one_shape_for_both_clipping_methods(clipping: str) -> None:
    torch.manual_seed(0)
    model = _Tiny()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    engine = opacus_adapter.privacy_engine(accountant="rdp", secure_mode=False)
    loader = opacus_adapter.record_loader(records=20, batch_size=5,
                                          generator=torch.Generator().manual_seed(1),
                                          context=DistributedContext())
    assert len(loader) == 4  # its sampling rate, 1/4, is the one accounted
    prior = [(0.7, 1.0, 1)]
    private = opacus_adapter.make_private(
        engine, model=model, optimizer=optimizer, loader=loader, noise_multiplier=1.0,
        max_grad_norm=1.0, clipping=clipping,  # type: ignore[arg-type]
        noise_rng=torch.Generator().manual_seed(2), context=DistributedContext(), prior=prior)
    assert isinstance(private, opacus_adapter.PrivateTraining)
    assert private.accountant.history == prior  # the release is composed first
    before = model.classifier.weight.detach().clone()
    steps = 0
    for (idx,) in private.loader:  # Poisson batches of record indices
        if len(idx) == 0:
            continue
        loss = private.criterion(private.model(idx), idx % 3)
        loss.backward()
        private.optimizer.step()
        private.optimizer.zero_grad(set_to_none=True)
        steps += 1
    assert steps > 0 and not torch.equal(before, model.classifier.weight)
    assert private.optimizer.noise_multiplier == 1.0
    assert private.accountant.history[0] == prior[0]
    assert private.accountant.history[-1][1] == pytest.approx(1 / 4)  # DP-SGD's steps


def test_check_trainable_names_what_opacus_refuses() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(ConfigError, match=r"Opacus cannot train this model as is.*BatchNorm"):
        opacus_adapter.check_trainable(model)
    opacus_adapter.check_trainable(torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_private_trainer_keeps_the_base_epoch_loop() -> None:
    """One epoch loop: the private trainer replaces setup, batches, the step and the finish."""
    from training.loop import Trainer
    from training.privacy import PrivateTrainer

    replaced = {name for name, value in vars(PrivateTrainer).items()
                if callable(value) and hasattr(Trainer, name)}
    assert replaced == {"__init__", "_setup", "_batches", "_train_step", "_finish"}
