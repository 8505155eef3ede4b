"""Attack resume after torn writes and kills, and one run at a time per output folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from attacks.records import read_records, trim_torn_tail
from attacks.runner import LOCK_FILE, PARTIAL_FILE, RECORDS_FILE, _Attacker
from guard.atomic import exclusive_lock
from guard.cli import main
from guard.errors import DataError


def _record(index: int, text: str = "where is the museum") -> str:
    return json.dumps({
        "index": index, "recipe": "deepwordbug", "constraint_set": "deepwordbug:x", "seed": index,
        "status": "failed", "original_text": text, "perturbed_text": text, "label": "directions",
        "original_prediction": "directions", "perturbed_prediction": "directions",
        "queries": 3, "words_perturbed": 0, "words_total": 4, "fraction_perturbed": 0.0,
    }, sort_keys=True, ensure_ascii=False)


@pytest.mark.parametrize("tail", [
    "",                # nothing torn
    _record(2)[:25],   # cut mid-line: no newline
    _record(2),        # the whole line but not its newline
    "garbage\n",       # a last line that is not a record
])
def test_only_a_torn_last_line_is_cut(tmp_path: Path, tail: str) -> None:
    path = tmp_path / PARTIAL_FILE
    good = _record(0) + "\n" + _record(1) + "\n"
    path.write_text(good + tail, encoding="utf-8")
    assert trim_torn_tail(path) is bool(tail)
    assert path.read_text(encoding="utf-8") == good
    assert [r.index for r in read_records(path)] == [0, 1]


def test_a_cut_inside_a_multibyte_character_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / PARTIAL_FILE
    line = _record(1, "\u00e9\u00e9\u00e9\u00e9 caf\u00e9").encode("utf-8")
    cut = line.index("\u00e9".encode()) + 1  # half of a two-byte character
    path.write_bytes(_record(0).encode() + b"\n" + line[:cut])
    assert [r.index for r in read_records(path, tolerate_torn_tail=True)] == [0]
    assert trim_torn_tail(path) and [r.index for r in read_records(path)] == [0]


def test_a_bad_line_in_the_middle_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / PARTIAL_FILE
    body = _record(0) + "\n" + _record(1)[:30] + _record(2) + "\n" + _record(3) + "\n"
    path.write_text(body, encoding="utf-8")
    assert not trim_torn_tail(path) and path.read_text(encoding="utf-8") == body
    with pytest.raises(DataError, match="line 2 is not an attack record"):
        read_records(path, tolerate_torn_tail=True)
    path.write_bytes(_record(0).encode() + b"\n\xff\xfe\n" + _record(1).encode() + b"\n")
    with pytest.raises(DataError, match="line 2 is not an attack record"):
        read_records(path)


def _attack(model: Path, out: Path, *more: str) -> list[str]:
    return ["attack", "--recipe", "deepwordbug", "--model", str(model), "--n", "6",
            "--seed", "0", "--out", str(out), "--quiet", *more]


def _killed_after(monkeypatch: pytest.MonkeyPatch, records: int) -> None:
    """Let the real attacker finish ``records`` examples, then interrupt the run."""
    real = _Attacker.attack
    calls = {"n": 0}

    def attack(self: _Attacker, *args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > records:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(_Attacker, "attack", attack)


def test_a_torn_tail_and_a_second_kill_still_resume_to_the_same_records(
        tiny_classifier_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_attack(tiny_classifier_dir, tmp_path / "full")) == 0
    full = (tmp_path / "full" / RECORDS_FILE).read_text(encoding="utf-8").splitlines()
    out = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _killed_after(patch, 2)
        assert main(_attack(tiny_classifier_dir, out)) == 130
    partial = out / PARTIAL_FILE
    assert len(partial.read_text(encoding="utf-8").splitlines()) == 2
    with open(partial, "a", encoding="utf-8") as handle:  # a kill in the middle of record 3
        handle.write(full[2][:40])
    with monkeypatch.context() as patch:  # the resume is killed too, after one record
        _killed_after(patch, 1)
        assert main(_attack(tiny_classifier_dir, out)) == 130
    lines = partial.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)  # no glued line
    capsys.readouterr()
    assert main(_attack(tiny_classifier_dir, out)) == 0, capsys.readouterr().err
    assert (out / RECORDS_FILE).read_text(encoding="utf-8").splitlines() == full
    assert not partial.exists()


def test_a_bad_middle_line_stops_the_resume_with_exit_2(
        tiny_classifier_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / PARTIAL_FILE).write_text("not a record\n" + _record(0) + "\n", encoding="utf-8")
    assert main(_attack(tiny_classifier_dir, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 1 is not an attack record" in err[0]


LOCKER = """
import sys
from guard.atomic import exclusive_lock
with exclusive_lock(sys.argv[1]) as held:
    print("held" if held else "busy", flush=True)
    sys.stdin.read()
"""


def test_a_second_run_into_the_same_out_is_refused_until_the_first_dies(
        tiny_classifier_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", LOCKER, str(out / LOCK_FILE)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(_attack(tiny_classifier_dir, out)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "in use: another attack run is writing into it" in err[0]
        assert not (out / PARTIAL_FILE).exists() and not (out / RECORDS_FILE).exists()
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock with it
        holder.wait(timeout=60)
    assert main(_attack(tiny_classifier_dir, out)) == 0
    with exclusive_lock(out / LOCK_FILE) as held:  # and the finished run released its own
        assert held


def test_exclusive_lock_is_exclusive_between_open_files(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with exclusive_lock(lock) as first, exclusive_lock(lock) as second:
        assert first and not second
    with exclusive_lock(lock) as again:
        assert again
