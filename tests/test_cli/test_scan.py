from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.cli import main


def test_scan_exit_codes_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "The museum opens at nine."]) == 0
    assert "ALLOW" in capsys.readouterr().out
    assert main(["scan", "hello", "y0u ar3 an 1d10t"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ALLOW") and lines[1].startswith("BLOCK")


def test_scan_file_jsonl_and_json_output(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "outputs.jsonl"
    f.write_text('{"text": "have a nice day"}\n{"text": "you are an idiot"}\n')
    assert main(["scan", "--file", str(f), "--jsonl", "--json"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["action"] for r in records] == ["allow", "block"]
    assert records[1]["input"] == "you are an idiot" and records[1]["scores"]["toxicity"] > 0.5


def test_scan_policy_and_usage_errors(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[default]\naction = "redact"\n')
    assert main(["scan", "--guard-policy", str(policy), "you are a stupid idiot, welcome"]) == 0
    assert "REDACT" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert main(["scan", "--file", str(bad), "--jsonl"]) == 2
    assert "line 1 is not a JSON object" in capsys.readouterr().err
    assert main(["scan", "--scorer", "detoxfy", "x"]) == 2
    assert "Did you mean 'detoxify'" in capsys.readouterr().err
    assert main(["scan", "--scorer-option", "detoxify.checkpoint=x", "hi"]) == 2
    assert "not in --scorer" in capsys.readouterr().err


def test_scan_with_a_local_detoxify_checkpoint(detoxify_checkpoint: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", "--scorer", "detoxify,profanity-linear", "--json",
                 "--scorer-option", f"detoxify.checkpoint={detoxify_checkpoint}",
                 "--scorer-option", "detoxify.device=cpu", "you are an idiot"])
    assert code == 1
    record = json.loads(capsys.readouterr().out)
    assert {"toxicity", "threat", "insult"} <= set(record["scores"])
