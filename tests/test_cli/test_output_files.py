"""Files the CLI writes: usual permissions, and no temporary files left behind by killed runs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from result_documents import results_dict

from guard.atomic import ensure_writable_dir, remove_stale_temp_files, write_text_atomic
from guard.cli import main
from guard.results import parse_results

RESULTS = results_dict()
posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes and flock are POSIX")


@pytest.fixture
def umask() -> Iterator[None]:
    """Run the test under umask 022, restoring the caller's afterwards."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
def test_written_files_get_the_umask_permissions(tmp_path: Path, umask: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # mkstemp made every output 0600: unreadable to an artifact uploader of another user
    assert _mode(write_text_atomic(tmp_path / "a.json", "{}")) == 0o644
    os.umask(0o027)
    assert _mode(write_text_atomic(tmp_path / "b.json", "{}")) == 0o640
    os.umask(0o022)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    out = tmp_path / "reports" / "report.json"
    assert main(["report", str(results), "--format", "json", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert _mode(out) == 0o644
    assert json.loads(out.read_text()) == parse_results(RESULTS).to_dict()


def _killed_write(target: Path) -> None:
    """Run write_text_atomic in a child process that dies just before its rename."""
    code = ("import os, sys; from guard import atomic\n"
            "os.replace = lambda *a: os._exit(9)\n"
            "atomic.write_text_atomic(sys.argv[1], 'half')\n")
    child = subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    assert child.returncode == 9


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


@posix_only
def test_a_killed_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    _killed_write(target)
    [left] = _temp_files(tmp_path)
    assert left.startswith(".results.json.guard-") and not target.exists()
    write_text_atomic(target, "whole")
    assert _temp_files(tmp_path) == [] and target.read_text() == "whole"


@posix_only
def test_next_eval_run_removes_stale_temp_files_of_killed_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _killed_write(out / "results.json")
    _killed_write(out / "report.md")
    (out / "results.json").write_text("{}")
    legacy = out / ".results.json.k2j4_x9q"  # what mkstemp(prefix=".results.json.") left
    legacy.write_text("half")
    legacy.chmod(0o600)
    os.utime(legacy, (0, 0))  # from a run long before this one
    assert len(_temp_files(out)) == 2
    assert main(["eval", "--model", str(tmp_path / "missing"), "--out", str(out),
                 "--quiet"]) == 2
    assert "no model folder" in capsys.readouterr().err
    assert _temp_files(out) == [] and not legacy.exists()
    assert (out / "results.json").read_text() == "{}"


@posix_only
def test_only_stale_temp_files_of_ours_are_removed(tmp_path: Path) -> None:
    import fcntl

    (tmp_path / "notes.txt").write_text("mine")
    keep = {
        # a live write: its writer still holds the lock
        "live": tmp_path / ".results.json.guard-0123456789ab.part",
        # mkstemp's pattern, but not 0600, or younger than this process, or no such target
        "user-mode": tmp_path / ".notes.txt.backup01",
        "young": tmp_path / ".notes.txt.abcdefgh",
        "no-target": tmp_path / ".gone.txt.abcdefgh",
        # not our pattern at all
        "other": tmp_path / ".results.json.guard-xyz.part",
        "plain": tmp_path / "results.json.guard-0123456789ab.part",
    }
    for path in keep.values():
        path.write_text("x")
    for name in ("young", "no-target"):
        keep[name].chmod(0o600)
    keep["user-mode"].chmod(0o644)
    for name in ("user-mode", "no-target"):
        os.utime(keep[name], (0, 0))
    stale = tmp_path / ".notes.txt.guard-fedcba987654.part"
    stale.write_text("half")
    holder = os.open(keep["live"], os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert remove_stale_temp_files(tmp_path, name="results.json") == []  # only that name
        assert remove_stale_temp_files(tmp_path) == [stale]
        assert all(path.exists() for path in keep.values())
    finally:
        os.close(holder)  # the writer is gone: its file is stale now
    assert remove_stale_temp_files(tmp_path, name="results.json") == [keep["live"]]
    # ensure_writable_dir sweeps too, and says which folders it made
    assert ensure_writable_dir(tmp_path) == []
    assert ensure_writable_dir(tmp_path / "x" / "y") == [tmp_path / "x" / "y", tmp_path / "x"]
    assert [p.name for p in (tmp_path / "x" / "y").iterdir()] == []  # its probe is gone
