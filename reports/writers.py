"""The report-writer registry and the function that renders a results file."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from guard.atomic import write_text_atomic
from guard.errors import DataError
from guard.registry import Registry

#: A writer renders a results document to text.
Writer = Callable[[dict[str, Any]], str]

WRITERS: Registry[Writer] = Registry("report format")
WRITERS.register("json", "reports.json_report:render",
                 summary="report.json: the results document, schema 1.x")
WRITERS.register("md", "reports.markdown:render",
                 summary="report.md: gate verdict and tables, sized for a PR comment or CI summary")
WRITERS.register("html", "reports.html:render",
                 summary="report.html: self-contained page with plots, readable offline")
WRITERS.register("junit", "reports.junit:render",
                 summary="junit.xml: one test case per gate check")

#: File name each format is written to.
FILE_NAMES = {"json": "report.json", "md": "report.md", "html": "report.html",
              "junit": "junit.xml"}

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
    renderers = [(fmt, WRITERS.get(fmt)) for fmt in formats]  # unknown formats fail first
    return [write_text_atomic(Path(out_dir) / FILE_NAMES[fmt], render(document))
            for fmt, render in renderers]


def render_report(results_path: str | Path, fmt: str) -> str:
    """Render one results file in one format.

    Raises:
        UnknownNameError: For an unknown format.
        DataError: If the results file cannot be read.
    """
    render = WRITERS.get(fmt)
    return render(load_results(results_path))
