"""Statistics for suite metrics: point estimates with 95% confidence intervals.

Every function is pure NumPy and deterministic for a given seed. The Hugging Face ``evaluate``
modules in :mod:`eval_suites.metrics` call these same functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from guard.errors import ConfigError

Z95 = 1.959963984540054  # two-sided 95% standard normal quantile


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval.

    Attributes:
        value: The estimate.
        low: Lower end of the interval.
        high: Upper end of the interval.
        n: Sample size it rests on.
        method: How the interval was computed.
    """

    value: float
    low: float
    high: float
    n: int
    method: str


def _z(confidence: float) -> float:
    if confidence == 0.95:
        return Z95
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> Estimate:
    """Proportion with its Wilson score interval (good coverage even near 0 or 1).

    Raises:
        ConfigError: If ``n`` is not positive or ``successes`` is outside ``[0, n]``.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ConfigError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval always contains p; rounding must not push it out at 0 or 1
    low = 0.0 if successes == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if successes == n else max(p, min(1.0, centre + half))
    return Estimate(p, low, high, n, "wilson")


def confusion_matrix(references: npt.ArrayLike, predictions: npt.ArrayLike, n_classes: int
                     ) -> npt.NDArray[np.int64]:
    """Counts ``[true, predicted]`` for integer class ids in ``[0, n_classes)``."""
    ref = np.asarray(references, dtype=np.int64)
    pred = np.asarray(predictions, dtype=np.int64)
    flat = np.bincount(ref * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _f1_from_confusion(conf: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64],
                                                              npt.NDArray[np.float64]]:
    """Per-class F1 and macro F1 for confusion matrices of shape ``(..., K, K)``.

    Macro F1 averages over classes that occur in the references or the predictions (as
    scikit-learn does); a class with no true and no predicted examples is left out.
    """
    tp = np.diagonal(conf, axis1=-2, axis2=-1).astype(np.float64)
    support = conf.sum(axis=-1).astype(np.float64)
    predicted = conf.sum(axis=-2).astype(np.float64)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = denom > 0
    macro = (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)
    return f1, macro


def f1_scores(
    references: Sequence[int] | npt.NDArray[np.int64],
    predictions: Sequence[int] | npt.NDArray[np.int64],
    n_classes: int,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[Estimate, list[Estimate]]:
    """Macro F1 and per-class F1, each with a percentile-bootstrap interval.

    Args:
        references: True class ids.
        predictions: Predicted class ids.
        n_classes: Number of classes.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.
        confidence: Interval coverage.

    Returns:
        ``(macro, per_class)``; ``per_class[k].n`` is the support of class ``k``.

    Raises:
        ConfigError: On empty or mismatched inputs.
    """
    ref = np.asarray(references, dtype=np.int64)
    pred = np.asarray(predictions, dtype=np.int64)
    n = len(ref)
    if n == 0 or len(pred) != n:
        raise ConfigError(f"need equal, non-empty references and predictions, got {n}/{len(pred)}")
    if resamples < 10:
        raise ConfigError(f"resamples must be >= 10, got {resamples}")
    f1, macro = _f1_from_confusion(confusion_matrix(ref, pred, n_classes))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    offsets = (np.arange(resamples) * n_classes * n_classes)[:, None]
    flat = np.bincount((offsets + ref[idx] * n_classes + pred[idx]).ravel(),
                       minlength=resamples * n_classes * n_classes)
    boot_f1, boot_macro = _f1_from_confusion(flat.reshape(resamples, n_classes, n_classes))
    tail = (1 - confidence) / 2 * 100
    low_macro, high_macro = np.percentile(boot_macro, [tail, 100 - tail])
    lows, highs = np.percentile(boot_f1, [tail, 100 - tail], axis=0)
    support = np.bincount(ref, minlength=n_classes)
    macro_est = Estimate(float(macro), float(low_macro), float(high_macro), n, "bootstrap")
    per_class = [
        Estimate(float(f1[k]), float(lows[k]), float(highs[k]), int(support[k]), "bootstrap")
        for k in range(n_classes)
    ]
    return macro_est, per_class


def quantile_interval(samples: Sequence[float] | npt.NDArray[np.float64], q: float, *,
                      confidence: float = 0.95) -> Estimate:
    """Sample quantile with a distribution-free interval from order statistics.

    The interval is ``[x_(l), x_(u)]`` with ranks from the normal approximation to the binomial
    count of samples below the true quantile, so it makes no assumption about the distribution
    (latencies are skewed).

    Raises:
        ConfigError: If ``samples`` is empty or ``q`` is outside ``(0, 1)``.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    if n == 0 or not 0 < q < 1:
        raise ConfigError(f"need samples and 0 < q < 1, got n={n}, q={q}")
    half = _z(confidence) * math.sqrt(n * q * (1 - q))
    # 1-based ranks l = floor(nq - half), u = ceil(nq + half); widened to contain the estimate.
    position = q * (n - 1)
    low_rank = max(0, min(math.floor(n * q - half) - 1, math.floor(position)))
    high_rank = min(n - 1, max(math.ceil(n * q + half) - 1, math.ceil(position)))
    value = float(np.quantile(x, q))
    return Estimate(value, float(x[low_rank]), float(x[high_rank]), n, "order-statistic")


def mean_interval(samples: Sequence[float] | npt.NDArray[np.float64], *, resamples: int = 1000,
                  seed: int = 0, confidence: float = 0.95) -> Estimate:
    """Mean with a percentile-bootstrap interval.

    Raises:
        ConfigError: If ``samples`` is empty.
    """
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0:
        raise ConfigError("need at least one sample for a mean")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(x.mean()), float(low), float(high), len(x), "bootstrap")


def roc_auc(labels: Sequence[int] | npt.NDArray[np.int64],
            scores: Sequence[float] | npt.NDArray[np.float64]) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties).

    Raises:
        ConfigError: Unless both classes (0 and 1) are present.
    """
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0 or n_pos + n_neg != len(y):
        raise ConfigError("ROC AUC needs labels 0 and 1, both present")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_scores = s[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(s)]))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc_interval(labels: Sequence[int] | npt.NDArray[np.int64],
                     scores: Sequence[float] | npt.NDArray[np.float64], *,
                     resamples: int = 1000, seed: int = 0,
                     confidence: float = 0.95) -> Estimate:
    """ROC AUC with a stratified percentile-bootstrap interval (classes resampled separately)."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    value = roc_auc(y, s)
    pos, neg = s[y == 1], s[y == 0]
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    both = np.concatenate((np.ones(len(pos), dtype=np.int64), np.zeros(len(neg), dtype=np.int64)))
    for b in range(resamples):
        sample = np.concatenate((rng.choice(pos, len(pos)), rng.choice(neg, len(neg))))
        boot[b] = roc_auc(both, sample)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Estimate(value, float(min(low, value)), float(max(high, value)), len(y), "bootstrap")


def newcombe_difference(successes_a: int, n_a: int, successes_b: int, n_b: int, *,
                        confidence: float = 0.95) -> Estimate:
    """Difference of two proportions ``p_a - p_b`` with Newcombe's hybrid score interval.

    Newcombe (1998), "Interval estimation for the difference between independent proportions",
    method 10: the Wilson intervals of each proportion combined by the square-and-add rule.
    It assumes independent samples; for positively correlated ones (the same templates filled
    two ways) it is conservative.

    Raises:
        ConfigError: As :func:`wilson_interval`, for either proportion.
    """
    a = wilson_interval(successes_a, n_a, confidence=confidence)
    b = wilson_interval(successes_b, n_b, confidence=confidence)
    diff = a.value - b.value
    low = diff - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = diff + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return Estimate(diff, max(-1.0, low), min(1.0, high), n_a + n_b, "newcombe")


def _binary(labels: Sequence[int] | npt.NDArray[np.int64],
            scores: Sequence[float] | npt.NDArray[np.float64], what: str
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) != len(s) or not ((y == 0) | (y == 1)).all():
        raise ConfigError(f"{what} needs 0/1 labels and one score per label, got "
                          f"{len(y)} labels and {len(s)} scores")
    if not (y == 1).any() or not (y == 0).any():
        raise ConfigError(f"{what} needs labels 0 and 1, both present")
    return y, s


def _blocks(resamples: int, n: int, *, cells: int = 2_000_000) -> list[tuple[int, int]]:
    """Resample ranges ``[start, stop)`` of at most ``cells`` drawn values each (bounded memory)."""
    step = max(1, cells // max(n, 1))
    return [(start, min(start + step, resamples)) for start in range(0, resamples, step)]


def recall_at_fpr(labels: Sequence[int] | npt.NDArray[np.int64],
                  scores: Sequence[float] | npt.NDArray[np.float64], *,
                  max_fpr: float) -> tuple[float, float]:
    """Recall at the lowest threshold whose false-positive rate is at most ``max_fpr``.

    A text is flagged when its score is at or above the threshold. With ``k =
    floor(max_fpr * negatives)`` false positives allowed, the threshold lies just above the
    ``(k+1)``-th highest negative score, so ties at that score are not flagged.

    Returns:
        ``(recall, threshold)``: the threshold is the lowest observed score flagged (``inf``
        when no score can be flagged, ``-inf`` when every text may be).

    Raises:
        ConfigError: Unless both classes are present, or if ``max_fpr`` is outside [0, 1].
    """
    if not 0.0 <= max_fpr <= 1.0:
        raise ConfigError(f"max_fpr must be in [0, 1], got {max_fpr}")
    y, s = _binary(labels, scores, "recall at a false-positive rate")
    negatives = np.sort(s[y == 0])[::-1]
    positives = s[y == 1]
    allowed = math.floor(max_fpr * len(negatives) + 1e-9)
    if allowed >= len(negatives):
        return 1.0, -math.inf
    cut = negatives[allowed]
    flagged = s[s > cut]
    threshold = float(flagged.min()) if len(flagged) else math.inf
    return float((positives > cut).mean()), threshold


def recall_at_fpr_interval(labels: Sequence[int] | npt.NDArray[np.int64],
                           scores: Sequence[float] | npt.NDArray[np.float64], *,
                           max_fpr: float, resamples: int = 1000, seed: int = 0,
                           confidence: float = 0.95) -> Estimate:
    """:func:`recall_at_fpr` with a stratified percentile-bootstrap interval.

    Each resample draws the positives and the negatives separately and chooses its own
    threshold, so the interval covers the choice of the operating point as well as the recall
    at it (a Wilson interval at the observed threshold would ignore the former).
    """
    y, s = _binary(labels, scores, "recall at a false-positive rate")
    value, _ = recall_at_fpr(y, s, max_fpr=max_fpr)
    pos, neg = s[y == 1], s[y == 0]
    allowed = math.floor(max_fpr * len(neg) + 1e-9)
    rng = np.random.default_rng(seed)
    boot = np.ones(resamples)
    if allowed < len(neg):
        for start, stop in _blocks(resamples, len(y)):
            # the (allowed+1)-th highest negative of each resample
            draws = neg[rng.integers(0, len(neg), size=(stop - start, len(neg)))]
            cuts = np.partition(draws, len(neg) - 1 - allowed, axis=1)[:, len(neg) - 1 - allowed]
            pos_samples = pos[rng.integers(0, len(pos), size=(stop - start, len(pos)))]
            boot[start:stop] = (pos_samples > cuts[:, None]).mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Estimate(value, float(min(low, value)), float(max(high, value)), len(y), "bootstrap")


def expected_calibration_error(labels: Sequence[int] | npt.NDArray[np.int64],
                               scores: Sequence[float] | npt.NDArray[np.float64], *,
                               bins: int = 10) -> float:
    """Expected calibration error of scores in [0, 1] against 0/1 labels.

    ``sum_b n_b / n * |mean(label in b) - mean(score in b)|`` over ``bins`` equal-width bins of
    [0, 1]; bin ``b`` holds scores in ``[b / bins, (b + 1) / bins)``, the last one includes 1.

    Raises:
        ConfigError: On empty or mismatched inputs, labels other than 0/1, or scores outside
            [0, 1].
    """
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if len(y) == 0 or len(y) != len(s) or not ((y == 0) | (y == 1)).all():
        raise ConfigError(f"ECE needs 0/1 labels and one score each, got {len(y)}/{len(s)}")
    if bins < 1 or (s < 0).any() or (s > 1).any():
        raise ConfigError(f"ECE needs scores in [0, 1] and bins >= 1, got bins={bins}")
    return float(_ece(y[None, :], s[None, :], bins)[0])


def _ece(y: npt.NDArray[np.float64], s: npt.NDArray[np.float64], bins: int
         ) -> npt.NDArray[np.float64]:
    """ECE of each row of ``(resamples, n)`` label and score arrays."""
    rows, n = s.shape
    index = np.minimum((s * bins).astype(np.int64), bins - 1)
    flat = (np.arange(rows)[:, None] * bins + index).ravel()
    label_sum = np.bincount(flat, weights=y.ravel(), minlength=rows * bins)
    score_sum = np.bincount(flat, weights=s.ravel(), minlength=rows * bins)
    # sum_b n_b / n * |mean_y - mean_s| = sum_b |sum_y - sum_s| / n
    gaps: npt.NDArray[np.float64] = np.abs(label_sum - score_sum).reshape(rows, bins).sum(
        axis=1) / n
    return gaps


def ece_interval(labels: Sequence[int] | npt.NDArray[np.int64],
                 scores: Sequence[float] | npt.NDArray[np.float64], *, bins: int = 10,
                 resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> Estimate:
    """:func:`expected_calibration_error` with a percentile-bootstrap interval over the rows.

    ECE is biased upwards in small samples (every bin's gap counts as positive), so the
    bootstrap distribution sits above the estimate; the interval is widened to contain it.
    """
    value = expected_calibration_error(labels, scores, bins=bins)
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    boot = np.empty(resamples)
    for start, stop in _blocks(resamples, len(y)):
        idx = rng.integers(0, len(y), size=(stop - start, len(y)))
        boot[start:stop] = _ece(y[idx], s[idx], bins)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Estimate(value, float(min(low, value)), float(max(high, value)), len(y), "bootstrap")


def roc_curve(labels: Sequence[int] | npt.NDArray[np.int64],
              scores: Sequence[float] | npt.NDArray[np.float64], *,
              max_points: int = 101) -> tuple[list[float], list[float]]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1).

    Args:
        labels: 0/1 labels.
        scores: Scores, higher meaning more likely 1; a text is flagged at score >= threshold.
        max_points: Keep at most this many points (evenly spaced along the curve, the two ends
            always kept); at least 2.

    Returns:
        ``(fpr, tpr)``, both non-decreasing.

    Raises:
        ConfigError: Unless both classes are present, or if ``max_points < 2``.
    """
    if max_points < 2:
        raise ConfigError(f"max_points must be >= 2, got {max_points}")
    y, s = _binary(labels, scores, "a ROC curve")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # one point after each run of tied scores
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tp = np.cumsum(y_sorted)[last]
    fp = (last + 1) - tp
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    if len(fpr) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(fpr) - 1, max_points)).astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return [float(v) for v in fpr], [float(v) for v in tpr]
