"""The release gate: a policy of limits and baseline margins, judged on confidence bounds.

Every check ends ``pass``, ``fail`` or ``inconclusive``:

* a limit (``min`` / ``max``) is judged on the metric's confidence interval, never the point
  estimate: ``min`` passes when the lower bound clears it and fails when the upper bound is
  below it; ``max`` mirrors that;
* a ``margin`` is a non-inferiority test against a baseline on the same items: a paired
  difference (McNemar-type interval for per-item proportions such as accuracy, paired bootstrap
  for latency percentiles) whose bound must stay within the margin.

Anything in between is inconclusive (the samples are too few to decide); the policy says whether
that counts as a pass or a failure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from eval_suites.base import MetricSpec
from eval_suites.stats import _z
from guard.config import build_model, read_toml
from guard.errors import ConfigError
from guard.results import GateCheck, GateResult, MetricValue, Outcome, ResultsDocument

#: The policy shipped with the package; the default assistant meets it.
DEFAULT_POLICY = Path(__file__).parent / "policies" / "default.toml"

def _declared_spec(metric: str, suite: str | None) -> MetricSpec | None:
    """The spec of ``metric`` (``name`` or ``name/<part>``) in ``suite`` or any suite."""
    from eval_suites.registry import SUITES

    for name in [suite] if suite is not None else SUITES.names():
        if name not in SUITES:
            return None  # an unknown suite is reported where suites are resolved
        for spec in SUITES.get(name).metric_specs:
            if spec.covers(metric):
                return spec
    return None


def _range_text(low: float, high: float) -> str:
    return f"[{low:g}, {high:g}]" if math.isfinite(high) else f"at least {low:g}"


class MetricRule(BaseModel):
    """Limits for one metric.

    Attributes:
        suite: Suite that reports the metric (inferred from the registry when omitted).
        min: The metric's lower confidence bound must be at least this.
        max: The metric's upper confidence bound must be at most this.
        margin: Largest tolerated degradation against the baseline, in the metric's unit
            (needs ``--baseline``; accuracy, toxic_output_rate and latency metrics).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str | None = None
    min: float | None = Field(None, allow_inf_nan=False)
    max: float | None = Field(None, allow_inf_nan=False)
    margin: float | None = Field(None, ge=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _has_a_limit(self) -> MetricRule:
        if self.min is None and self.max is None and self.margin is None:
            raise ValueError("give at least one of min, max or margin")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class GatePolicy(BaseModel):
    """A release-gate policy, read from TOML.

    Example::

        confidence = 0.95          # coverage of the intervals the checks use
        inconclusive = "fail"      # or "pass"
        [metrics.accuracy]
        min = 0.90
        margin = 0.02              # at most 2 points worse than the baseline
        [metrics.latency_p95_ms]
        max = 50
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    confidence: float = Field(0.95, ge=0.5, lt=1.0)
    inconclusive: Literal["fail", "pass"] = "fail"
    metrics: dict[str, MetricRule] = Field(min_length=1)

    @field_validator("metrics")
    @classmethod
    def _limits_in_range(cls, metrics: dict[str, MetricRule]) -> dict[str, MetricRule]:
        """Refuse ``min`` / ``max`` outside the metric's range and margins wider than it."""
        problems = []
        for metric, rule in metrics.items():
            spec = _declared_spec(metric, rule.suite)
            bounds = spec.value_range() if spec is not None else None
            if spec is None or bounds is None:
                continue  # unknown metrics are reported by suite_of; unknown units unchecked
            low, high = bounds
            allowed = _range_text(low, high)
            what = f"a ratio, in {allowed}" if spec.unit == "ratio" else \
                f"in {spec.unit}, {allowed}"
            for key in ("min", "max"):
                value = getattr(rule, key)
                if value is not None and not low <= value <= high:
                    problems.append(f"{metric}.{key} = {value:g} is outside the range of "
                                    f"{spec.name} ({what})")
            if rule.margin is not None and rule.margin > high - low:
                problems.append(f"{metric}.margin = {rule.margin:g} is wider than the whole "
                                f"range of {spec.name} ({_range_text(low, high)})")
        if problems:
            raise PydanticCustomError("metric_range", "{problems}",
                                      {"problems": "; ".join(problems)})
        return metrics

    @classmethod
    def from_toml(cls, path: str | Path) -> GatePolicy:
        """Read and validate a policy file.

        Raises:
            ConfigError: Naming the file and the location of every invalid or unknown key.
        """
        policy = build_model(cls, read_toml(path, what="policy"), what=f"policy {path}")
        policy.suites()  # every metric must belong to a known suite
        return policy

    def suite_of(self, metric: str) -> str:
        """The suite that reports ``metric``.

        Raises:
            ConfigError: If no registered suite declares it.
        """
        rule = self.metrics[metric]
        if rule.suite is not None:
            return rule.suite
        from eval_suites.registry import SUITES

        owners = [name for name in SUITES.names()
                  if any(spec.covers(metric) for spec in SUITES.get(name).metric_specs)]
        if not owners:
            raise ConfigError(f"policy metric {metric!r} is not reported by any suite; see the "
                              "metric names in docs/results-schema.md")
        return owners[0]

    def suites(self) -> list[str]:
        """Suites needed to judge every metric, in registry order."""
        return sorted({self.suite_of(metric) for metric in self.metrics})


def _metric(document: ResultsDocument, suite: str, metric: str
            ) -> tuple[MetricValue, dict[str, Any]]:
    result = document.suite(suite)
    if result is None:
        raise ConfigError(f"the results hold no {suite!r} suite; run it (guard eval --suite "
                          f"{suite}) to judge {metric!r}")
    for item in result.metrics:
        if item.name == metric:
            return item, result.details
    raise ConfigError(f"suite {suite!r} in the results has no metric {metric!r} "
                      "(was it skipped? see the suite's details)")


def _limit_check(rule_kind: Literal["min", "max"], limit: float, metric: str, suite: str,
                 item: MetricValue) -> GateCheck:
    low, high, value = item.ci_low, item.ci_high, item.value
    level = f"{item.confidence:.0%}"
    if rule_kind == "min":
        outcome: Outcome = "pass" if low >= limit else "fail" if high < limit else "inconclusive"
        why = {"pass": f"the {level} lower bound {low:.4g} is at least {limit:g}",
               "fail": f"even the {level} upper bound {high:.4g} is below {limit:g}",
               "inconclusive": f"the {level} interval [{low:.4g}, {high:.4g}] straddles "
                               f"{limit:g}: more samples needed"}[outcome]
        name = f"{metric} >= {limit:g}"
    else:
        outcome = "pass" if high <= limit else "fail" if low > limit else "inconclusive"
        why = {"pass": f"the {level} upper bound {high:.4g} is at most {limit:g}",
               "fail": f"even the {level} lower bound {low:.4g} is above {limit:g}",
               "inconclusive": f"the {level} interval [{low:.4g}, {high:.4g}] straddles "
                               f"{limit:g}: more samples needed"}[outcome]
        name = f"{metric} <= {limit:g}"
    return GateCheck(name=name, suite=suite, metric=metric, kind=rule_kind, outcome=outcome,
                     limit=limit, value=value, ci_low=low, ci_high=high, n=item.n,
                     method=item.ci_method, baseline_value=None, explanation=why)


def paired_proportion_difference(candidate: np.ndarray, baseline: np.ndarray, *,
                                 confidence: float) -> tuple[float, float, float]:
    """Difference of two paired proportions with its McNemar-type (Wald) interval.

    Args:
        candidate: Per-item 0/1 outcomes of the candidate.
        baseline: Per-item 0/1 outcomes of the baseline on the same items.
        confidence: Two-sided coverage.

    Returns:
        ``(difference, low, high)`` of candidate minus baseline.
    """
    n = len(candidate)
    only_candidate = int(((candidate == 1) & (baseline == 0)).sum())
    only_baseline = int(((candidate == 0) & (baseline == 1)).sum())
    diff = (only_candidate - only_baseline) / n
    discordant = only_candidate + only_baseline
    se = math.sqrt(max(discordant - (only_candidate - only_baseline) ** 2 / n, 0.0)) / n
    half = _z(confidence) * se
    return diff, diff - half, diff + half


def paired_bootstrap_difference(candidate: np.ndarray, baseline: np.ndarray, q: float | None, *,
                                confidence: float, resamples: int = 2000, seed: int = 0
                                ) -> tuple[float, float, float]:
    """Difference of a statistic (quantile ``q``, or the mean) over paired samples, bootstrapped.

    Items are resampled together, so request-to-request variation common to both runs cancels.
    """
    def stat(x: np.ndarray) -> np.ndarray:
        return np.asarray(x.mean(axis=-1) if q is None else np.quantile(x, q, axis=-1))

    diff = float(stat(candidate) - stat(baseline))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(candidate), size=(resamples, len(candidate)))
    boot = stat(candidate[idx]) - stat(baseline[idx])
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return diff, float(min(low, diff)), float(max(high, diff))


def _paired_metrics() -> list[str]:
    """The metrics a margin can judge, for the error message."""
    from eval_suites.registry import SUITES

    return [spec.name + ("/<part>" if spec.per_item and "{part}" in spec.per_item else "")
            for name in SUITES.names() for spec in SUITES.get(name).metric_specs
            if spec.pairing != "none"]


def _margin_check(metric: str, suite: str, margin: float, confidence: float,
                  candidate: ResultsDocument, baseline: ResultsDocument) -> GateCheck:
    from eval_suites.registry import SUITES

    cand_item, cand_details = _metric(candidate, suite, metric)
    base_item, base_details = _metric(baseline, suite, metric)
    if candidate.data.sha256 != baseline.data.sha256:
        raise ConfigError("baseline and candidate were evaluated on different data; a paired "
                          "comparison needs the same items")
    spec = SUITES.get(suite).spec(metric)
    if spec.pairing == "none":
        raise ConfigError(f"no paired comparison for {metric!r}; margins work for "
                          f"{_paired_metrics()}. Use min/max for it")
    cand_items = spec.per_item_values(metric, cand_details)
    base_items = spec.per_item_values(metric, base_details)
    if cand_items is None or base_items is None:
        which = "candidate" if cand_items is None else "baseline"
        raise ConfigError(f"{metric}: the {which}'s {suite} details hold no per-item values at "
                          f"{spec.per_item!r}, which the paired comparison needs")
    cand = np.asarray(cand_items, dtype=np.float64)
    base = np.asarray(base_items, dtype=np.float64)
    if len(cand) != len(base):
        raise ConfigError(f"{metric}: baseline and candidate have different numbers of items "
                          f"({len(base)} and {len(cand)}); use the same options for both")
    if spec.pairing == "proportion":
        diff, low, high = paired_proportion_difference(cand, base, confidence=confidence)
        method = "paired proportions (McNemar-type interval)"
    else:
        quantile = spec.quantile if spec.pairing == "quantile" else None
        diff, low, high = paired_bootstrap_difference(cand, base, quantile,
                                                      confidence=confidence)
        method = "paired bootstrap"
    higher_is_better = cand_item.higher_is_better
    interval = f"interval [{low:+.4g}, {high:+.4g}]"
    if higher_is_better:  # worse means lower: the difference must stay above -margin
        outcome: Outcome = ("pass" if low > -margin else "fail" if high < -margin
                            else "inconclusive")
        bound = f"lower bound {low:+.4g}" if outcome == "pass" else interval
    else:  # worse means higher: the difference must stay below +margin
        outcome = "pass" if high < margin else "fail" if low > margin else "inconclusive"
        bound = f"upper bound {high:+.4g}" if outcome == "pass" else interval
    verdict = {"pass": "within", "fail": "beyond", "inconclusive": "not clearly within"}[outcome]
    explanation = (f"candidate - baseline = {diff:+.4g}; {bound} is {verdict} the margin "
                   f"{margin:g}")
    return GateCheck(name=f"{metric} no worse than baseline by {margin:g}", suite=suite,
                     metric=metric, kind="margin", outcome=outcome,
                     limit=-margin if higher_is_better else margin, value=diff, ci_low=low,
                     ci_high=high, n=len(cand), method=method,
                     baseline_value=base_item.value, explanation=explanation)


def evaluate_gate(policy: GatePolicy, candidate: ResultsDocument,
                  baseline: ResultsDocument | None = None) -> GateResult:
    """Judge a candidate's results document (and a baseline's, for margins) against a policy.

    Raises:
        ConfigError: If a metric is missing, a margin has no baseline, or the results' intervals
            were computed at another confidence than the policy's.
    """
    checks: list[GateCheck] = []
    for metric, rule in policy.metrics.items():
        suite = policy.suite_of(metric)
        item, _ = _metric(candidate, suite, metric)
        if abs(item.confidence - policy.confidence) > 1e-9:
            raise ConfigError(
                f"{metric}: the results hold {item.confidence:.0%} intervals but "
                f"the policy asks for {policy.confidence:.0%}; rerun guard eval with --policy")
        if rule.min is not None:
            checks.append(_limit_check("min", rule.min, metric, suite, item))
        if rule.max is not None:
            checks.append(_limit_check("max", rule.max, metric, suite, item))
        if rule.margin is not None:
            if baseline is None:
                raise ConfigError(f"{metric} has a margin, which needs --baseline")
            checks.append(_margin_check(metric, suite, rule.margin, policy.confidence,
                                        candidate, baseline))
    failing = {"fail"} | ({"inconclusive"} if policy.inconclusive == "fail" else set())
    passed = not any(check.outcome in failing for check in checks)
    return GateResult(passed=passed, confidence=policy.confidence,
                      inconclusive_counts_as=policy.inconclusive, checks=tuple(checks))
