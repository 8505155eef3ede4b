"""Hostile and malformed input to the CLI: one-line errors with exit 2, never a crash or a pass."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from guard.cli import main
from guard.errors import ConfigError
from guard.policy import CategoryRule, Policy

QUICK_TRAIN = ["--epochs", "1", "--batch-size", "64", "--max-length", "24", "--quiet"]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


# -- guard scan: texts that are not strings, not Unicode, or too big ------------------------

@pytest.mark.parametrize(("line", "said"), [
    ('{"text": null}', "line 2: 'text' is null, not a string"),
    ('{"text": 7}', "line 2: 'text' is a JSON int, not a string"),
    ('{"text": ["you are an idiot"]}', "line 2: 'text' is a JSON list, not a string"),
    ('{"words": "hi"}', "line 2 is not a JSON object with a 'text' field"),
])
def test_scan_refuses_non_string_json_text(tmp_path: Path, line: str, said: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # {"text": null} used to scan the string "None", allow it and exit 0
    f = tmp_path / "out.jsonl"
    f.write_text('{"text": "have a nice day"}\n' + line + "\n")
    assert main(["scan", "--jsonl", "--file", str(f)]) == 2
    assert said in _one_line_error(capsys)


def test_scan_refuses_a_lone_surrogate_without_crashing(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # used to crash with UnicodeEncodeError while printing the decision
    f = tmp_path / "out.jsonl"
    f.write_text('{"text": "fine"}\n{"text": "bad \\ud800 text"}\n')
    assert main(["scan", "--jsonl", "--file", str(f), "--json"]) == 2
    err = _one_line_error(capsys)
    assert "out.jsonl: line 2: the text holds a lone surrogate '\\ud800' at character 5" in err
    err.encode("ascii")  # the message itself is printable anywhere


def test_scan_refuses_arguments_and_stdin_that_are_not_utf8(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Python hands an argument byte that is not UTF-8 over as a lone surrogate (\udcff)
    assert main(["scan", "fine", "caf\udce9"]) == 2
    assert "TEXT argument 2 is not valid UTF-8 (byte 0xe9 at character 4)" in \
        _one_line_error(capsys)
    # standard input is read as bytes: with a strict UTF-8 locale it used to raise
    # UnicodeDecodeError out of sys.stdin.read()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\ncaf\xe9\n"),
                                                       encoding="utf-8", errors="strict"))
    assert main(["scan"]) == 2
    assert "stdin: line 2 is not valid UTF-8 (byte 0xe9 at offset 6)" in \
        _one_line_error(capsys)


def test_scan_prints_to_a_terminal_that_cannot_encode_the_text(
        monkeypatch: pytest.MonkeyPatch) -> None:
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    assert main(["scan", "--scorer", "profanity-linear", "caf\u00e9 \U0001f600"]) == 0
    stdout.flush()
    printed = stdout.buffer.getvalue().decode("ascii")
    assert printed.startswith("ALLOW") and printed.rstrip().endswith("caf\\xe9 \\U0001f600")


def test_scan_limits_text_and_input_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "out.txt"
    f.write_text("short\n" + "a" * (1024 * 1024 + 1) + "\nshort\n")
    assert main(["scan", "--file", str(f)]) == 2  # the 1 MiB default
    assert ("out.txt: line 2: the text is 1048577 bytes long, over the limit of 1 MiB per "
            "text (set GUARD_MAX_TEXT_BYTES to raise it)") in _one_line_error(capsys)
    j = tmp_path / "out.jsonl"
    j.write_text('{"text": "fine"}\n{"text": "twelve bytes"}\n')
    monkeypatch.setenv("GUARD_MAX_TEXT_BYTES", "11")
    assert main(["scan", "--jsonl", "--file", str(j)]) == 2
    assert "out.jsonl: line 2: the text is 12 bytes long, over the limit of 11 bytes" in \
        _one_line_error(capsys)
    monkeypatch.setenv("GUARD_MAX_FILE_BYTES", "20")
    assert main(["scan", "--jsonl", "--file", str(j)]) == 2
    assert "out.jsonl: the file is 42 bytes, over the limit of 20 bytes per file" in \
        _one_line_error(capsys)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"fine\n" * 5)))
    assert main(["scan"]) == 2
    assert "stdin: line 5: the input is 25 bytes, over the limit of 20 bytes" in \
        _one_line_error(capsys)


# -- guard eval --data: CSV read strictly --------------------------------------------------

def test_eval_refuses_csv_with_unquoted_commas(tiny_classifier_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # pandas used to take the first field as an index: texts " please", accuracy 0.0, exit 0
    data = tmp_path / "d.csv"
    data.write_text("text,label\nwhere is the hall, please,directions\n"
                    "when, please do you open,opening_hours\n")
    out = tmp_path / "new-out"
    assert main(["eval", "--model", str(tiny_classifier_dir), "--data", str(data),
                 "--suite", "accuracy", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "d.csv: 2 bad row(s):" in err
    assert "line 2: 3 field(s) but the header has 2; quote texts that hold commas" in err
    assert "line 3: 3 field(s) but the header has 2" in err
    assert not out.exists()  # the failed run takes back the folder it made


# -- --out is checked before any work, and failed runs leave no empty folder ---------------

def test_report_out_is_checked_before_rendering(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    missing = str(tmp_path / "no-results.json")  # the --out error comes first
    cases = [(folder, "is a folder; pass a file path"),
             (blocker / "r.md", f"{blocker} is a file, not a folder"),
             (Path("/dev/null"), "is not a regular file")]
    if Path("/proc/self").is_dir():
        cases.append((Path("/proc/guard-test/r.md"), "cannot create the folder /proc/guard-test"))
    for out, said in cases:
        assert main(["report", missing, "--out", str(out)]) == 2
        err = _one_line_error(capsys)
        assert f"guard report: error: --out {out}" in err and said in err


def test_failed_report_removes_the_folders_it_made(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a" / "b" / "report.md"
    assert main(["report", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    assert "cannot read results" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_train_checks_out_before_training(tiny_bert_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # used to train to the end and fail when writing the checkpoint
    assert main(["train", "--model", str(tiny_bert_dir), "--out", "/proc/guard-ck",
                 *QUICK_TRAIN]) == 2
    err = _one_line_error(capsys)
    assert "--out /proc/guard-ck: cannot write into the folder /proc" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--model", str(tiny_bert_dir), "--out", str(blocker / "ck"),
                 *QUICK_TRAIN]) == 2
    assert f"{blocker} is a file, not a folder" in _one_line_error(capsys)


def test_failed_train_and_eval_leave_no_empty_out_folder(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    assert main(["train", "--out", str(tmp_path / "runs" / "ck"), "--epochs", "0"]) == 2
    assert "epochs" in _one_line_error(capsys)
    assert main(["eval", "--model", str(tmp_path / "missing"), "--quiet",
                 "--out", str(tmp_path / "new" / "results")]) == 2
    assert "no model folder" in _one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder the user made stays, even empty
    assert main(["eval", "--model", str(tmp_path / "missing"), "--quiet",
                 "--out", str(kept)]) == 2
    assert kept.is_dir()


# -- policies: values outside a metric's range, categories the scorer lacks ----------------

@pytest.mark.parametrize(("toml", "said"), [
    ("[metrics.accuracy]\nmin = -0.5\n",
     "metrics: accuracy.min = -0.5 is outside the range of accuracy (a ratio, in [0, 1])"),
    ("[metrics.latency_p95_ms]\nmax = -10\n",
     "latency_p95_ms.max = -10 is outside the range of latency_p95_ms (in ms, at least 0)"),
    ("[metrics.guard_roc_auc]\nmin = 1.2\n", "guard_roc_auc.min = 1.2 is outside the range"),
    ('[metrics."f1/greeting"]\nmin = 2\n', "f1/greeting.min = 2 is outside the range of f1"),
    ("[metrics.mean_queries]\nmax = -1\n", "(in queries, at least 0)"),
    ("[metrics.accuracy]\nmargin = 1.5\n", "accuracy.margin = 1.5 is wider than the whole range"),
    ("[metrics.accuracy]\nmin = nan\n", "metrics.accuracy.min: Input should be a finite number"),
    ("[metrics.latency_p95_ms]\nmax = inf\n", "Input should be a finite number"),
])
def test_validate_refuses_limits_outside_the_metric_range(
        tmp_path: Path, toml: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "gate.toml"
    policy.write_text(toml)
    assert main(["validate", str(policy)]) == 2
    assert said in _one_line_error(capsys)


def test_validate_accepts_limits_at_the_range_ends_and_signed_gaps(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "gate.toml"
    policy.write_text("[metrics.accuracy]\nmin = 0.0\nmax = 1.0\n[metrics.latency_p95_ms]\n"
                      "max = 0\n[metrics.bias_fpr_gap]\nmax = -0.05\n")  # a gap may be < 0
    assert main(["validate", str(policy)]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["metrics"]["bias_fpr_gap"] == {"suite": "toxicity", "min": None,
                                                   "max": -0.05, "margin": None}


def test_guard_policy_category_typos_are_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # [categories.toxcity] used to be accepted and silently never applied
    policy = tmp_path / "guard.toml"
    policy.write_text("[categories.toxcity]\nthreshold = 0.3\n")
    expected = (f"policy {policy}: unknown category [categories.toxcity] (did you mean "
                "'toxicity'?): the scorer scores toxicity, so that rule would never apply")
    assert main(["scan", "--scorer", "profanity-linear", "--guard-policy", str(policy), "hi"]) == 2
    assert expected in _one_line_error(capsys)
    assert main(["validate", "--scorer", "profanity-linear", str(policy)]) == 2
    assert expected in _one_line_error(capsys)
    policy.write_text('safe_message = "No."\n[categories.toxicity]\nthreshold = 0.3\n')
    assert main(["validate", "--scorer", "profanity-linear", str(policy)]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["kind"] == "guard" and resolved["scorer_categories"] == ["toxicity"]
    assert resolved["categories"]["toxicity"]["threshold"] == 0.3


def test_policy_check_categories_lists_every_unknown_name() -> None:
    policy = Policy(categories={"toxcity": CategoryRule(), "insult": CategoryRule(),
                                "zzz": CategoryRule()})
    policy.check_categories(["toxcity", "insult", "zzz"])  # all known: no error
    with pytest.raises(ConfigError) as err:
        policy.check_categories(["toxicity", "insult"], where="my policy")
    assert str(err.value) == (
        "my policy: unknown categories [categories.toxcity] (did you mean 'toxicity'?), "
        "[categories.zzz]: the scorer scores insult, toxicity, so those rules would never "
        "apply")
