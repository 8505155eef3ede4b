"""Privacy accounting: epsilon spent by Gaussian releases, and the noise that spends a budget.

Everything here works on plain numbers (noise multipliers, sampling rates, step counts), so it
is testable without a model. A release is one Gaussian mechanism applied ``steps`` times to a
``sample_rate`` Poisson sample of the records, in the ``(noise, sample_rate, steps)`` shape of
Opacus' accountant histories; releases made before DP-SGD (the centroid release that starts the
head) are composed with DP-SGD's steps in one history. Opacus is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal, NamedTuple

from guard.errors import ConfigError

#: The accountants a run may use (Opacus' names).
Accountant = Literal["prv", "rdp"]

#: Tolerance of the bisection for a budget's noise, as Opacus' ``get_noise_multiplier``.
EPSILON_TOLERANCE = 0.01


class Release(NamedTuple):
    """One Gaussian mechanism, as an accountant composes it.

    Attributes:
        noise_multiplier: Noise standard deviation over the sensitivity.
        sample_rate: Probability that a record takes part in each step (1: every record).
        steps: How many times the mechanism is applied.
    """

    noise_multiplier: float
    sample_rate: float
    steps: int


@contextlib.contextmanager
def quiet_prv_domain(accountant: str) -> Iterator[None]:
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


def accountant_epsilon(tracker: Any, delta: float) -> float:
    """Epsilon an Opacus accountant object has spent at ``delta``.

    The PRV accountant's log(1 - q) is -inf for a full-data release (q = 1): harmless, silenced.
    """
    import numpy as np

    with np.errstate(divide="ignore"), quiet_prv_domain(tracker.mechanism()):
        return float(tracker.get_epsilon(delta=delta))


def epsilon_spent(releases: Sequence[tuple[float, float, int]], *, accountant: Accountant,
                  delta: float) -> float:
    """Epsilon spent by ``releases`` composed in order, at ``delta``.

    Args:
        releases: ``(noise_multiplier, sample_rate, steps)`` each (e.g. :class:`Release`).
        accountant: ``prv`` or ``rdp``.
        delta: The delta epsilon is reported at.
    """
    from opacus.accountants import create_accountant

    tracker = create_accountant(mechanism=accountant)
    tracker.history = [tuple(release) for release in releases]
    return accountant_epsilon(tracker, delta)


def noise_for_budget(epsilon: float, *, accountant: Accountant, delta: float,
                     sample_rate: float, steps: int,
                     prior: Sequence[tuple[float, float, int]] = (),
                     prior_name: str = "the earlier release") -> float:
    """The noise multiplier of ``steps`` Gaussian steps that spends ``epsilon`` after ``prior``.

    A bisection like Opacus' ``get_noise_multiplier`` (tolerance 0.01), with the earlier
    releases composed in, which Opacus' cannot do. The answer spends at most ``epsilon``.

    Args:
        epsilon: The budget.
        accountant: ``prv`` or ``rdp``.
        delta: The budget's delta.
        sample_rate: Each step's sampling rate.
        steps: How many steps the budget must cover.
        prior: Releases made before these steps.
        prior_name: What ``prior`` is, for the error message.

    Raises:
        ConfigError: If the prior releases alone spend the budget.
    """
    def spent(noise: float) -> float:
        return epsilon_spent([*prior, (noise, sample_rate, steps)], accountant=accountant,
                             delta=delta)

    low, high, at_high = 0.0, 10.0, spent(10.0)
    while at_high > epsilon:
        low, high = high, 2 * high
        if high > 1e4:
            alone = epsilon_spent(prior, accountant=accountant, delta=delta)
            raise ConfigError(f"{prior_name} alone spends epsilon {alone:.3g} of the budget "
                              f"{epsilon:g}; raise its noise or the budget")
        at_high = spent(high)
    while epsilon - at_high > EPSILON_TOLERANCE:
        middle = (low + high) / 2
        at_middle = spent(middle)
        if at_middle < epsilon:
            high, at_high = middle, at_middle
        else:
            low = middle
    return high


def dp_sgd_noise(epsilon: float, *, accountant: Accountant, delta: float, sample_rate: float,
                 epochs: int, prior: Sequence[tuple[float, float, int]] = (),
                 prior_name: str = "the earlier release") -> float:
    """The DP-SGD noise multiplier that spends ``epsilon`` over ``epochs`` after ``prior``.

    Without prior releases this is Opacus' own calibration (``get_noise_multiplier``, which
    ``PrivacyEngine.make_private_with_epsilon`` uses: ``int(epochs / sample_rate)`` steps,
    bisection from noise 20); with them, :func:`noise_for_budget` over the Poisson steps as
    Opacus' sampler counts them (``int(1 / sample_rate)`` per epoch), the prior composed in.

    Args:
        epsilon: The budget for everything: the prior releases and DP-SGD.
        accountant: ``prv`` or ``rdp``.
        delta: The budget's delta.
        sample_rate: DP-SGD's sampling rate (``1 / len(loader)`` of the loader given to Opacus).
        epochs: Epochs the budget must cover.
        prior: Releases made before DP-SGD.
        prior_name: What ``prior`` is, for the error message.

    Raises:
        ConfigError: If the prior releases alone spend the budget.
        ValueError: From Opacus, if no noise below its ceiling meets the budget.
    """
    if prior:
        steps = int(1 / sample_rate) * epochs
        return noise_for_budget(epsilon, accountant=accountant, delta=delta,
                                sample_rate=sample_rate, steps=steps, prior=prior,
                                prior_name=prior_name)
    from opacus.accountants.utils import get_noise_multiplier

    with quiet_prv_domain(accountant):
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta,
                                          sample_rate=sample_rate, epochs=epochs,
                                          accountant=accountant))
