"""Typed attack records, their JSONL files and their ``datasets`` export."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from guard.errors import DataError

Status = Literal["successful", "failed", "skipped", "maximized"]


@dataclass(frozen=True)
class AttackRecord:
    """What one attack on one example did.

    Attributes:
        index: Position of the example in the attacked data.
        recipe: Recipe name.
        constraint_set: ``recipe:hash`` of the attack's full description.
        seed: Seed used for this example (run seed + index).
        status: ``successful`` (prediction flipped), ``failed``, ``skipped`` (the model was
            already wrong) or ``maximized``.
        original_text: The example.
        perturbed_text: The adversarial text (equal to the original unless successful).
        label: True label.
        original_prediction: Model's label for the original.
        perturbed_prediction: Model's label for the perturbed text.
        queries: Model queries the attack spent.
        words_perturbed: Words changed.
        words_total: Words in the original.
        fraction_perturbed: ``words_perturbed / words_total``.
    """

    index: int
    recipe: str
    constraint_set: str
    seed: int
    status: Status
    original_text: str
    perturbed_text: str
    label: str
    original_prediction: str
    perturbed_prediction: str
    queries: int
    words_perturbed: int
    words_total: int
    fraction_perturbed: float

    def to_json(self) -> str:
        """One JSON line, keys sorted, so equal records give equal bytes."""
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttackRecord:
        """Build a record from a parsed JSON object."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def read_records(path: str | Path, *, tolerate_torn_tail: bool = False) -> list[AttackRecord]:
    """Read a records JSONL file.

    Args:
        path: The file.
        tolerate_torn_tail: Ignore the last line when it lacks its newline or is not a record
            (a run killed while writing it); see :func:`trim_torn_tail`.

    Raises:
        DataError: For a malformed line (other than a tolerated torn tail).
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DataError(f"{file}: cannot read it ({exc.strerror or exc})", path=str(file)) \
            from exc
    if tolerate_torn_tail:
        data = data[:_intact_length(data)]
    records = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(_parse(line))
        except ValueError as exc:
            raise DataError(f"{file}: line {number} is not an attack record ({exc})",
                            path=str(file)) from exc
    return records


def trim_torn_tail(path: str | Path) -> bool:
    """Cut a torn last line off a records file that is appended to line by line.

    Only the last line is looked at, and it is cut only when it lacks its newline or does not
    parse as a record: what a kill in the middle of writing it leaves. Appending after such a
    fragment would glue the next record to it and break the file for good. A bad line
    anywhere else is left for :func:`read_records` to report.

    Args:
        path: The file (rewritten in place, flushed to disk, when something is cut).

    Returns:
        Whether a torn line was cut.
    """
    import os

    file = Path(path)
    data = file.read_bytes()
    keep = _intact_length(data)
    if keep == len(data):
        return False
    with open(file, "r+b") as handle:
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _parse(line: bytes) -> AttackRecord:
    """One record from one JSONL line; ``ValueError`` when it is not one."""
    data = json.loads(line.decode("utf-8"))  # ValueError for bad UTF-8 or bad JSON
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    try:
        return AttackRecord.from_dict(data)
    except TypeError as exc:  # missing fields
        raise ValueError(str(exc)) from exc


def _intact_length(data: bytes) -> int:
    """How many bytes of ``data`` remain once a torn last line is dropped."""
    if not data:
        return 0
    body = data[:-1] if data.endswith(b"\n") else data
    start = body.rfind(b"\n") + 1
    last = body[start:]
    if not data.endswith(b"\n"):
        return start  # no newline: the write of this line never finished
    if not last.strip():
        return len(data)
    try:
        _parse(last)
    except ValueError:
        return start
    return len(data)


def write_records(records: Iterable[AttackRecord]) -> str:
    """JSONL text of records sorted by index."""
    return "".join(r.to_json() + "\n" for r in sorted(records, key=lambda r: r.index))


def records_to_dataset(records: Sequence[AttackRecord]) -> Any:
    """The records as a Hugging Face ``datasets.Dataset`` (one column per field)."""
    import datasets

    columns = {f.name: [getattr(r, f.name) for r in records] for f in fields(AttackRecord)}
    return datasets.Dataset.from_dict(columns)
