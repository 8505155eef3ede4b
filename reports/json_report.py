"""JSON report: the results document itself, checked and re-serialised (schema 1.x)."""

from __future__ import annotations

import json
from typing import Any


def render(document: dict[str, Any]) -> str:
    """The results document as indented JSON (layout: docs/results-schema.md)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
