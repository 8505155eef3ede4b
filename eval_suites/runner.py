"""Run suites by name and write the versioned ``results.json`` document."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval_suites.base import data_info, model_info, suite_from_options
from eval_suites.registry import SUITES
from guard.atomic import write_text_atomic
from guard.data import TextDataset
from guard.provenance import environment, git_revision, package_versions
from guard.results import (
    RESULTS_FILE,
    RESULTS_SCHEMA_VERSION,
    DataInfo,
    ModelInfo,
    ResultsDocument,
    SuiteResult,
)
from guard.types import Classifier

__all__ = ["RESULTS_FILE", "RESULTS_SCHEMA_VERSION", "results_document", "run_suites",
           "write_json_atomic"]


def run_suites(
    model: Classifier,
    data: TextDataset,
    suites: Sequence[str],
    *,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[SuiteResult]:
    """Run each named suite on ``model`` and ``data``.

    Args:
        model: The classifier under test.
        data: Labelled evaluation rows.
        suites: Suite names (see ``guard ls suites``).
        seed: Seed for every suite.
        options: Suite name -> options for its constructor.

    Raises:
        UnknownNameError: For an unknown suite.
        ConfigError: For an unknown suite option.
    """
    options = options or {}
    built = [suite_from_options(SUITES.get(name), options.get(name)) for name in suites]
    return [suite.run(model, data, seed=seed) for suite in built]


def results_document(
    results: Sequence[SuiteResult],
    *,
    model: Classifier,
    data: TextDataset,
    seed: int,
    command: Sequence[str] = (),
    model_manifest: Mapping[str, Any] | None = None,
) -> ResultsDocument:
    """The ``results.json`` document (layout: docs/results-schema.md)."""
    import guard

    return ResultsDocument(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        guard_version=guard.__version__,
        command=list(command),
        git_revision=git_revision(Path(__file__).parent),
        seed=seed,
        model=ModelInfo(**model_info(model), device=str(getattr(model, "device", "unknown")),
                        manifest=dict(model_manifest) if model_manifest else None),
        data=DataInfo(**data_info(data)),
        packages=package_versions(),
        environment=environment(),
        suites=tuple(results),
    )


def write_json_atomic(document: Mapping[str, Any] | ResultsDocument, path: str | Path) -> Path:
    """Write JSON to ``path`` atomically, so readers never see half a file."""
    if isinstance(document, ResultsDocument):
        return write_text_atomic(path, document.to_json())
    return write_text_atomic(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
