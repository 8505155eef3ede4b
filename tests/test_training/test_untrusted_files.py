"""Damaged and tampered files fail with one clear line (exit 2) and never run pickled code.

Covers what reaches the CLI: a training state under ``guard train --resume``, a detoxify
checkpoint under ``guard scan --scorer detoxify``, and model weights under ``guard eval``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from guard.cli import main
from training.resume import OPTIMIZER_FILE, WEIGHTS_FILE, resume_dir_for, save_training_state


class _Payload:
    """Pickles as a call to ``os.system``: what a tampered file would run when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "weights_only" not in err
    return lines[0]


def _damage(path: Path, how: str, marker: Path) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "pickled-code":
        torch.save({"state": _Payload(marker)}, path)
    else:
        raise ValueError(how)


@pytest.mark.parametrize(("file", "how", "message"), [
    (OPTIMIZER_FILE, "pickled-code", "is not a plain tensor checkpoint: it holds pickled "
                                     "Python objects .* and it is refused"),
    (OPTIMIZER_FILE, "empty", "optimizer.pt is empty: it is not a torch checkpoint"),
    (OPTIMIZER_FILE, "truncated", "optimizer.pt is truncated or damaged: it is not a torch"),
    (WEIGHTS_FILE, "truncated", "weights.safetensors is truncated or damaged: it is not a "
                                "readable safetensors file"),
])
def test_train_resume_refuses_a_damaged_or_tampered_state(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, how: str,
        message: str) -> None:
    out = tmp_path / "model"
    state = resume_dir_for(out)
    save_training_state(state, meta={"epoch": 1, "config": {}},
                        weights={"model.w": torch.ones(64)},
                        optimizer={"optimizer": {"state": {}, "param_groups": []}})
    marker = tmp_path / "payload-ran"
    _damage(state / file, how, marker)
    assert main(["train", "--resume", "--out", str(out), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("guard train: error: the resume")
    assert re.search(message, line), line
    assert f"delete {state} and train from the start" in line
    assert not marker.exists()


@pytest.mark.parametrize(("how", "message"), [
    ("empty", "is not a detoxify checkpoint: the file is empty"),
    ("truncated", "is not a detoxify checkpoint: the file is truncated, damaged or not a "
                  "torch checkpoint"),
    ("junk", "is not a detoxify checkpoint: the file is truncated, damaged or not a torch"),
    ("pickled-code", "holds Python objects beyond tensors and plain containers, so it is "
                     "refused, not unpickled"),
    ("wrong-shape", "checkpoint weights do not fit BertForSequenceClassification: size "
                    "mismatch for classifier"),
])
def test_scan_refuses_a_damaged_or_tampered_detoxify_checkpoint(
        detoxify_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        how: str, message: str) -> None:
    path = tmp_path / "bad.ckpt"
    shutil.copyfile(detoxify_checkpoint, path)
    marker = tmp_path / "payload-ran"
    if how == "junk":
        path.write_text("hello, I am not a checkpoint\n")
    elif how == "wrong-shape":  # a plain checkpoint whose head has 3 outputs, config says 6
        loaded = torch.load(path, weights_only=True)
        loaded["state_dict"]["classifier.weight"] = loaded["state_dict"]["classifier.weight"][:3]
        torch.save(loaded, path)
    else:
        _damage(path, how, marker)
    code = main(["scan", "--scorer", "detoxify", "--scorer-option",
                 f"detoxify.checkpoint={path}", "--scorer-option", "detoxify.device=cpu", "hi"])
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("guard scan: error: ") and message in line, line
    assert not marker.exists()


def _model_folder(source: Path, folder: Path) -> Path:
    """A copy of a checkpoint's config and tokenizer, without its weights."""
    folder.mkdir()
    for item in source.iterdir():
        if item.is_file() and item.suffix != ".safetensors":
            shutil.copyfile(item, folder / item.name)
    return folder


@pytest.mark.parametrize(("weights", "how", "message"), [
    ("model.safetensors", "empty", "its safetensors weights (model.safetensors) are empty, "
                                   "truncated or damaged"),
    ("model.safetensors", "truncated", "its safetensors weights (model.safetensors) are empty, "
                                       "truncated or damaged"),
    ("pytorch_model.bin", "empty", "its weights file (pytorch_model.bin) is empty, truncated "
                                   "or not a torch checkpoint"),
])
def test_eval_says_which_weights_file_is_damaged(
        tiny_classifier_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        weights: str, how: str, message: str) -> None:
    folder = _model_folder(tiny_classifier_dir, tmp_path / "model")
    shutil.copyfile(tiny_classifier_dir / "model.safetensors", folder / weights)
    _damage(folder / weights, how, tmp_path / "unused")
    assert main(["eval", "--model", str(folder), "--suite", "accuracy", "--quiet",
                 "--out", str(tmp_path / "out")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("guard eval: error: cannot load a sequence classifier at ")
    assert message in line, line


def test_eval_refuses_pickled_code_in_pytorch_model_bin_and_says_why(
        tiny_classifier_dir: Path, tmp_path: Path) -> None:
    folder = _model_folder(tiny_classifier_dir, tmp_path / "model")
    marker = tmp_path / "payload-ran"
    import pickle

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    guard_exe = Path(sys.executable).with_name("guard")  # the console script: real stderr
    done = subprocess.run([guard_exe, "eval", "--model", str(folder), "--suite", "accuracy",
                           "--quiet", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "TF 2.0" not in line and "from_tf" not in line
    assert "refused to load a sequence classifier" in line
    assert "(pytorch_model.bin) is a pickle holding Python objects beyond tensors" in line
    assert "not a safe, plain weights file. Pickled code is never run" in line
    assert "safetensors" in line.rsplit("never run", 1)[1]
    assert not marker.exists()
