"""JSON report: the results document itself, checked and re-serialised (schema 1.x)."""

from __future__ import annotations

from guard.results import ResultsDocument


def render(document: ResultsDocument) -> str:
    """The results document as indented JSON (layout: docs/results-schema.md)."""
    return document.to_json()
