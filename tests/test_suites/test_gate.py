from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from result_documents import results_dict

from eval_suites.gate import (
    DEFAULT_POLICY,
    GatePolicy,
    evaluate_gate,
    paired_proportion_difference,
)
from guard.errors import ConfigError
from guard.results import ResultsDocument, parse_results


def _document(metrics: dict[str, tuple[float, float, float, int]], *, suite: str = "accuracy",
              details: dict[str, Any] | None = None, data_sha: str = "d" * 64
              ) -> ResultsDocument:
    return parse_results(results_dict([{
        "suite": suite,
        "metrics": [{"name": name, "value": v, "ci_low": lo, "ci_high": hi, "n": n,
                     "unit": "ratio", "higher_is_better": not name.startswith(
                         ("latency", "toxic")), "ci_method": "wilson", "confidence": 0.95}
                    for name, (v, lo, hi, n) in metrics.items()],
        "details": details or {},
    }], data={"sha256": data_sha, "n": 10, "source": "x"}))


def _policy(**metrics: dict[str, float]) -> GatePolicy:
    return GatePolicy(metrics=metrics)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("interval", "outcome"),
    [((0.93, 0.91, 0.95), "pass"), ((0.85, 0.80, 0.89), "fail"), ((0.9, 0.88, 0.92),
                                                                  "inconclusive")],
)
def test_min_limit_is_judged_on_the_bound(interval: tuple[float, float, float],
                                          outcome: str) -> None:
    doc = _document({"accuracy": (*interval, 250)})
    result = evaluate_gate(_policy(accuracy={"min": 0.90}), doc)
    [check] = result.checks
    assert check.outcome == outcome
    assert result.passed is (outcome == "pass")  # inconclusive counts as fail by default


def test_max_limit_and_inconclusive_as_pass() -> None:
    doc = _document({"toxic_output_rate": (0.01, 0.0, 0.06, 100)}, suite="toxicity")
    strict = evaluate_gate(_policy(toxic_output_rate={"max": 0.05}), doc)
    assert strict.checks[0].outcome == "inconclusive" and not strict.passed
    lenient = GatePolicy(inconclusive="pass", metrics={"toxic_output_rate": {"max": 0.05}})
    assert evaluate_gate(lenient, doc).passed


def test_point_estimate_alone_never_passes() -> None:
    # the value clears the limit but the interval does not: not a pass
    doc = _document({"accuracy": (0.91, 0.86, 0.95, 60)})
    [check] = evaluate_gate(_policy(accuracy={"min": 0.90}), doc).checks
    assert check.outcome == "inconclusive" and "more samples" in check.explanation


def test_margin_against_baseline_uses_paired_items() -> None:
    base = _document({"accuracy": (0.9, 0.85, 0.94, 200)},
                     details={"correct": [1] * 180 + [0] * 20})
    same = _document({"accuracy": (0.9, 0.85, 0.94, 200)},
                     details={"correct": [1] * 180 + [0] * 20})
    worse = _document({"accuracy": (0.7, 0.63, 0.76, 200)},
                      details={"correct": [1] * 140 + [0] * 60})
    policy = _policy(accuracy={"margin": 0.02})
    assert evaluate_gate(policy, same, base).checks[0].outcome == "pass"
    check = evaluate_gate(policy, worse, base).checks[0]
    assert check.outcome == "fail" and check.value == pytest.approx(-0.2)
    with pytest.raises(ConfigError, match="needs --baseline"):
        evaluate_gate(policy, same)
    other_data = _document({"accuracy": (0.9, 0.85, 0.94, 200)},
                           details={"correct": [1] * 200}, data_sha="e" * 64)
    with pytest.raises(ConfigError, match="different data"):
        evaluate_gate(policy, other_data, base)


def test_paired_difference_on_a_known_table() -> None:
    # 10 items only the candidate gets right, 4 only the baseline: diff = 6/100
    cand = np.array([1] * 10 + [0] * 4 + [1] * 80 + [0] * 6)
    base = np.array([0] * 10 + [1] * 4 + [1] * 80 + [0] * 6)
    diff, low, high = paired_proportion_difference(cand, base, confidence=0.95)
    se = np.sqrt(14 - 36 / 100) / 100
    assert diff == pytest.approx(0.06)
    assert (low, high) == pytest.approx((0.06 - 1.959964 * se, 0.06 + 1.959964 * se))


def test_gate_rarely_passes_a_candidate_worse_by_the_margin() -> None:
    """At the default 95% confidence a truly inferior candidate passes at most 5% of the time."""
    rng = np.random.default_rng(0)
    margin, n, trials, passes = 0.03, 400, 400, 0
    policy = _policy(accuracy={"margin": margin})
    for _ in range(trials):
        base = (rng.random(n) < 0.90).astype(int)
        # candidate agrees with the baseline mostly, and is worse by exactly the margin
        flip_down = (base == 1) & (rng.random(n) < 0.06)
        flip_up = (base == 0) & (rng.random(n) < (0.06 * 0.9 - margin) / 0.1)
        cand = np.where(flip_down, 0, np.where(flip_up, 1, base))
        docs = [_document({"accuracy": (float(x.mean()), 0.0, 1.0, n)},
                          details={"correct": x.tolist()}) for x in (cand, base)]
        passes += evaluate_gate(policy, docs[0], docs[1]).passed
    assert passes / trials <= 0.05


def test_policy_files_are_validated(tmp_path: Path) -> None:
    one_metric = tmp_path / "p.toml"
    one_metric.write_text("[metrics.accuracy]\nmin = 0.90\n")
    assert GatePolicy.from_toml(one_metric).metrics["accuracy"].min == 0.90
    one_metric.write_text("[metrics.latency_p95_ms]\nmax = 50\n")
    assert GatePolicy.from_toml(one_metric).suites() == ["latency"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[metrics.accuracy]\nminimum = 0.9\n")
    with pytest.raises(ConfigError, match=r"metrics\.accuracy\.minimum: Extra inputs"):
        GatePolicy.from_toml(bad)
    bad.write_text("[metrics.accuracy]\nmin = 0.9\nmax = 0.5\n")
    with pytest.raises(ConfigError, match="above max"):
        GatePolicy.from_toml(bad)
    bad.write_text("[metrics.acuracy]\nmin = 0.9\n")
    with pytest.raises(ConfigError, match="not reported by any suite"):
        GatePolicy.from_toml(bad)
    bad.write_text("confidence = 1.5\n[metrics.accuracy]\nmin = 0.9\n")
    with pytest.raises(ConfigError, match="confidence"):
        GatePolicy.from_toml(bad)
    assert GatePolicy.from_toml(DEFAULT_POLICY).suites() == ["accuracy", "latency", "toxicity"]


def test_confidence_mismatch_is_refused() -> None:
    doc = _document({"accuracy": (0.93, 0.91, 0.95, 250)})
    policy = GatePolicy(confidence=0.99, metrics={"accuracy": {"min": 0.9}})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="95% intervals but the policy asks for 99%"):
        evaluate_gate(policy, doc)


def test_margin_on_accuracy_under_attack_is_paired_per_recipe() -> None:
    def doc(robust: list[int]) -> ResultsDocument:
        return _document({"accuracy_under_attack/deepwordbug": (sum(robust) / 40, 0, 1, 40)},
                         suite="robustness",
                         details={"recipes": {"deepwordbug": {"robust": robust}}})

    policy = _policy(**{"accuracy_under_attack/deepwordbug": {"margin": 0.05}})
    hardened, released = doc([1] * 30 + [0] * 10), doc([1] * 10 + [0] * 30)
    assert evaluate_gate(policy, hardened, released).checks[0].outcome == "pass"
    assert evaluate_gate(policy, released, hardened).checks[0].outcome == "fail"
    with pytest.raises(ConfigError, match="no paired comparison for 'macro_f1'"):
        evaluate_gate(_policy(macro_f1={"margin": 0.01}), _document({"macro_f1": (0.9, 0.8, 1, 9)}),
                      _document({"macro_f1": (0.9, 0.8, 1, 9)}))


def test_missing_per_item_details_are_a_config_error_not_a_key_error() -> None:
    # a renamed details key made the gate crash with a bare KeyError (exit 1, a traceback)
    policy = _policy(accuracy={"margin": 0.02})
    complete = _document({"accuracy": (0.9, 0.85, 0.94, 4)}, details={"correct": [1, 1, 1, 0]})
    renamed = _document({"accuracy": (0.9, 0.85, 0.94, 4)}, details={"right": [1, 1, 1, 0]})
    with pytest.raises(ConfigError, match=r"candidate's accuracy details hold no per-item "
                                          r"values at 'correct'"):
        evaluate_gate(policy, renamed, complete)
    shorter = _document({"accuracy": (0.9, 0.85, 0.94, 3)}, details={"correct": [1, 1, 0]})
    with pytest.raises(ConfigError, match="different numbers of items"):
        evaluate_gate(policy, shorter, complete)
