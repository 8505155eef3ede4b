"""The README's main job on the real all-MiniLM-L6-v2: train the default model, evaluate it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guard.cli import main


@pytest.mark.slow
def test_default_assistant_reaches_90_percent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GUARD_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["eval", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    accuracy = document["suites"][0]["metrics"][0]
    assert accuracy["name"] == "accuracy" and accuracy["value"] >= 0.90
    assert accuracy["ci_low"] < accuracy["value"] < accuracy["ci_high"]
    latency = {m["name"]: m for m in document["suites"][1]["metrics"]}
    assert 0 < latency["latency_p50_ms"]["value"] <= latency["latency_p99_ms"]["value"]
    assert document["model"]["manifest"]["base_model"]["spec"] == "default"
    # The second run reuses the cached model instead of training again.
    cached = list((tmp_path / "cache" / "models").iterdir())
    assert main(["eval", "--suite", "accuracy", "--out", str(tmp_path / "again"),
                 "--quiet"]) == 0
    assert list((tmp_path / "cache" / "models").iterdir()) == cached
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["suites"][0]["metrics"][0]["value"] == accuracy["value"]
    assert again["model"]["sha256"] == document["model"]["sha256"]
