"""The suite registry: ``guard ls suites`` lists it, ``guard eval --suite`` picks from it."""

from __future__ import annotations

from eval_suites.base import MetricSpec, ReportView, Suite
from guard.errors import ConfigError
from guard.registry import Registry

SUITES: Registry[type[Suite]] = Registry("suite")
SUITES.register("accuracy", "eval_suites.accuracy:AccuracySuite",
                summary="accuracy, macro-F1, per-class F1, confusion matrix")
SUITES.register("latency", "eval_suites.latency:LatencySuite",
                summary="p50/p95/p99 latency at batch 1, throughput at batch 32")
SUITES.register("toxicity", "eval_suites.toxicity:ToxicitySuite",
                summary="toxic-output rate of the assistant; guard ROC AUC, recall, FPR, "
                        "obfuscation")
SUITES.register("robustness", "eval_suites.robustness:RobustnessSuite",
                summary="accuracy under attack, attack success rate per TextAttack recipe "
                        "(needs the attacks extra)")
SUITES.register("generation", "eval_suites.generation:GenerationSuite",
                summary="a chat model (default: the embedded tutor): harmful-output, refusal "
                        "and false-refusal rates; time to first token, tokens/s")


def metric_spec(suite: str, metric: str) -> MetricSpec | None:
    """The declared spec of ``metric`` in ``suite``, or ``None``.

    ``None`` for a suite or metric this version does not know (results written by a plugin or
    by a later version).
    """
    if suite not in SUITES:
        return None
    try:
        return SUITES.get(suite).spec(metric)
    except ConfigError:
        return None


def is_headline(suite: str, metric: str) -> bool:
    """Whether summaries show ``metric`` (unknown metrics are shown)."""
    spec = metric_spec(suite, metric)
    return spec is None or spec.headline


def report_views(suite: str) -> tuple[ReportView, ...]:
    """The plots and tables ``suite`` declares for the reports (none for unknown suites)."""
    return SUITES.get(suite).report_views if suite in SUITES else ()
