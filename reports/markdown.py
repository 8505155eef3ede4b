"""Markdown report: one table of metrics per suite, with intervals and sample sizes."""

from __future__ import annotations

from typing import Any


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


def _metrics_table(metrics: list[dict[str, Any]]) -> list[str]:
    level = metrics[0].get("confidence", 0.95) if metrics else 0.95
    lines = [f"| metric | value | {level:.0%} CI | n | unit |", "|---|---:|---|---:|---|"]
    for m in metrics:
        interval = f"[{_fmt(m['ci_low'], m['unit'])}, {_fmt(m['ci_high'], m['unit'])}]"
        lines.append(f"| {m['name']} | {_fmt(m['value'], m['unit'])} | {interval} | {m['n']} "
                     f"| {m['unit']} |")
    return lines


def _examples(examples: list[dict[str, Any]]) -> list[str]:
    """The suite's worst examples as a table (columns from the first example)."""
    if not examples:
        return []
    headers = list(examples[0])
    lines = ["", "Worst examples:", "", "| " + " | ".join(headers) + " |",
             "|" + "---|" * len(headers)]
    for example in examples:
        cells = [f"{v:.3f}" if isinstance(v, float) else _cell(str(v))
                 for v in (example.get(h) for h in headers)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _gate(gate: dict[str, Any]) -> list[str]:
    verdict = "✅ PASSED" if gate["passed"] else "❌ FAILED"
    lines = ["", f"## Release gate: {verdict}", "",
             f"_{gate['confidence']:.0%} confidence; inconclusive counts as "
             f"{gate['inconclusive_counts_as']}_", "",
             "| check | outcome | value | interval | n | why |", "|---|---|---:|---|---:|---|"]
    mark = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "⚠️ inconclusive"}
    for c in gate["checks"]:
        lines.append(f"| {_cell(c['name'])} | {mark[c['outcome']]} | {c['value']:.4g} | "
                     f"[{c['ci_low']:.4g}, {c['ci_high']:.4g}] | {c['n']} | "
                     f"{_cell(c['explanation'])} |")
    return lines


def render(document: dict[str, Any]) -> str:
    """Render a results document as Markdown (sized for a PR comment or CI job summary)."""
    model = document["model"]
    data = document["data"]
    lines = [
        "# metaverse-guard evaluation",
        "",
        f"- model: `{model.get('location')}` (sha256 `{str(model.get('sha256'))[:12]}`, "
        f"device {model.get('device')})",
        f"- data: `{data['source']}` ({data['n']} rows, sha256 `{data['sha256'][:12]}`)",
        f"- seed: {document['seed']}; guard {document['guard_version']}; "
        f"created {document['created_at']}",
    ]
    if document.get("gate"):
        lines += _gate(document["gate"])
    for suite in document["suites"]:
        prov = suite["provenance"]
        lines += ["", f"## {suite['suite']}", "",
                  f"_{prov['duration_s']:.1f} s on {prov['device']}_", ""]
        headline = [m for m in suite["metrics"] if not m["name"].startswith("f1/")]
        per_class = [m for m in suite["metrics"] if m["name"].startswith("f1/")]
        lines += _metrics_table(headline)
        if per_class:
            lines += ["", "<details><summary>Per-class F1</summary>", ""]
            lines += _metrics_table(per_class)
            lines += ["", "</details>"]
        lines += _examples(suite["details"].get("worst_examples") or [])
    return "\n".join(lines) + "\n"
