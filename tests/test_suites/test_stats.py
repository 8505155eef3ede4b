from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from eval_suites.stats import f1_scores, mean_interval, quantile_interval, wilson_interval
from guard.errors import ConfigError


@pytest.mark.parametrize(("k", "n"), [(81, 263), (0, 12), (239, 252), (5, 5)])
def test_wilson_agrees_with_scipy(k: int, n: int) -> None:
    reference = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    est = wilson_interval(k, n)
    assert est.value == pytest.approx(k / n)
    assert (est.low, est.high) == pytest.approx((reference.low, reference.high), abs=1e-9)


def test_wilson_edges_and_bad_input() -> None:
    edge = wilson_interval(10, 10)
    assert edge.high == 1.0 and 0.65 < edge.low < 0.75
    with pytest.raises(ConfigError):
        wilson_interval(3, 0)


def test_wilson_covers_about_95_percent() -> None:
    rng = np.random.default_rng(0)
    p, n = 0.9, 200
    hits = sum(
        (lambda e: e.low <= p <= e.high)(wilson_interval(int(k), n))
        for k in rng.binomial(n, p, size=2000)
    )
    assert 0.93 <= hits / 2000 <= 0.97


def test_f1_agrees_with_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 5, 300)
    pred = np.where(rng.random(300) < 0.7, ref, rng.integers(0, 5, 300))
    macro, per_class = f1_scores(ref, pred, 5, resamples=200)
    assert macro.value == pytest.approx(f1_score(ref, pred, average="macro"))
    assert [e.value for e in per_class] == pytest.approx(list(f1_score(ref, pred, average=None)))
    assert macro.low <= macro.value <= macro.high
    assert [e.n for e in per_class] == list(np.bincount(ref, minlength=5))
    again, _ = f1_scores(ref, pred, 5, resamples=200)
    assert again == macro  # seeded


def test_quantile_interval_contains_the_estimate() -> None:
    x = np.random.default_rng(2).lognormal(size=200)
    for q in (0.5, 0.95, 0.99):
        est = quantile_interval(x, q)
        assert est.low <= est.value <= est.high
        assert est.value == pytest.approx(np.quantile(x, q))
    with pytest.raises(ConfigError):
        quantile_interval([], 0.5)


def test_mean_interval() -> None:
    est = mean_interval([1.0, 2.0, 3.0, 4.0])
    assert est.value == pytest.approx(2.5) and est.low < 2.5 < est.high


def test_roc_auc_agrees_with_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    from eval_suites.stats import roc_auc, roc_auc_interval

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = np.round(labels * 0.3 + rng.random(200), 1)  # rounding makes ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    est = roc_auc_interval(labels, scores, resamples=200)
    assert est.low <= est.value <= est.high and est.n == 200
    with pytest.raises(ConfigError):
        roc_auc([1, 1], [0.2, 0.3])
