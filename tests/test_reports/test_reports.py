from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from result_documents import results_dict

from guard.atomic import write_text_atomic
from guard.cli import main
from guard.errors import DataError, UnknownNameError
from guard.results import parse_results
from reports import WRITERS, results_frame
from reports.writers import render_report

# the learned scorer on every obfuscation of every external row takes minutes on 2 cores
TOXICITY_FAST = ["--set", "toxicity.obfuscation_sample=20",
                 "--set", "toxicity.bootstrap_resamples=100"]
FAST = ["--set", "latency.requests=10", "--set", "latency.warmup=1", "--set", "latency.batches=2",
        "--set", "latency.batch_warmup=0", *TOXICITY_FAST]


@pytest.fixture(scope="module")
def gated_run(tiny_classifier_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real evaluation with a policy the tiny model partly fails."""
    out = tmp_path_factory.mktemp("gated")
    policy = out / "policy.toml"
    policy.write_text("[metrics.accuracy]\nmin = 0.0\nmargin = 0.05\n"
                      "[metrics.latency_p95_ms]\nmax = 0.001\n"
                      "[metrics.toxic_output_rate]\nmax = 0.5\n")
    code = main(["eval", "--model", str(tiny_classifier_dir), "--baseline",
                 str(tiny_classifier_dir), "--gate-policy", str(policy), "--out", str(out / "run"),
                 "--quiet", *FAST])
    assert code == 1  # the latency limit cannot be met
    return out / "run"


def test_every_writer_round_trips(gated_run: Path) -> None:
    document = json.loads((gated_run / "results.json").read_text())
    for fmt in WRITERS.names():
        text = render_report(gated_run / "results.json", fmt)
        assert text.strip()
        if fmt == "json":
            assert json.loads(text) == document
        if fmt == "junit":
            ET.fromstring(text.split("\n", 1)[1])  # well-formed XML


def test_junit_has_one_case_per_check_and_names_failures(gated_run: Path) -> None:
    root = ET.parse(gated_run / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    gate = json.loads((gated_run / "results.json").read_text())["gate"]
    assert len(cases) == len(gate["checks"]) == int(suite.get("tests", "0"))
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == ["latency_p95_ms <= 0.001"]
    assert suite.get("failures") == "1"


def test_markdown_and_html_name_the_failing_check(gated_run: Path) -> None:
    md = (gated_run / "report.md").read_text()
    assert "Release gate: ❌ FAILED" in md and "latency_p95_ms <= 0.001 | ❌ fail" in md
    html = (gated_run / "report.html").read_text()
    assert "Gate FAILED" in html and "latency_p95_ms &lt;= 0.001" in html
    assert html.count("<svg") >= 5 and "<table>" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # self-contained


def test_html_draws_the_toxicity_roc_curves_from_the_results_file(gated_run: Path) -> None:
    document = json.loads((gated_run / "results.json").read_text())
    [toxicity] = [s for s in document["suites"] if s["suite"] == "toxicity"]
    curves = toxicity["details"]["roc_curves"]["bundled"]["any"]
    assert len(curves["fpr"]) == len(curves["tpr"]) <= 101
    html = (gated_run / "report.html").read_text()
    assert html.count('<svg class="roc"') == len(toxicity["details"]["roc_curves"])
    assert "ROC curves of the guard on the bundled set" in html


def test_results_frame(gated_run: Path) -> None:
    frame = results_frame([gated_run / "results.json", gated_run / "baseline" / "results.json"])
    assert {"model", "suite", "metric", "value", "ci_low", "ci_high", "n"} <= set(frame.columns)
    accuracy = frame[frame.metric == "accuracy"]
    assert len(accuracy) == 2 and accuracy.value.nunique() == 1  # same model twice


def test_replay_matches(gated_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # timings from 10 requests on a tiny model are noise (and a busy machine makes single
    # requests 100x slower): this test is about hashes and deterministic metrics, timing
    # tolerance has its own test below
    code = main(["eval", "--replay", str(gated_run / "manifest.json"),
                 "--timing-tolerance", "1000000"])
    out = capsys.readouterr().out
    assert "replay MATCHES" in out and code == 0
    assert "same      accuracy/accuracy" in out
    assert "same      toxicity/guard_roc_auc" in out


def test_replay_timing_tolerance(tmp_path: Path) -> None:
    from eval_suites.audit import compare_replay

    hashes = {"model": "m", "baseline_model": None, "data": "d", "policy": None}
    recorded = {"hashes": hashes, "baseline_metrics": {},
                "metrics": {"accuracy/accuracy": 0.9, "latency/latency_p95_ms": 20.0,
                            "latency/throughput": 100.0}}
    replayed = {"hashes": hashes, "baseline_metrics": {},
                "metrics": {"accuracy/accuracy": 0.9, "latency/latency_p95_ms": 24.9,
                            "latency/throughput": 140.0}}
    (tmp_path / "manifest.json").write_text(json.dumps(replayed))
    assert compare_replay(recorded, tmp_path, timing_tolerance=0.5).matches
    assert not compare_replay(recorded, tmp_path, timing_tolerance=0.2).matches  # throughput
    replayed["metrics"]["accuracy/accuracy"] = 0.8999
    (tmp_path / "manifest.json").write_text(json.dumps(replayed))
    report = compare_replay(recorded, tmp_path, timing_tolerance=0.5)
    assert not report.matches and any(line.startswith("DIFFERENT accuracy/accuracy")
                                      for line in report.lines)


def test_replay_detects_a_changed_model(gated_run: Path, tmp_path: Path, tiny_classifier_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    manifest = json.loads((gated_run / "manifest.json").read_text())
    changed = tmp_path / "model"
    shutil.copytree(tiny_classifier_dir, changed)
    config = json.loads((changed / "config.json").read_text())
    config["classifier_dropout"] = 0.5  # a different config: a different fingerprint
    (changed / "config.json").write_text(json.dumps(config))
    manifest["config"]["model"] = str(changed)
    edited = tmp_path / "manifest.json"
    edited.write_text(json.dumps(manifest))
    assert main(["eval", "--replay", str(edited), "--out", str(tmp_path / "r")]) == 1
    assert "DIFFERENT model hash" in capsys.readouterr().out


def test_report_cli(gated_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(gated_run / "results.json"), "--format", "md"]) == 0
    assert "## Release gate" in capsys.readouterr().out
    out = tmp_path / "r.html"
    assert main(["report", str(gated_run / "results.json"), "--format", "html", "--out",
                 str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(gated_run / "results.json"), "--format", "pdf"]) == 2
    assert "unknown report format 'pdf'" in capsys.readouterr().err
    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    assert main(["report", str(bogus)]) == 2


def test_validate_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", "default"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["metrics"]["latency_p95_ms"]["suite"] == "latency"
    bad = tmp_path / "p.toml"
    bad.write_text("[metrics.accuracy]\nmin = 0.9\nfoo = 1\n")
    assert main(["validate", str(bad)]) == 2
    assert "metrics.accuracy.foo" in capsys.readouterr().err


def test_gate_passes_with_a_policy_the_model_meets(tiny_classifier_dir: Path, tmp_path: Path
                                                   ) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("[metrics.accuracy]\nmin = 0.0\n[metrics.guard_fpr_benign]\nmax = 0.2\n")
    assert main(["eval", "--model", str(tiny_classifier_dir), "--gate-policy", str(policy),
                 "--out", str(tmp_path / "o"), "--quiet", *TOXICITY_FAST]) == 0
    document = json.loads((tmp_path / "o" / "results.json").read_text())
    assert document["gate"]["passed"] and [s["suite"] for s in document["suites"]] == [
        "accuracy", "toxicity"]


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_unknown_format_and_bad_results(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'html'"):
        WRITERS.get("htm")
    (tmp_path / "r.json").write_text('{"schema": "metaverse-guard/results", '
                                     '"schema_version": "9.0"}')
    with pytest.raises(DataError, match="not supported"):
        render_report(tmp_path / "r.json", "md")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                                             "chromium); .ci/run installs it")
def test_html_report_renders_in_headless_chromium(gated_run: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    page = (gated_run / "report.html").resolve().as_uri()
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert dom.count("<svg") >= 5 and dom.count("<table>") >= 3
    assert "Gate FAILED" in dom
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}", page],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_html_plots_attack_success_and_the_privacy_budget() -> None:
    from reports.html import render

    metric = {"name": "attack_success_rate/deepwordbug", "value": 0.8, "ci_low": 0.7,
              "ci_high": 0.9, "n": 40, "unit": "ratio", "higher_is_better": False,
              "ci_method": "wilson", "confidence": 0.95}
    model = {"location": "m", "kind": "local", "sha256": "s" * 64, "labels": ["a"],
             "device": "cpu",
             "manifest": {"privacy": {"epsilon": 7.99, "delta": 1e-5,
                                      "epsilon_per_epoch": [4.2, 6.1, 7.99],
                                      "noise_multiplier": 0.6, "max_grad_norm": 1.0,
                                      "sample_rate": 0.02, "steps": 150, "accountant": "prv"}}}
    document = parse_results(results_dict([{"suite": "robustness", "metrics": [metric]}],
                                          model=model))
    html = render(document)
    assert 'aria-label="attack success by recipe"' in html and ">80%<" in html
    assert 'aria-label="epsilon over training"' in html and html.count("<circle") >= 3
    assert "Privacy budget" in html and "7.99" in html
