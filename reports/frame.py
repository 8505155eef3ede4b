"""A pandas view of result files: one row per model, suite and metric."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from guard.results import ResultsDocument

COLUMNS = ["model", "model_sha256", "data", "suite", "metric", "value", "ci_low", "ci_high",
           "confidence", "n", "unit", "higher_is_better", "ci_method", "results_file"]


def metric_rows(document: ResultsDocument, *, source: str = "") -> list[dict[str, Any]]:
    """The metrics of one results document as flat rows (the table every report renders)."""
    model = document.model
    return [
        {"model": model.location, "model_sha256": model.sha256, "data": document.data.source,
         "suite": suite.suite, "metric": m.name, "value": m.value, "ci_low": m.ci_low,
         "ci_high": m.ci_high, "confidence": m.confidence, "n": m.n, "unit": m.unit,
         "higher_is_better": m.higher_is_better, "ci_method": m.ci_method,
         "results_file": source}
        for suite in document.suites for m in suite.metrics
    ]


def results_frame(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Load ``results.json`` files into one DataFrame (columns: :data:`COLUMNS`).

    Example::

        from reports import results_frame
        df = results_frame(["baseline/results.json", "candidate/results.json"])
        df.pivot_table(index="metric", columns="model", values="value")
    """
    import pandas as pd

    from guard.results import load_results

    rows = [row for path in paths for row in metric_rows(load_results(path), source=str(path))]
    return pd.DataFrame(rows, columns=COLUMNS)
