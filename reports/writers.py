"""The report-writer registry and the function that renders a results file."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guard.errors import DataError
from guard.registry import Registry

#: A writer renders a results document to text.
Writer = Callable[[dict[str, Any]], str]

WRITERS: Registry[Writer] = Registry("report format")
WRITERS.register("markdown", "reports.markdown:render", summary="report.md: summary tables")

#: File name each format is written to.
FILE_NAMES = {"markdown": "report.md"}

SUPPORTED_SCHEMA_MAJOR = "1"


def load_results(path: str | Path) -> dict[str, Any]:
    """Read and check a ``results.json`` file.

    Raises:
        DataError: If the file is missing, not JSON, or of an unsupported schema version.
    """
    file = Path(path)
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: cannot read results: {exc}", path=str(file)) from exc
    if not isinstance(document, dict) or document.get("schema") != "metaverse-guard/results":
        raise DataError(f"{file}: not a metaverse-guard results file", path=str(file))
    major = str(document.get("schema_version", "")).split(".")[0]
    if major != SUPPORTED_SCHEMA_MAJOR:
        raise DataError(
            f"{file}: results schema {document.get('schema_version')!r} is not supported "
            f"(this version reads {SUPPORTED_SCHEMA_MAJOR}.x); upgrade metaverse-guard",
            path=str(file),
        )
    return document


def write_reports(results_path: str | Path, formats: Sequence[str], *, out_dir: str | Path
                  ) -> list[Path]:
    """Render ``results_path`` in each format into ``out_dir``; returns the files written.

    Raises:
        UnknownNameError: For an unknown format.
        DataError: If the results file cannot be read.
    """
    document = load_results(results_path)
    written = []
    for fmt in formats:
        render = WRITERS.get(fmt)
        target = Path(out_dir) / FILE_NAMES[fmt]
        target.write_text(render(document), encoding="utf-8")
        written.append(target)
    return written
