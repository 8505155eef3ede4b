from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guard.cli import main

FAST = ["--set", "latency.requests=10", "--set", "latency.warmup=1", "--set", "latency.batches=2",
        "--set", "latency.batch_warmup=0"]


def test_eval_writes_results_and_report(tiny_classifier_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["eval", "--model", str(tiny_classifier_dir), "--out", str(out), "--quiet", *FAST])
    assert code == 0
    printed = capsys.readouterr().out
    assert "accuracy (ratio)" in printed and "latency_p95_ms (ms)" in printed
    document = json.loads((out / "results.json").read_text())
    assert document["schema"] == "metaverse-guard/results"
    assert document["schema_version"].startswith("1.")
    assert [s["suite"] for s in document["suites"]] == ["accuracy", "latency"]
    accuracy = document["suites"][0]["metrics"][0]
    assert accuracy["name"] == "accuracy" and accuracy["n"] == document["data"]["n"]
    assert document["model"]["manifest"]["mode"] == "clean"
    assert document["suites"][1]["provenance"]["config"]["requests"] == 10
    report = (out / "report.md").read_text()
    assert "## accuracy" in report and "## latency" in report and "95% CI" in report


def test_eval_json_flag_prints_the_document(tiny_classifier_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--model", str(tiny_classifier_dir), "--suite", "accuracy", "--json",
                 "--quiet", "--out", str(tmp_path)])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert [s["suite"] for s in document["suites"]] == ["accuracy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "/nonexistent"], "no model folder at '/nonexistent'"),
        (["--suite", "acuracy"], "Did you mean 'accuracy'"),
        (["--set", "latency.requests"], "expected NAME.OPTION=VALUE"),
        (["--suite", "accuracy", "--set", "latency.requests=3"], "not among the suites run"),
        (["--data", "/nonexistent.csv"], "does not exist"),
    ],
)
def test_eval_usage_errors_exit_2_with_one_line(args: list[str], message: str,
                                                tiny_classifier_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    full = ["eval", "--out", str(tmp_path / "o"), "--quiet"]
    if "--model" not in args:
        full += ["--model", str(tiny_classifier_dir)]
    assert main(full + args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_eval_refuses_unwritable_out(tiny_classifier_dir: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["eval", "--model", str(tiny_classifier_dir), "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_train_cli_writes_a_checkpoint(tiny_bert_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ck"
    code = main(["train", "--model", str(tiny_bert_dir), "--out", str(out), "--epochs", "1",
                 "--batch-size", "64", "--max-length", "24", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert f"checkpoint: {out}" in printed and "test accuracy" in printed
    assert (out / "model.safetensors").is_file()


def test_train_cli_dp_mode_reports_epsilon_and_resume_rules(
        tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dp"
    code = main(["train", "--model", str(tiny_bert_dir), "--out", str(out), "--mode", "dp",
                 "--epochs", "1", "--batch-size", "64", "--max-length", "24", "--epsilon", "8",
                 "--quiet"])
    assert code == 0
    assert "privacy: epsilon " in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["privacy"]["epsilon"] == pytest.approx(8.0, abs=0.05)
    assert manifest["config"]["pooling"] == "mean"  # the private defaults
    head_init = manifest["privacy"]["head_init"]
    assert head_init["method"] == "centroid-span" and head_init["logit_scale"] == 10.0
    # calibrated so that the release alone spends 5/6 of the budget
    assert head_init["noise_multiplier"] == pytest.approx(0.70, abs=0.01)
    # --resume takes the interrupted run's own settings; other settings are refused
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume"]) == 2
    assert "no resumable training state" in capsys.readouterr().err
    plain = tmp_path / "dp-random"
    assert main(["train", "--model", str(tiny_bert_dir), "--out", str(plain), "--mode", "dp",
                 "--epochs", "1", "--batch-size", "64", "--max-length", "24",
                 "--dp-head-init", "random", "--quiet"]) == 0
    assert json.loads((plain / "manifest.json").read_text())["privacy"]["head_init"] == \
        {"method": "random"}


def test_train_rejects_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path / "x"), "--epochs", "0"]) == 2
    assert "epochs" in capsys.readouterr().err


def test_console_script_entry_point(tmp_path: Path) -> None:
    guard_exe = Path(sys.executable).with_name("guard")
    listed = subprocess.run([guard_exe, "ls", "suites"], capture_output=True, text=True,
                            check=True)
    assert listed.stdout.split()[0::2][:2] == ["accuracy", "latency"] or "accuracy" in listed.stdout
    missing = subprocess.run([guard_exe, "eval", "--model", "/nonexistent", "--out",
                              str(tmp_path)], capture_output=True, text=True,
                             env={**os.environ})
    assert missing.returncode == 2
    assert "no model folder at '/nonexistent'" in missing.stderr
    helped = subprocess.run([guard_exe, "eval", "--help"], capture_output=True, text=True,
                            check=True)
    assert "--suite" in helped.stdout and "results.json" in helped.stdout
