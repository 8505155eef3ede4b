"""Privacy accounting on plain numbers, the centroid release's noise and the budget callback.

No model is trained here: every figure comes from the accountants (Opacus' RDP and PRV).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from guard.errors import ConfigError
from training.accounting import (
    Release,
    dp_sgd_noise,
    epsilon_spent,
    noise_for_budget,
)
from training.callbacks import PrivacyBudgetCallback, TrainerControl, TrainerState

# the default private run on the bundled data: batch 128 of 840 records, 7 Poisson steps an
# epoch, 20 epochs
RATE, EPOCHS = 1 / 7, 20


def test_noise_for_epsilon_8_is_opacus_calibration() -> None:
    from opacus.accountants.utils import get_noise_multiplier

    noise = dp_sgd_noise(8.0, accountant="rdp", delta=1e-5, sample_rate=RATE, epochs=EPOCHS)
    assert noise == get_noise_multiplier(target_epsilon=8.0, target_delta=1e-5,
                                         sample_rate=RATE, epochs=EPOCHS, accountant="rdp")
    assert noise == pytest.approx(1.355, abs=1e-3)
    spent = epsilon_spent([Release(noise, RATE, 140)], accountant="rdp", delta=1e-5)
    assert 8.0 - 0.01 <= spent <= 8.0  # within the bisection's tolerance, never over


def test_bisection_spends_the_budget_after_a_prior_release() -> None:
    alone = noise_for_budget(8.0, accountant="rdp", delta=1e-5, sample_rate=RATE, steps=140)
    prior = [Release(2.0, 1.0, 1)]
    after = noise_for_budget(8.0, accountant="rdp", delta=1e-5, sample_rate=RATE, steps=140,
                             prior=prior)
    assert after > alone  # the release took part of the budget: DP-SGD needs more noise
    step = Release(alone, RATE, 140)
    assert epsilon_spent([*prior, step], accountant="rdp", delta=1e-5) > \
        epsilon_spent([step], accountant="rdp", delta=1e-5)
    composed = epsilon_spent([*prior, Release(after, RATE, 140)], accountant="rdp", delta=1e-5)
    assert 8.0 - 0.01 <= composed <= 8.0


def test_a_prior_release_that_spends_the_budget_alone_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"the centroid release alone spends epsilon 4\.7"):
        noise_for_budget(1.0, accountant="rdp", delta=1e-5, sample_rate=RATE, steps=140,
                         prior=[Release(1.0, 1.0, 1)], prior_name="the centroid release")
    with pytest.raises(ConfigError, match="earlier release alone spends"):
        dp_sgd_noise(1.0, accountant="rdp", delta=1e-5, sample_rate=RATE, epochs=EPOCHS,
                     prior=[Release(1.0, 1.0, 1)])


def test_default_centroid_release_takes_five_sixths_of_the_budget() -> None:
    from training.config import TrainConfig
    from training.private_head import DEFAULT_CENTROID_NOISE, centroid_release_noise

    config = TrainConfig(mode="dp")  # epsilon 8, delta 1e-5, PRV
    noise = centroid_release_noise(config)
    assert noise == pytest.approx(0.70, abs=0.01)  # docs/hardening.md
    with np.errstate(divide="ignore"):  # PRV's log(1 - q) at q = 1
        alone = epsilon_spent([Release(noise, 1.0, 1)], accountant="prv", delta=1e-5)
    assert alone == pytest.approx(8 * 5 / 6, abs=0.01)
    sgd = dp_sgd_noise(8.0, accountant="prv", delta=1e-5, sample_rate=RATE, epochs=EPOCHS,
                       prior=[Release(noise, 1.0, 1)])
    assert sgd == pytest.approx(2.14, abs=0.01)  # docs/hardening.md: 2.14 for 140 steps
    fixed = TrainConfig(mode="dp", dp_epsilon=None, dp_noise_multiplier=1.0)
    assert centroid_release_noise(fixed) == DEFAULT_CENTROID_NOISE
    chosen = TrainConfig(mode="dp", dp_centroid_noise=1.5)
    assert centroid_release_noise(chosen) == 1.5


def _rdp(history: list[tuple[float, float, int]]) -> object:
    from opacus.accountants import create_accountant

    accountant = create_accountant("rdp")
    accountant.history = list(history)
    return accountant


def test_budget_callback_records_epsilon_and_stops_when_spent() -> None:
    history = [(0.7, 1.0, 1), (2.0, RATE, 70)]
    spent = epsilon_spent(history, accountant="rdp", delta=1e-5)
    state, control = TrainerState(), TrainerControl()
    callback = PrivacyBudgetCallback(accountant=_rdp(history), delta=1e-5, budget=spent + 1,
                                     bounded=True)
    metrics: dict[str, float] = {"val_accuracy": 0.5}
    callback.on_metrics(state, control, metrics=metrics)
    assert metrics["epsilon"] == spent and callback.epsilons == [spent]
    assert not control.should_stop
    spending = PrivacyBudgetCallback(accountant=_rdp(history), delta=1e-5, budget=spent,
                                     bounded=True)
    spending.on_metrics(state, control, metrics={})
    assert control.should_stop  # the budget is spent


def test_budget_callback_without_noise_records_none_and_never_stops() -> None:
    control = TrainerControl()
    callback = PrivacyBudgetCallback(accountant=_rdp([(0.0, RATE, 7)]), delta=1e-5,
                                     budget=None, bounded=False)
    metrics: dict[str, float] = {}
    callback.on_metrics(TrainerState(), control, metrics=metrics)
    assert callback.epsilons == [None] and "epsilon" not in metrics
    assert not control.should_stop


def test_budget_callback_state_survives_a_json_round_trip() -> None:
    history = [(0.7, 1.0, 1), (2.0, RATE, 14)]
    callback = PrivacyBudgetCallback(accountant=_rdp(history), delta=1e-5, budget=8.0,
                                     bounded=True)
    callback.on_metrics(TrainerState(), TrainerControl(), metrics={})
    saved = json.loads(json.dumps(callback.state_dict()))  # as the resumable state keeps it
    fresh = PrivacyBudgetCallback(accountant=_rdp([(0.7, 1.0, 1)]), delta=1e-5, budget=8.0,
                                  bounded=True)
    fresh.load_state_dict(saved)
    assert fresh.epsilons == callback.epsilons
    assert fresh.accountant.history == history  # type: ignore[attr-defined]
    assert fresh.spent() == callback.spent()


def test_release_noise_draws_what_opacus_draws() -> None:
    from opacus.optimizers.optimizer import _generate_noise  # the reference, private to Opacus

    from training.private_head import gaussian_noise

    reference = torch.zeros(14, 32)
    for secure in (False, True):
        ours = gaussian_noise(reference, 0.7, generator=torch.Generator().manual_seed(3),
                              secure=secure)
        theirs = _generate_noise(std=0.7, reference=reference, secure_mode=secure,
                                 generator=torch.Generator().manual_seed(3))
        assert torch.equal(ours, theirs), secure
    untouched = torch.Generator().manual_seed(5)
    before = untouched.get_state()
    assert torch.equal(gaussian_noise(reference, 0.0, generator=untouched), reference)
    assert torch.equal(untouched.get_state(), before)  # no noise, no draw: later draws keep
