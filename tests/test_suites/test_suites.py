from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import evaluate
import numpy as np
import pytest

from eval_suites import SUITES, run_suites
from eval_suites.accuracy import AccuracySuite
from eval_suites.base import suite_from_options
from eval_suites.generation import bundled_prompts
from eval_suites.metrics import METRIC_MODULES, metric_path
from eval_suites.obfuscate import OBFUSCATORS
from guard.data import TextDataset, load_eval_data
from guard.errors import ConfigError, DataError
from guard.models import HFClassifier
from guard.models.tutor import TutorGenerator

FAST = {"latency": {"requests": 20, "warmup": 2, "batches": 3, "batch_warmup": 1},
        "robustness": {"n": 6},
        "toxicity": {"external_data": None, "identity_templates": None,
                     "obfuscation_sample": 10, "bootstrap_resamples": 50},
        "generation": {"scorer": "profanity-linear", "timed_prompts": 2, "batch_size": 3,
                       "bootstrap_resamples": 50}}


class KeywordClassifier:
    """A transparent rule-based classifier, so expected metrics can be worked out by hand."""

    labels = ("greeting", "refund")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        refund = np.array([1.0 if "refund" in t else 0.0 for t in texts])
        return np.stack([1 - refund * 0.9 - 0.05, refund * 0.9 + 0.05], axis=1)


def test_accuracy_suite_on_a_known_classifier() -> None:
    data = TextDataset.from_rows(
        ["hello", "refund please", "hi refund", "money back"],
        ["greeting", "refund", "greeting", "refund"], source="mem")
    result = AccuracySuite(bootstrap_resamples=100).run(KeywordClassifier(), data, seed=0)
    acc = result.metric("accuracy")
    assert acc.value == pytest.approx(0.5) and acc.n == 4 and acc.ci_low < 0.5 < acc.ci_high
    assert result.details["confusion_matrix"] == [[1, 1], [1, 1]]
    assert result.metric("f1/refund").value == pytest.approx(0.5)
    worst = result.details["worst_examples"]
    assert {w["text"] for w in worst} == {"hi refund", "money back"}
    assert worst[0]["text"] == "hi refund"  # most confident mistake first
    assert result.provenance.data["sha256"] == data.sha256


def test_accuracy_suite_rejects_labels_the_model_lacks() -> None:
    data = TextDataset.from_rows(["x"], ["weather"], source="mem")
    with pytest.raises(DataError, match="not among the model's labels"):
        AccuracySuite().run(KeywordClassifier(), data)


@pytest.mark.parametrize("name", SUITES.names())
def test_every_suite_honours_the_result_contract(name: str, tiny_classifier_dir: Path,
                                                 tiny_chat_dir: Path) -> None:
    model: Any
    if SUITES.get(name).model_kind == "generator":
        model = TutorGenerator.from_pretrained(tiny_chat_dir, device="cpu", max_new_tokens=8)
        data = bundled_prompts(limit=2)
    else:
        model = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
        data = load_eval_data("bundled", allowed_labels=model.labels)
    suite = suite_from_options(SUITES.get(name), FAST.get(name))
    result = suite.run(model, data, seed=0)
    declared = {spec.name for spec in suite.metric_specs}
    assert result.suite == name and result.metrics
    for metric in result.metrics:
        assert metric.name.split("/")[0] in declared
        assert metric.n > 0
        assert metric.ci_low <= metric.value <= metric.ci_high
    prov = result.provenance
    assert prov.model["sha256"] == model.fingerprint and prov.device == "cpu"
    assert prov.data["n"] == len(data) and prov.packages["torch"] != "not installed"
    assert prov.duration_s > 0
    assert result.to_dict()["suite"] == name


def test_latency_suite_reports_percentiles_in_order(tiny_classifier_dir: Path) -> None:
    model = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    data = load_eval_data("bundled")
    [result] = run_suites(model, data, ["latency"], options=FAST)
    p50, p95, p99 = (result.metric(f"latency_p{q}_ms").value for q in (50, 95, 99))
    assert 0 < p50 <= p95 <= p99
    assert len(result.details["latencies_ms"]) == 20
    assert result.metric("throughput").n == 3 and result.details["batch_size"] == 32


def test_unknown_suite_option_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown option.*'request'"):
        suite_from_options(SUITES.get("latency"), {"request": 5})
    with pytest.raises(ConfigError, match="must be >= 1"):
        suite_from_options(SUITES.get("latency"), {"requests": 0})


@pytest.mark.parametrize("name", METRIC_MODULES)
def test_metric_modules_load_by_path_offline(name: str) -> None:
    module = evaluate.load(metric_path(name))
    if name == "latency_percentiles":
        x = [float(v) for v in range(1, 101)]
        out = module.compute(predictions=x, references=x)
        assert out["p50"] == pytest.approx(50.5) and out["p99_ci_high"] <= 100
    else:
        out = module.compute(predictions=[0, 1, 1, 2], references=[0, 1, 0, 2])
        key = "accuracy" if name == "accuracy_ci" else "macro_f1"
        assert out[f"{key}_ci_low"] <= out[key] <= out[f"{key}_ci_high"]
        expected = 0.75 if name == "accuracy_ci" else (2 / 3 + 2 / 3 + 1) / 3
        assert out[key] == pytest.approx(expected)


def test_toxicity_suite_measures_outputs_and_guard(tiny_classifier_dir: Path) -> None:
    model = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    data = load_eval_data("bundled")
    options = {"toxicity": {"obfuscation_sample": 40, "bootstrap_resamples": 200}}
    [result] = run_suites(model, data, ["toxicity"], options=options)
    names = {m.name for m in result.metrics}
    assert {"toxic_output_rate", "guard_roc_auc", "guard_recall", "guard_fpr_benign",
            "guard_recall_obfuscated", "external_roc_auc", "external_recall",
            "external_fpr_benign", "external_recall_at_2pct_fpr", "external_ece",
            "bias_fpr_gap"} <= names
    assert result.details["scorer"] == "harm-minilm"  # the learned default
    assert result.metric("toxic_output_rate").value == 0.0  # the bundled answers are clean
    assert result.metric("toxic_output_rate").n == len(data)
    # the bundled set was never trained on; the external set is a split the build never saw
    assert result.metric("guard_roc_auc").value > 0.9
    assert result.metric("guard_fpr_benign").value < 0.05
    assert result.metric("external_roc_auc").value > 0.9
    assert result.metric("external_fpr_benign").value < 0.1
    per_category = {m.name for m in result.metrics if m.name.startswith("external_roc_auc/")}
    assert {"external_roc_auc/toxicity", "external_roc_auc/harmful_instructions"} <= per_category
    recall = result.metric("guard_recall").value
    # the normaliser keeps obfuscated insults about as detectable as plain ones
    assert result.metric("guard_recall_obfuscated").value >= 0.9 * recall
    assert set(result.details["guard_recall_by_obfuscation"]) == set(OBFUSCATORS)
    # reported, with its interval; the learned scorer still flags some identity terms more
    # (see the scorer's datasheet), but not wholesale
    bias = result.metric("bias_fpr_gap")
    assert bias.ci_low <= bias.value <= bias.ci_high and bias.value < 0.5
    assert result.details["bias_by_group"] and result.details["bias_worst_group"]


def test_toxicity_suite_scores_a_generator(tiny_classifier_dir: Path, tiny_gpt2_dir: Path) -> None:
    model = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    data = load_eval_data("bundled")
    options = {"toxicity": {**FAST["toxicity"], "generator": str(tiny_gpt2_dir),
                            "max_new_tokens": 4}}
    [result] = run_suites(model, data, ["toxicity"], options=options)
    rate = result.metric("generator_toxic_output_rate")
    assert rate.n == 60 and 0 <= rate.value <= 1
    assert len(result.details["worst_completions"]) == 5


def test_robustness_suite_per_recipe(tiny_classifier_dir: Path) -> None:
    model = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    data = load_eval_data("bundled")
    options = {"robustness": {"recipes": ["deepwordbug", "pruthi"], "n": 8}}
    [result] = run_suites(model, data, ["robustness"], options=options)
    for recipe in ("deepwordbug", "pruthi"):
        clean = result.metric(f"clean_accuracy/{recipe}")
        under = result.metric(f"accuracy_under_attack/{recipe}")
        assert clean.n == under.n == 8 and under.value <= clean.value
        assert result.details["recipes"][recipe]["constraint_set"].startswith(recipe)
    assert all(w["recipe"] in ("deepwordbug", "pruthi") for w in result.details["worst_examples"])


def test_robustness_suite_checks_typos_and_synonym_swaps_by_default(
        tiny_classifier_dir: Path) -> None:
    model = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    [result] = run_suites(model, load_eval_data("bundled"), ["robustness"],
                          options={"robustness": {"n": 6}})
    assert list(result.details["recipes"]) == ["deepwordbug", "textfooler-offline"]
    for recipe in ("deepwordbug", "textfooler-offline"):
        assert result.metric(f"accuracy_under_attack/{recipe}").n == 6
        assert result.details["recipes"][recipe]["constraint_set"].startswith(f"{recipe}:")
