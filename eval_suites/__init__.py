"""Evaluation suites, their registry, and the evaluation API under ``guard eval``.

:func:`evaluate` runs an :class:`EvalConfig` (suites, gate, results, reports, manifest);
:func:`replay` reruns a manifest. Suites subclass :class:`Suite` and declare their metrics
with :class:`MetricSpec` (see docs/extending.md).
"""

from eval_suites.audit import ReplayReport, replay
from eval_suites.base import MetricSpec, ReportView, Suite
from eval_suites.config import EvalConfig
from eval_suites.evaluator import EvalOutcome, EvalPlan, evaluate, plan
from eval_suites.registry import SUITES
from eval_suites.runner import run_suites
from guard.results import (
    RESULTS_FILE,
    RESULTS_SCHEMA_VERSION,
    MetricValue,
    Provenance,
    ResultsDocument,
    SuiteResult,
)

__all__ = [
    "RESULTS_FILE",
    "RESULTS_SCHEMA_VERSION",
    "SUITES",
    "EvalConfig",
    "EvalOutcome",
    "EvalPlan",
    "MetricSpec",
    "MetricValue",
    "Provenance",
    "ReplayReport",
    "ReportView",
    "ResultsDocument",
    "Suite",
    "SuiteResult",
    "evaluate",
    "plan",
    "replay",
    "run_suites",
]
