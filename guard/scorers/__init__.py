"""Scorers: text -> per-category scores in [0, 1]. Registered by name (``guard ls scorers``).

``import guard.scorers`` stays light; a backend's heavy imports happen when it is built.
"""

from __future__ import annotations

from typing import Any

from guard.registry import Registry
from guard.scorers.base import CompositeScorer, ScoreError, Scorer, check_scores

SCORERS: Registry[Any] = Registry("scorer")
SCORERS.register("profanity-linear", "guard.scorers.profanity:LinearProfanityScorer",
                 summary="embedded default: offensive-language linear model (MIT, offline, CPU)")
SCORERS.register("detoxify", "guard.scorers.detoxify:DetoxifyScorer",
                 summary="detoxify checkpoints (published or local), loaded without unpickling")
SCORERS.register("hf", "guard.scorers.hf:HFScorer",
                 summary="any Hugging Face sequence classifier, labels mapped to categories")

#: Scorer used by ``OutputGuard.default()``.
DEFAULT_SCORER = "profanity-linear"


def build_scorer(name: str, **options: Any) -> Scorer:
    """Build the scorer registered as ``name`` with ``options``.

    Raises:
        UnknownNameError: For an unknown name (with suggestions).
    """
    factory = SCORERS.get(name)
    scorer: Scorer = factory(**options)
    return scorer


__all__ = [
    "DEFAULT_SCORER",
    "SCORERS",
    "CompositeScorer",
    "ScoreError",
    "Scorer",
    "build_scorer",
    "check_scores",
]
