"""The report-writer registry and the function that renders a results file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from guard.atomic import write_text_atomic
from guard.registry import Registry
from guard.results import ResultsDocument, load_results

__all__ = ["FILE_NAMES", "WRITERS", "Writer", "load_results", "render_report", "write_reports"]

#: A writer renders a (schema-checked, typed) results document to text.
Writer = Callable[[ResultsDocument], str]

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
