"""The bundled prompt data of the ``generation`` suite: shape, provenance and held-out-ness."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[2] / "eval_suites" / "data" / "generation"

HARM_CATEGORIES = {"violence", "self_harm", "weapons", "hate", "sexual", "crime", "harassment",
                   "dangerous_activity"}
SUBJECTS = {"science", "history", "maths", "languages", "art", "geography", "study_skills"}
PROJECT = "written-for-project"
#: Sources that ``scripts/harm_sources.py`` read when the harm scorer was built: their rows must
#: sit in the build's never-seen hash buckets (85-99).
BUILD_SOURCES = ("harmbench", "rtp-challenge:")

FILES: dict[str, tuple[set[str], int, int]] = {  # keys, fewest rows, most rows
    "harmful_requests.jsonl": ({"text", "source", "category"}, 50, 70),
    "toxicity_prefixes.jsonl": ({"text", "source", "toxicity"}, 55, 70),
    "benign_tutoring.jsonl": ({"text", "source", "subject"}, 70, 90),
}

#: Words a naive filter flags; the benign set must use them in harmless senses.
TRIGGERS = re.compile(r"\b(kill\w*|bomb\w*|death|dead|murder\w*|assassin\w*|weapons?|dagger|"
                      r"venom|explodes?|nude|slave|fights?|fission|skull|cut|sex\w*)\b|sex", re.I)


def _rows(name: str) -> list[dict[str, Any]]:
    raw = (DATA / name).read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def _bucket(text: str) -> int:
    """The harm scorer build's split bucket (mirrors ``scripts/harm_sources.split_of``)."""
    key = " ".join(text.split()).strip().lower().encode("utf-8")
    return int(hashlib.sha256(key).hexdigest()[:8], 16) % 100


@pytest.mark.parametrize("name", sorted(FILES))
def test_rows_parse_with_exact_keys_and_unique_texts(name: str) -> None:
    keys, low, high = FILES[name]
    rows = _rows(name)
    assert low <= len(rows) <= high
    for row in rows:
        assert set(row) == keys
        assert isinstance(row["text"], str) and row["text"].strip() == row["text"] != ""
        assert " ".join(row["text"].split()) == row["text"]
        assert isinstance(row["source"], str) and row["source"]
    texts = [row["text"].lower() for row in rows]
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize("name", sorted(FILES))
def test_datasheet_states_the_row_count(name: str) -> None:
    sheet = (DATA / "DATASHEET.md").read_text(encoding="utf-8")
    assert f"| `{name}` | {len(_rows(name))} |" in sheet


def test_harmful_categories_are_allowed_and_each_is_covered() -> None:
    rows = _rows("harmful_requests.jsonl")
    counts = {c: sum(r["category"] == c for r in rows) for c in HARM_CATEGORIES}
    assert {r["category"] for r in rows} <= HARM_CATEGORIES
    assert min(counts.values()) >= 5, counts
    assert sum(r["source"] != PROJECT for r in rows) >= 30  # most rows come from packages


def test_benign_rows_are_project_written_and_probe_false_refusals() -> None:
    rows = _rows("benign_tutoring.jsonl")
    assert {r["source"] for r in rows} == {PROJECT}
    assert {r["subject"] for r in rows} <= SUBJECTS
    assert {r["subject"] for r in rows} == SUBJECTS
    assert sum(bool(TRIGGERS.search(r["text"])) for r in rows) >= 15


def test_toxicity_scores_are_probabilities_or_null() -> None:
    rows = _rows("toxicity_prefixes.jsonl")
    scores = [r["toxicity"] for r in rows if r["toxicity"] is not None]
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)
    assert all(r["source"].startswith("rtp-challenge:") for r in rows)


def test_every_source_is_described_in_the_datasheet_and_licensed() -> None:
    sheet = (DATA / "DATASHEET.md").read_text(encoding="utf-8")
    licences = (DATA / "LICENSES.md").read_text(encoding="utf-8")
    sources = {r["source"] for name in FILES for r in _rows(name)}
    for source in sources:
        assert f"`{source}`" in sheet, source
        if source != PROJECT:
            assert f"`{source.split(':')[0]}" in licences, source


def test_rows_from_the_harm_scorer_build_sources_are_in_its_held_out_buckets() -> None:
    rows = [r for name in FILES for r in _rows(name)]
    checked = [r for r in rows if r["source"].startswith(BUILD_SOURCES)]
    assert len(checked) >= 60
    leaked = [r["text"] for r in checked if _bucket(r["text"]) < 85]
    assert not leaked
