"""Markdown report: one table of metrics per suite, with intervals and sample sizes."""

from __future__ import annotations

from typing import Any

from eval_suites.registry import is_headline, report_views
from guard.results import GateResult, MetricValue, ResultsDocument


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.4f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:.1f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _metrics_table(metrics: list[MetricValue]) -> list[str]:
    level = metrics[0].confidence if metrics else 0.95
    lines = [f"| metric | value | {level:.0%} CI | n | unit |", "|---|---:|---|---:|---|"]
    for m in metrics:
        interval = f"[{_fmt(m.ci_low, m.unit)}, {_fmt(m.ci_high, m.unit)}]"
        lines.append(f"| {m.name} | {_fmt(m.value, m.unit)} | {interval} | {m.n} | {m.unit} |")
    return lines


def _examples(title: str, examples: list[dict[str, Any]]) -> list[str]:
    """A table of example rows (columns from the first row)."""
    if not examples:
        return []
    headers = list(examples[0])
    lines = ["", f"{title}:", "", "| " + " | ".join(headers) + " |",
             "|" + "---|" * len(headers)]
    for example in examples:
        cells = [f"{v:.3f}" if isinstance(v, float) else _cell(str(v))
                 for v in (example.get(h) for h in headers)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _gate(gate: GateResult) -> list[str]:
    verdict = "✅ PASSED" if gate.passed else "❌ FAILED"
    lines = ["", f"## Release gate: {verdict}", "",
             f"_{gate.confidence:.0%} confidence; inconclusive counts as "
             f"{gate.inconclusive_counts_as}_", "",
             "| check | outcome | value | interval | n | why |", "|---|---|---:|---|---:|---|"]
    mark = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "⚠️ inconclusive"}
    for c in gate.checks:
        lines.append(f"| {_cell(c.name)} | {mark[c.outcome]} | {c.value:.4g} | "
                     f"[{c.ci_low:.4g}, {c.ci_high:.4g}] | {c.n} | {_cell(c.explanation)} |")
    return lines


def render(document: ResultsDocument) -> str:
    """Render a results document as Markdown (sized for a PR comment or CI job summary)."""
    model = document.model
    data = document.data
    lines = [
        "# metaverse-guard evaluation",
        "",
        f"- model: `{model.location}` (sha256 `{str(model.sha256)[:12]}`, "
        f"device {model.device})",
        f"- data: `{data.source}` ({data.n} rows, sha256 `{data.sha256[:12]}`)",
        f"- seed: {document.seed}; guard {document.guard_version}; "
        f"created {document.created_at}",
    ]
    if document.gate:
        lines += _gate(document.gate)
    for suite in document.suites:
        prov = suite.provenance
        lines += ["", f"## {suite.suite}", "",
                  f"_{prov.duration_s:.1f} s on {prov.device}_", ""]
        headline = [m for m in suite.metrics if is_headline(suite.suite, m.name)]
        breakdown = [m for m in suite.metrics if not is_headline(suite.suite, m.name)]
        lines += _metrics_table(headline)
        if breakdown:
            lines += ["", "<details><summary>Per-class and per-part metrics</summary>", ""]
            lines += _metrics_table(breakdown)
            lines += ["", "</details>"]
        for view in report_views(suite.suite):
            if view.kind == "table" and view.in_markdown:
                lines += _examples(view.title, suite.details.get(view.source) or [])
    return "\n".join(lines) + "\n"
