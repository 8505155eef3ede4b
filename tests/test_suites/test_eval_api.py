"""The evaluation API under ``guard eval``: one config, the same results from Python and CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from eval_suites import EvalConfig, evaluate, plan, replay
from guard.cli import main
from guard.errors import ConfigError, DataError, UnknownNameError
from guard.results import load_results, unknown_fields

FAST_ACCURACY = {"accuracy": {"bootstrap_resamples": 50}}
POLICY = "[metrics.accuracy]\nmin = 0.0\nmargin = 0.05\n[metrics.macro_f1]\nmin = 0.0\n"


def _without_run_times(text: str) -> str:
    """The results text without the wall-clock fields (when the run started, how long)."""
    document = json.loads(text)
    document.pop("created_at")
    for suite in document["suites"]:
        suite["provenance"].pop("started_at")
        suite["provenance"].pop("duration_s")
    return json.dumps(document, indent=2, ensure_ascii=False)


def test_cli_and_api_write_the_same_results(tiny_classifier_dir: Path, tmp_path: Path) -> None:
    policy = tmp_path / "gate.toml"
    policy.write_text(POLICY)
    config = EvalConfig(model=str(tiny_classifier_dir), baseline=str(tiny_classifier_dir),
                        gate_policy=str(policy), suites=("accuracy",), options=FAST_ACCURACY,
                        seed=3, device="cpu")
    outcome = evaluate(config, out=tmp_path / "api", progress=False)
    code = main(["eval", "--model", str(tiny_classifier_dir), "--baseline",
                 str(tiny_classifier_dir), "--gate-policy", str(policy), "--suite", "accuracy",
                 "--set", "accuracy.bootstrap_resamples=50", "--seed", "3", "--device", "cpu",
                 "--out", str(tmp_path / "cli"), "--quiet"])
    assert code == 0 and outcome.passed and outcome.gate is not None
    for name in ("results.json", "baseline/results.json"):
        api, cli = ((tmp_path / run / name).read_text() for run in ("api", "cli"))
        assert _without_run_times(api) == _without_run_times(cli)
        assert api.count("\n") == cli.count("\n")  # same layout, not only the same values
    # the recorded command reruns the evaluation; the manifest holds the resolved config
    document = load_results(tmp_path / "api" / "results.json")
    assert document.command[:2] == ["guard", "eval"] and "--gate-policy" in document.command
    manifest = json.loads((tmp_path / "api" / "manifest.json").read_text())
    assert EvalConfig(**manifest["config"]) == config
    assert {p.name for p in outcome.files} == {"results.json", "report.md", "report.html",
                                               "junit.xml", "manifest.json"}
    assert list(unknown_fields(document)) == []  # everything written is declared in the models


def test_evaluate_without_an_output_folder_writes_nothing(tiny_classifier_dir: Path,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = evaluate(EvalConfig(model=str(tiny_classifier_dir), suites=("accuracy",),
                                  options=FAST_ACCURACY, device="cpu"), progress=False)
    assert outcome.files == () and list(tmp_path.iterdir()) == []
    accuracy = outcome.results.suite("accuracy")
    assert accuracy is not None and 0.0 <= accuracy.metric("accuracy").value <= 1.0
    assert outcome.gate is None and outcome.passed


def test_replay_is_evaluate_of_the_recorded_config(tiny_classifier_dir: Path,
                                                   tmp_path: Path) -> None:
    config = EvalConfig(model=str(tiny_classifier_dir), suites=("accuracy",),
                        options=FAST_ACCURACY, device="cpu", seed=1)
    evaluate(config, out=tmp_path / "run", progress=False)
    report = replay(tmp_path / "run" / "manifest.json", out=tmp_path / "again")
    assert report.matches and any("accuracy/accuracy" in line for line in report.lines)
    # a manifest of schema 1.0 has no config: the invocation it recorded replays the same way
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    del manifest["config"]
    manifest["schema_version"] = "1.0"
    old = tmp_path / "old" / "manifest.json"
    old.parent.mkdir()
    old.write_text(json.dumps(manifest))
    assert replay(old, out=tmp_path / "old-again").matches


def test_replay_reruns_the_recorded_suite_settings_not_todays_defaults(
        tiny_classifier_dir: Path, tmp_path: Path) -> None:
    config = EvalConfig(model=str(tiny_classifier_dir), suites=("accuracy",),
                        options=FAST_ACCURACY, device="cpu")
    evaluate(config, out=tmp_path / "run", progress=False)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    settings = manifest["suite_settings"]
    assert list(settings) == ["accuracy"] and settings["accuracy"]["bootstrap_resamples"] == 50
    # a run that left suites and options at defaults that a later version changed: the
    # replay still runs the suites and settings the run resolved, not today's defaults
    manifest["config"]["suites"], manifest["config"]["options"] = [], {}
    edited = tmp_path / "edited" / "manifest.json"
    edited.parent.mkdir()
    edited.write_text(json.dumps(manifest))
    assert replay(edited, out=tmp_path / "again").matches
    again = load_results(tmp_path / "again" / "results.json")
    assert [suite.suite for suite in again.suites] == ["accuracy"]
    assert again.suites[0].provenance.config == settings["accuracy"]
    manifest["suite_settings"] = {"accuracy": 50}
    edited.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="suite_settings"):
        replay(edited, out=tmp_path / "bad")


def test_config_precedence_defaults_file_flags(tmp_path: Path) -> None:
    file = tmp_path / "eval.toml"
    file.write_text('model = "from-file"\nseed = 4\nsuites = ["accuracy", "latency"]\n'
                    "[options.latency]\nrequests = 30\nwarmup = 2\n")
    config = EvalConfig.from_sources(file, seed=9, options={"latency": {"requests": 50}},
                                     data=None)
    assert config.model == "from-file" and config.seed == 9 and config.data == "bundled"
    assert config.options == {"latency": {"requests": 50, "warmup": 2}}
    assert EvalConfig.from_sources(suites="accuracy, latency").suites == ("accuracy", "latency")
    file.write_text('modle = "typo"\n')
    with pytest.raises(ConfigError, match="modle"):
        EvalConfig.from_sources(file)
    with pytest.raises(ConfigError, match="split"):
        EvalConfig.from_sources(split="dev")


def test_plan_checks_names_before_any_model_loads(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="accuracy"):
        plan(EvalConfig(suites=("acuracy",)))
    with pytest.raises(ConfigError, match="not among the suites run"):
        plan(EvalConfig(suites=("accuracy",), options={"latency": {"requests": 5}}))
    policy = tmp_path / "gate.toml"
    policy.write_text("confidence = 0.9\n[metrics.toxic_output_rate]\nmax = 0.1\n")
    resolved = plan(EvalConfig(gate_policy=str(policy)))
    assert resolved.suites == ("toxicity",)  # the policy's suites when none are named
    assert resolved.options == {"toxicity": {"confidence": 0.9}}
    with pytest.raises(ConfigError, match="contradicts"):
        plan(EvalConfig(gate_policy=str(policy), options={"toxicity": {"confidence": 0.95}}))


def test_eval_reads_a_config_file_and_flags_override_it(
        tiny_classifier_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "eval.toml"
    file.write_text(f'model = "{tiny_classifier_dir}"\nsuites = ["accuracy"]\nseed = 5\n'
                    'device = "cpu"\n[options.accuracy]\nbootstrap_resamples = 40\n')
    assert main(["eval", "--config", str(file), "--seed", "6", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    document = load_results(tmp_path / "o" / "results.json")
    assert document.seed == 6
    assert document.suites[0].provenance.config["bootstrap_resamples"] == 40
    file.write_text("sead = 1\n")
    assert main(["eval", "--config", str(file), "--out", str(tmp_path / "p")]) == 2
    assert "sead" in capsys.readouterr().err


def test_old_policy_spelling_still_works_with_a_warning(
        tiny_classifier_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "gate.toml"
    policy.write_text(POLICY.split("[metrics.macro_f1]")[0].replace("margin = 0.05\n", ""))
    common = ["--model", str(tiny_classifier_dir), "--suite", "accuracy", "--set",
              "accuracy.bootstrap_resamples=20", "--device", "cpu", "--quiet"]
    assert main(["eval", "--policy", str(policy), "--out", str(tmp_path / "o"), *common]) == 0
    err = capsys.readouterr().err
    assert re.search(r"--policy` is deprecated.*use --gate-policy", err)
    assert load_results(tmp_path / "o" / "results.json").gate is not None
    assert main(["eval", "--policy", str(policy), "--gate-policy", str(policy), "--out",
                 str(tmp_path / "p"), *common]) == 2
    assert "deprecated spelling" in capsys.readouterr().err


def test_a_results_file_that_does_not_fit_the_schema_is_refused(tmp_path: Path) -> None:
    from guard.errors import DataError

    bad: dict[str, Any] = {"schema": "metaverse-guard/results", "schema_version": "1.1",
                           "suites": [{"suite": "accuracy"}]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"do not fit schema 1\.1"):
        load_results(path)
    bad["schema_version"] = "2.0"
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="not supported"):
        load_results(path)
