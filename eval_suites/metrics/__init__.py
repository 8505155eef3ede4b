"""Hugging Face ``evaluate`` modules for the suites' metrics, loadable by path with no network.

Example::

    import evaluate
    from eval_suites.metrics import metric_path

    accuracy = evaluate.load(metric_path("accuracy_ci"))
    accuracy.compute(predictions=[0, 1, 1], references=[0, 1, 0])
    # {'accuracy': 0.667, 'accuracy_ci_low': 0.208, 'accuracy_ci_high': 0.939, 'n': 3}

Each module is a thin wrapper over :mod:`eval_suites.stats`, so numbers match the suites'.
"""

from __future__ import annotations

from pathlib import Path

from guard.errors import UnknownNameError

#: The shipped metric modules.
METRIC_MODULES = ("accuracy_ci", "f1_ci", "latency_percentiles")


def metric_path(name: str) -> str:
    """Folder of a shipped metric module, for ``evaluate.load``.

    Raises:
        UnknownNameError: If no such module ships with the package.
    """
    if name not in METRIC_MODULES:
        raise UnknownNameError(f"unknown metric module {name!r}; shipped: {METRIC_MODULES}")
    return str(Path(__file__).parent / name)
