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
        tolerate_torn_tail: Ignore an incomplete last line (a run killed mid-write).

    Raises:
        DataError: For a malformed line (other than a tolerated torn tail).
    """
    file = Path(path)
    lines = file.read_text(encoding="utf-8").split("\n")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(AttackRecord.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError) as exc:
            if tolerate_torn_tail and number == len(lines):
                break
            raise DataError(f"{file}: line {number} is not an attack record ({exc})",
                            path=str(file)) from exc
    return records


def write_records(records: Iterable[AttackRecord]) -> str:
    """JSONL text of records sorted by index."""
    return "".join(r.to_json() + "\n" for r in sorted(records, key=lambda r: r.index))


def records_to_dataset(records: Sequence[AttackRecord]) -> Any:
    """The records as a Hugging Face ``datasets.Dataset`` (one column per field)."""
    import datasets

    columns = {f.name: [getattr(r, f.name) for r in records] for f in fields(AttackRecord)}
    return datasets.Dataset.from_dict(columns)
