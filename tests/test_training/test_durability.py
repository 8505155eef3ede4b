"""Checkpoint folder replacement under kill -9: old or new at the path, never neither.

A child process runs the real writer (``guard.atomic.write_dir_atomic``, ``save_training_state``,
``write_checkpoint``) and sends itself SIGKILL just before or after one of its file-system
steps (folder creation, rename, swap, removal, each file deleted while a folder is removed,
each file written into the staging folder). The test process then reads the target the way
the next run would and checks that it finds a complete old or new copy and no leftovers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from guard.atomic import recover_dir, remove_dir, write_dir_atomic

# The child: wraps the writer's file-system steps so that it kills itself at one of them.
# argv: mode (swap|fallback), phase (write|recover|state|checkpoint), kill point (a step
# number, "name#count", or 0 for no kill), target folder, then phase arguments.
CHILD = r"""
import os, signal, sys
from pathlib import Path
import guard.atomic as atomic

mode, phase, kill_at, target = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
if mode == "fallback":
    atomic._renameat2 = lambda: None  # a file system without renameat2(RENAME_EXCHANGE)
steps, seen = 0, {}

def step(name):
    global steps
    steps += 1
    seen[name] = seen.get(name, 0) + 1
    if kill_at in (str(steps), f"{name}#{seen[name]}"):
        os.kill(os.getpid(), signal.SIGKILL)

def wrap(name):
    real = getattr(atomic, name)
    def wrapped(*args, **kwargs):
        step(name + ":before")
        result = real(*args, **kwargs)
        step(name + ":after")
        return result
    setattr(atomic, name, wrapped)

for name in ("_mkdir", "_rename", "_exchange", "_remove_tree"):
    wrap(name)
real_unlink = os.unlink
def unlink(*args, **kwargs):  # each file deleted while a folder is removed
    step("unlink")
    return real_unlink(*args, **kwargs)
os.unlink = unlink

if phase == "write":
    with atomic.write_dir_atomic(target) as staging:
        for i in range(3):
            (staging / f"part{i}").write_text("new")
            step("fill")
elif phase == "recover":
    atomic.recover_dir(target)
elif phase == "remove":
    from training.resume import discard_training_state
    discard_training_state(target)
elif phase == "state":
    import torch
    from training.resume import save_training_state
    save_training_state(target, meta={"epoch": 2}, weights={"model.w": torch.full((4,), 2.0)},
                        optimizer={"step": torch.tensor(2)})
elif phase == "checkpoint":
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from training.checkpoint import write_checkpoint
    source = sys.argv[5]
    write_checkpoint(target, model=AutoModelForSequenceClassification.from_pretrained(source),
                     tokenizer=AutoTokenizer.from_pretrained(source),
                     manifest={"kind": "guard-checkpoint", "generation": "new"})
print(steps)
"""


def _child(mode: str, phase: str, kill_at: str, target: Path, *extra: str
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, mode, phase, kill_at, str(target),
                           *extra], capture_output=True, text=True, timeout=300, check=False)


def _write(target: Path, value: str) -> None:
    with write_dir_atomic(target) as staging:
        for i in range(3):
            (staging / f"part{i}").write_text(value)


def _generation(target: Path) -> str:
    """``old`` or ``new`` for a complete copy; fails for a mixed or partial one."""
    values = {p.name: p.read_text() for p in target.iterdir()}
    assert sorted(values) == ["part0", "part1", "part2"], values
    assert len(set(values.values())) == 1, values
    return values["part0"]


def _siblings(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir())


def _count_steps(tmp_path: Path, mode: str, *, existing: bool) -> int:
    target = tmp_path / "dry" / "ck"
    if existing:
        _write(target, "old")
    done = _child(mode, "write", "0", target)
    assert done.returncode == 0, done.stderr
    assert _generation(target) == "new" and _siblings(target) == ["ck"]
    return int(done.stdout.strip())


@pytest.mark.parametrize("existing", [True, False], ids=["replace", "first-write"])
@pytest.mark.parametrize("mode", ["swap", "fallback"])
def test_a_kill_at_any_step_leaves_the_old_or_the_new_folder(tmp_path: Path, mode: str,
                                                              existing: bool) -> None:
    steps = _count_steps(tmp_path, mode, existing=existing)
    assert steps >= 7  # mkdir, three files, renames or the swap, file deletions
    outcomes = set()
    for k in range(1, steps + 1):
        target = tmp_path / f"k{k}" / "ck"
        target.parent.mkdir()
        if existing:
            _write(target, "old")
        killed = _child(mode, "write", str(k), target)
        assert killed.returncode == -signal.SIGKILL, (k, killed.stderr)
        # the next run: a reader repairs and finds a whole copy, old or new
        if recover_dir(target):
            outcomes.add(_generation(target))
        else:
            assert not existing, f"step {k}: neither the old nor the new folder"
            outcomes.add("none")
        assert _siblings(target) == (["ck"] if target.exists() else []), f"step {k}"
        _write(target, "next")  # and the next write works and leaves nothing behind
        assert _generation(target) == "next" and _siblings(target) == ["ck"]
    assert outcomes == ({"old", "new"} if existing else {"none", "new"})


def test_a_kill_between_the_two_renames_is_undone_by_the_next_reader(tmp_path: Path) -> None:
    target = tmp_path / "ck"
    _write(target, "old")
    # fallback: rename #1 retires the old folder, rename #2 would put the new one in place
    killed = _child("fallback", "write", "_rename:before#2", target)
    assert killed.returncode == -signal.SIGKILL
    assert not target.exists()  # the finding: nothing at --out ...
    left = _siblings(target)
    assert [n.split("-")[0] for n in left] == [".ck.old", ".ck.tmp"]
    assert recover_dir(target) and _generation(target) == "old"  # ... until a reader repairs
    assert _siblings(target) == ["ck"]


def test_a_kill_during_recovery_still_leaves_a_whole_copy(tmp_path: Path) -> None:
    def broken(where: Path) -> Path:
        target = where / "ck"
        _write(target, "old")
        assert _child("fallback", "write", "_rename:before#2", target).returncode < 0
        return target

    dry = broken(tmp_path / "dry")
    done = _child("swap", "recover", "0", dry)
    assert done.returncode == 0 and _generation(dry) == "old"
    steps = int(done.stdout.strip())
    assert steps >= 4
    for k in range(1, steps + 1):
        target = broken(tmp_path / f"k{k}")
        assert _child("swap", "recover", str(k), target).returncode == -signal.SIGKILL
        assert recover_dir(target) and _generation(target) == "old", f"step {k}"
        assert _siblings(target) == ["ck"], f"step {k}"


def test_leftovers_of_the_previous_layout_are_restored_or_removed(tmp_path: Path) -> None:
    # what a kill -9 of the earlier two-rename code left: .NAME.old-XXXXXXXX/NAME, .NAME.tmp-*
    target = tmp_path / "T_int.resume"
    legacy = tmp_path / ".T_int.resume.old-k2j4_a9z" / "T_int.resume"
    legacy.mkdir(parents=True)
    for i in range(3):
        (legacy / f"part{i}").write_text("old")
    (tmp_path / ".T_int.resume.tmp-8f_x0abc").mkdir()
    (tmp_path / ".T_int.resume.tmp-8f_x0abc" / "part0").write_text("half")
    unrelated = [tmp_path / ".T_int.old-zzzzzzzz", tmp_path / "T_int", tmp_path / ".T_int.lock"]
    unrelated[0].mkdir()
    unrelated[1].mkdir()
    unrelated[2].write_text("")
    assert recover_dir(target) and _generation(target) == "old"
    assert _siblings(target) == sorted([".T_int.lock", ".T_int.old-zzzzzzzz", "T_int",
                                        "T_int.resume"])
    # with the target in place, a retired copy is garbage
    legacy.mkdir(parents=True)
    assert recover_dir(target) and not legacy.parent.exists()


def test_a_staging_folder_of_a_running_writer_is_not_cleaned_away(tmp_path: Path) -> None:
    target = tmp_path / "ck"
    _write(target, "old")
    with write_dir_atomic(target) as staging:
        (staging / "part0").write_text("new")
        assert recover_dir(target)  # another reader (or writer) cleaning up meanwhile
        assert staging.is_dir()
        for i in (1, 2):
            (staging / f"part{i}").write_text("new")
    assert _generation(target) == "new" and _siblings(target) == ["ck"]


def test_checkpoint_folders_get_the_umask_mode_not_0700(tmp_path: Path) -> None:
    target = tmp_path / "ck"
    _write(target, "new")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_kill_while_discarding_a_state_leaves_it_whole_or_gone(tmp_path: Path) -> None:
    dry = tmp_path / "dry" / "ck"
    _write(dry, "old")
    done = _child("swap", "remove", "0", dry)
    assert done.returncode == 0 and _siblings(dry) == []
    steps = int(done.stdout.strip())
    assert steps >= 5  # rename, then each file deleted
    outcomes = set()
    for k in range(1, steps + 1):
        target = tmp_path / f"k{k}" / "ck"
        _write(target, "old")
        assert _child("swap", "remove", str(k), target).returncode == -signal.SIGKILL
        outcomes.add(_generation(target) if recover_dir(target) else "gone")
        assert _siblings(target) == (["ck"] if target.exists() else []), f"step {k}"
    assert outcomes == {"old", "gone"}
    remove_dir(tmp_path / "nothing-here")  # nothing there: nothing to do


def test_training_state_killed_mid_replacement_resumes_from_a_whole_state(tmp_path: Path
                                                                           ) -> None:
    import torch

    from training.resume import load_training_state, save_training_state

    folder = tmp_path / "model.resume"
    save_training_state(folder, meta={"epoch": 1}, weights={"model.w": torch.ones(4)},
                        optimizer={"step": torch.tensor(1)})
    killed = _child("fallback", "state", "_rename:before#2", folder)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not folder.exists()
    state = load_training_state(folder)  # the next `guard train --resume`
    assert state.meta["epoch"] == 1 and torch.equal(state.weights["model.w"], torch.ones(4))
    assert _siblings(folder) == ["model.resume"]


def test_checkpoint_killed_mid_replacement_still_loads(tmp_path: Path,
                                                       tiny_classifier_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from guard.models import HFClassifier
    from guard.models.source import resolve_model
    from training.checkpoint import read_manifest, write_checkpoint

    out = tmp_path / "model"
    write_checkpoint(out, model=AutoModelForSequenceClassification.from_pretrained(
        tiny_classifier_dir), tokenizer=AutoTokenizer.from_pretrained(tiny_classifier_dir),
        manifest={"kind": "guard-checkpoint", "generation": "old"})
    killed = _child("fallback", "checkpoint", "_rename:before#2", out, str(tiny_classifier_dir))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists()
    # `guard eval --model OUT` resolves, then loads; it finds the old checkpoint
    assert resolve_model(str(out)).location == str(out.resolve())
    classifier = HFClassifier.from_pretrained(out, device="cpu")
    assert classifier.labels and (read_manifest(out) or {})["generation"] == "old"
    assert _siblings(out) == ["model"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) >= {"model.safetensors", "config.json"}
