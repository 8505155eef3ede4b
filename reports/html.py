"""Self-contained HTML report: tables and inline SVG plots, readable offline in any browser."""

from __future__ import annotations

import html
import math
from typing import Any

from eval_suites.base import ReportView
from eval_suites.registry import is_headline, report_views
from guard.results import GateResult, ResultsDocument, SuiteResult
from reports.frame import metric_rows

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d232a;
max-width:1100px}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#0a7d32;font-weight:600}.fail{color:#b42318;font-weight:600}
.inconclusive{color:#9a6700;font-weight:600}.banner{padding:.8rem 1rem;border-radius:6px;
font-size:1.1rem;font-weight:600}.banner.pass{background:#e6f4ea}.banner.fail{background:#fde8e7}
.meta{color:#57606a;font-size:.9rem}figure{margin:.5rem 0 1.5rem}figcaption{font-size:.85rem;
color:#57606a}
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def interval_svg(value: float, low: float, high: float, *, limit: float | None = None,
                 baseline: float | None = None, axis: tuple[float, float] | None = None,
                 label: str = "") -> str:
    """A horizontal interval plot: point, interval whiskers, optional limit and baseline marks."""
    points = [v for v in (value, low, high, limit, baseline) if v is not None]
    lo, hi = axis if axis else (min(points), max(points))
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    width, left, right = 520, 10, 510

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    parts = [f'<svg class="interval" role="img" aria-label="{_e(label)}" width="{width}" '
             f'height="46" viewBox="0 0 {width} 46" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="30" x2="{right}" y2="30" stroke="#ccc"/>',
             f'<line x1="{x(low):.1f}" y1="20" x2="{x(high):.1f}" y2="20" stroke="#0969da" '
             'stroke-width="3"/>',
             f'<circle cx="{x(value):.1f}" cy="20" r="5" fill="#0969da"/>',
             f'<text x="{left}" y="44" font-size="10" fill="#57606a">{_num(lo)}</text>',
             f'<text x="{right}" y="44" font-size="10" fill="#57606a" '
             f'text-anchor="end">{_num(hi)}</text>']
    if limit is not None:
        parts.append(f'<line x1="{x(limit):.1f}" y1="4" x2="{x(limit):.1f}" y2="36" '
                     'stroke="#b42318" stroke-dasharray="4 2" stroke-width="2"/>'
                     f'<text x="{x(limit) + 3:.1f}" y="10" font-size="10" fill="#b42318">'
                     f'limit {_num(limit)}</text>')
    if baseline is not None:
        parts.append(f'<rect x="{x(baseline) - 4:.1f}" y="16" width="8" height="8" '
                     'fill="#8250df"/>'
                     f'<text x="{x(baseline) + 6:.1f}" y="34" font-size="10" fill="#8250df">'
                     'baseline</text>')
    return "".join(parts) + "</svg>"


def histogram_svg(values: list[float], *, bins: int = 30, label: str = "") -> str:
    """A histogram of ``values`` as inline SVG."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / span * bins))] += 1
    top = max(counts)
    width, height, base = 520, 140, 120
    bar = (width - 20) / bins
    rects = "".join(
        f'<rect x="{10 + k * bar:.1f}" y="{base - c / top * 100:.1f}" width="{bar - 1:.1f}" '
        f'height="{c / top * 100:.1f}" fill="#0969da"/>' for k, c in enumerate(counts))
    return (f'<svg class="histogram" role="img" aria-label="{_e(label)}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg">{rects}'
            f'<line x1="10" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#999"/>'
            f'<text x="10" y="{base + 14}" font-size="10">{_num(lo)} ms</text>'
            f'<text x="{width - 10}" y="{base + 14}" font-size="10" text-anchor="end">'
            f'{_num(hi)} ms</text></svg>')


def bars_svg(bars: list[tuple[str, float, float, float]], *, label: str = "") -> str:
    """Horizontal bars in [0, 1] with interval whiskers: ``(name, value, low, high)``."""
    width, left, row = 520, 170, 26
    height = row * len(bars) + 10
    parts = [f'<svg class="bars" role="img" aria-label="{_e(label)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" '
             'xmlns="http://www.w3.org/2000/svg">']
    span = width - left - 50  # room for the percentage label at 100%
    for k, (name, value, low, high) in enumerate(bars):
        y = 5 + k * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end">{_e(name)}'
            f'</text><rect x="{left}" y="{y + 4}" width="{value * span:.1f}" height="14" '
            f'fill="#cf222e"/><line x1="{left + low * span:.1f}" y1="{y + 11}" '
            f'x2="{left + high * span:.1f}" y2="{y + 11}" stroke="#1d232a" stroke-width="2"/>'
            f'<text x="{left + value * span + 4:.1f}" y="{y + 15}" font-size="10">'
            f'{value:.0%}</text>')
    return "".join(parts) + "</svg>"


def line_svg(points: list[float], *, label: str = "", unit: str = "") -> str:
    """A small line chart of ``points`` over their index (1-based)."""
    if not points:
        return ""
    width, height, left, bottom = 520, 150, 40, 125
    top = max(points) or 1.0
    step = (width - left - 20) / max(len(points) - 1, 1)
    coords = [(left + i * step, bottom - p / top * 105) for i, p in enumerate(points)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#8250df"/>'
                   for x, y in coords)
    return (f'<svg class="line" role="img" aria-label="{_e(label)}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg"><polyline points="{path}" fill="none" '
            f'stroke="#8250df" stroke-width="2"/>{dots}'
            f'<line x1="{left}" y1="{bottom}" x2="{width - 20}" y2="{bottom}" stroke="#999"/>'
            f'<text x="4" y="{bottom - 100}" font-size="10">{_num(top)}{_e(unit)}</text>'
            f'<text x="{left}" y="{bottom + 14}" font-size="10">epoch 1</text>'
            f'<text x="{width - 20}" y="{bottom + 14}" font-size="10" text-anchor="end">'
            f'epoch {len(points)}</text></svg>')


_SERIES = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#e16f24", "#1b7c83",
           "#bf3989", "#57606a")


def roc_svg(curves: dict[str, dict[str, Any]], *, label: str = "") -> str:
    """ROC curves as inline SVG: one line per curve, a legend with AUCs, the chance diagonal.

    Args:
        curves: Name -> ``{"fpr": [...], "tpr": [...], "auc": float | None}``.
        label: Accessible name of the plot.
    """
    if not curves:
        return ""
    left, top, size = 46, 10, 260
    width, height = 560, top + size + 40

    def x(v: float) -> float:
        return left + v * size

    def y(v: float) -> float:
        return top + (1 - v) * size

    parts = [f'<svg class="roc" role="img" aria-label="{_e(label)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" '
             'stroke="#999"/>',
             f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#999" '
             'stroke-dasharray="4 3"/>']
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{x(tick):.1f}" y="{top + size + 14}" font-size="10" '
                     f'text-anchor="middle" fill="#57606a">{tick:g}</text>'
                     f'<text x="{left - 4}" y="{y(tick) + 3:.1f}" font-size="10" '
                     f'text-anchor="end" fill="#57606a">{tick:g}</text>')
    parts.append(f'<text x="{x(0.5):.1f}" y="{top + size + 30}" font-size="11" '
                 'text-anchor="middle">false-positive rate</text>'
                 f'<text x="12" y="{y(0.5):.1f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {y(0.5):.1f})">true-positive rate</text>')
    for k, (name, curve) in enumerate(curves.items()):
        colour = _SERIES[k % len(_SERIES)]
        points = " ".join(f"{x(f):.1f},{y(t):.1f}"
                          for f, t in zip(curve.get("fpr", []), curve.get("tpr", []),
                                          strict=False))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     'stroke-width="2"/>')
        legend_y = top + 8 + k * 18
        auc = curve.get("auc")
        parts.append(f'<rect x="{left + size + 16}" y="{legend_y - 8}" width="14" height="4" '
                     f'fill="{colour}"/><text x="{left + size + 36}" y="{legend_y - 2}" '
                     f'font-size="11">{_e(name)} (AUC {_num(auc, 3)})</text>')
    return "".join(parts) + "</svg>"


def _privacy_section(manifest: dict[str, Any] | None) -> str:
    privacy = (manifest or {}).get("privacy")
    if not privacy:
        return ""
    spent = [e for e in privacy.get("epsilon_per_epoch", []) if e is not None]
    return ("<h2 id='privacy'>Privacy budget</h2>"
            f"<p class='meta'>epsilon {_num(privacy.get('epsilon'))} at delta "
            f"{_num(privacy.get('delta'))}; noise {_num(privacy.get('noise_multiplier'))}, "
            f"clip {_num(privacy.get('max_grad_norm'))}, sample rate "
            f"{_num(privacy.get('sample_rate'))}, {privacy.get('steps')} steps, "
            f"{_e(privacy.get('accountant'))} accountant</p>"
            f"<figure>{line_svg(spent, label='epsilon over training')}"
            "<figcaption>Epsilon spent after each training epoch</figcaption></figure>")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(text: Any, *, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    return f'<td class="{classes}">{_e(text)}</td>' if classes else f"<td>{_e(text)}</td>"


def _gate_section(gate: GateResult) -> str:
    verdict = "pass" if gate.passed else "fail"
    parts = [f'<h2 id="gate">Release gate</h2><p class="banner {verdict}">Gate '
             f'{"PASSED" if gate.passed else "FAILED"} at {gate.confidence:.0%} '
             f'confidence (inconclusive counts as {_e(gate.inconclusive_counts_as)})</p>']
    rows = [[_td(c.name), _td(c.outcome, cls=c.outcome), _td(_num(c.value), num=True),
             _td(f"[{_num(c.ci_low)}, {_num(c.ci_high)}]"), _td(c.n, num=True),
             _td(c.explanation)] for c in gate.checks]
    parts.append(_table(["check", "outcome", "value", "interval", "n", "why"], rows))
    for check in gate.checks:
        if check.kind == "margin":
            plot = interval_svg(check.value, check.ci_low, check.ci_high, limit=check.limit,
                                label=check.name)
            caption = (f"{_e(check.name)}: candidate - baseline with its interval; dashed: "
                       "the margin")
        else:
            in_unit = check.ci_low >= 0 and check.ci_high <= 1 and 0 <= check.limit <= 1
            unit_axis = (0.0, 1.0) if in_unit else None
            plot = interval_svg(check.value, check.ci_low, check.ci_high, limit=check.limit,
                                baseline=check.baseline_value, axis=unit_axis,
                                label=check.name)
            caption = f"{_e(check.name)}: value and interval against the limit (dashed)"
        parts.append(f"<figure>{plot}<figcaption>{caption}</figcaption></figure>")
    return "".join(parts)


def _view(view: ReportView, details: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """One declared plot or table; empty when the suite stored nothing for it."""
    if view.kind == "bars":
        bars = [(r["metric"].split("/", 1)[1], r["value"], r["ci_low"], r["ci_high"])
                for r in rows if r["metric"].startswith(f"{view.source}/")]
        return (f"<figure>{bars_svg(bars, label=view.title)}<figcaption>{_e(view.caption)}"
                "</figcaption></figure>") if bars else ""
    value = details.get(view.source)
    if not value:
        return ""
    if view.kind == "roc_curves":
        return "".join(
            f"<figure>{roc_svg(curves, label=f'{view.title}, {set_name} set')}"
            f"<figcaption>{_e(view.caption.format(set=set_name))}</figcaption></figure>"
            for set_name, curves in value.items() if curves)
    if view.kind == "histogram":
        return (f"<figure>{histogram_svg(value, label=view.title)}"
                f"<figcaption>{_e(view.caption)}</figcaption></figure>")
    if view.kind == "table":
        headers = list(value[0])
        return f"<h3>{_e(view.title)}</h3>" + _table(
            headers, [[_td(e.get(h)) for h in headers] for e in value])
    labels, matrix = details["labels"], value  # confusion_matrix
    peak = max(max(row) for row in matrix) or 1
    cells = [[_td(labels[i])] + [
        f'<td class="num" style="background:rgba(9,105,218,{math.sqrt(v / peak):.2f})">'
        f"{v}</td>" for v in row] for i, row in enumerate(matrix)]
    return f"<h3>{_e(view.title)}</h3>" + _table(["", *labels], cells)


def _suite_section(suite: SuiteResult, rows: list[dict[str, Any]]) -> str:
    prov = suite.provenance
    parts = [f'<h2 id="suite-{_e(suite.suite)}">{_e(suite.suite)}</h2>',
             f'<p class="meta">{prov.duration_s:.1f} s on {_e(prov.device)}, seed '
             f'{prov.seed}</p>']
    table_rows = [[_td(r["metric"]), _td(_num(r["value"]), num=True),
                   _td(f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]"), _td(r["n"], num=True),
                   _td(r["unit"]), _td(r["ci_method"])] for r in rows]
    parts.append(_table(["metric", "value", "interval", "n", "unit", "method"], table_rows))
    views = report_views(suite.suite)
    parts += [_view(view, suite.details, rows) for view in views if view.kind == "bars"]
    for r in rows:
        if r["unit"] == "ratio" and is_headline(suite.suite, r["metric"]):
            plot = interval_svg(r["value"], r["ci_low"], r["ci_high"], axis=(0, 1),
                                label=r["metric"])
            parts.append(f"<figure>{plot}<figcaption>{_e(r['metric'])} with its "
                         f"{r['confidence']:.0%} interval</figcaption></figure>")
    parts += [_view(view, suite.details, rows) for view in views if view.kind != "bars"]
    return "".join(parts)


def render(document: ResultsDocument) -> str:
    """Render a results document as one self-contained HTML page."""
    model, data = document.model, document.data
    rows = metric_rows(document)
    body = [f"<h1>metaverse-guard evaluation</h1><p class='meta'>model "
            f"<code>{_e(model.location)}</code> (sha256 "
            f"<code>{_e(str(model.sha256)[:12])}</code>, {_e(model.device)}); data "
            f"<code>{_e(data.source)}</code> ({data.n} rows); seed {document.seed}; "
            f"guard {_e(document.guard_version)}; {_e(document.created_at)}</p>"]
    if document.gate:
        body.append(_gate_section(document.gate))
    for suite in document.suites:
        body.append(_suite_section(suite, [r for r in rows if r["suite"] == suite.suite]))
    body.append(_privacy_section(model.manifest))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>metaverse-guard report</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
