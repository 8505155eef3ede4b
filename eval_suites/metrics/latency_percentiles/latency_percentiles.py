"""Latency percentiles with distribution-free 95% intervals (metaverse-guard)."""

import datasets
import evaluate

from eval_suites.stats import quantile_interval

_DESCRIPTION = """
p50, p95 and p99 of request latencies, each with an interval from order statistics that assumes
nothing about the (usually skewed) latency distribution.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): Measured latencies, one per request (any unit).
    references (list of float): Ignored; pass the same list (evaluate requires the column).
    quantiles (list of float): Default [0.5, 0.95, 0.99].
Returns:
    For each quantile q: p{100q}, p{100q}_ci_low, p{100q}_ci_high; and n.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LatencyPercentiles(evaluate.Metric):
    """Latency percentiles with order-statistic intervals."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references, quantiles=(0.5, 0.95, 0.99)):
        out = {}
        for q in quantiles:
            est = quantile_interval(predictions, q)
            key = f"p{round(q * 100):d}"
            out[key], out[f"{key}_ci_low"], out[f"{key}_ci_high"] = est.value, est.low, est.high
        out["n"] = len(predictions)
        return out
