"""docs/results-schema.md agrees with the result models and with what every suite declares."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from eval_suites import SUITES

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "results-schema.md"


def test_the_field_tables_are_generated_from_the_models() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_results_schema_doc.py"),
                          "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def _suite_paragraph(suite: str) -> str:
    text = DOC.read_text(encoding="utf-8").split("## Suites", 1)[1].split("\n## ", 1)[0]
    match = re.search(rf"^\*\*{re.escape(suite)}\*\*:(.*?)(?=^\*\*\w+\*\*:|\Z)", text,
                      re.DOTALL | re.MULTILINE)
    assert match, f"docs/results-schema.md has no **{suite}** paragraph"
    return match.group(1)


@pytest.mark.parametrize("suite", SUITES.names())
def test_every_metric_and_declared_detail_of_every_suite_is_documented(suite: str) -> None:
    paragraph = _suite_paragraph(suite)
    cls = SUITES.get(suite)
    named = set(re.findall(r"`([^`]+)`", paragraph))
    bases = {name.split("/")[0] for name in named}
    for spec in cls.metric_specs:
        assert spec.name in bases, f"{suite}: metric {spec.name!r} is not documented"
        if spec.per_item is not None:
            key = spec.per_item.split(".")[0]
            assert key in named, f"{suite}: per-item details {key!r} are not documented"
    for view in cls.report_views:
        assert view.source in named | bases, f"{suite}: details {view.source!r} undocumented"
