"""Evaluation suites, the suite registry and the runner that writes ``results.json``."""

from eval_suites.base import MetricSpec, MetricValue, Provenance, Suite, SuiteResult
from eval_suites.registry import SUITES
from eval_suites.runner import RESULTS_FILE, RESULTS_SCHEMA_VERSION, run_suites

__all__ = [
    "RESULTS_FILE",
    "RESULTS_SCHEMA_VERSION",
    "SUITES",
    "MetricSpec",
    "MetricValue",
    "Provenance",
    "Suite",
    "SuiteResult",
    "run_suites",
]
