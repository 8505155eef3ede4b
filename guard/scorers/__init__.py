"""Scorers: text -> per-category scores in [0, 1]. Registered by name (``guard ls scorers``).

``import guard.scorers`` stays light; a backend's heavy imports happen when it is built.
"""

from __future__ import annotations

from typing import Any

from guard.policy import Policy
from guard.registry import Registry
from guard.scorers.base import CompositeScorer, ScoreError, Scorer, check_scores

SCORERS: Registry[Any] = Registry("scorer")
SCORERS.register("harm-minilm", "guard.scorers.harm:HarmScorer",
                 summary="embedded default: eight harm categories, heads over all-MiniLM-L6-v2 "
                         "(offline, CPU or CUDA)")
SCORERS.register("profanity-linear", "guard.scorers.profanity:LinearProfanityScorer",
                 summary="fast lexical scorer: offensive-language linear model (MIT, NumPy)")
SCORERS.register("detoxify", "guard.scorers.detoxify:DetoxifyScorer",
                 summary="detoxify checkpoints (published or local), loaded without unpickling")
SCORERS.register("hf", "guard.scorers.hf:HFScorer",
                 summary="any Hugging Face sequence classifier, labels mapped to categories")

#: Scorer used by ``OutputGuard.default()``.
DEFAULT_SCORER = "harm-minilm"


def recommended_policy(scorer: Scorer) -> Policy:
    """The policy a scorer ships with: its per-category thresholds, else block at 0.5.

    A scorer may expose ``thresholds`` (category -> threshold chosen on validation data when
    its weights were built); composite scorers merge their members' thresholds (the lowest
    wins, so no member's operating point is loosened).
    """
    from guard.policy import CategoryRule, Policy

    members = scorer.scorers if isinstance(scorer, CompositeScorer) else (scorer,)
    thresholds: dict[str, float] = {}
    for member in members:
        for category, value in getattr(member, "thresholds", {}).items():
            thresholds[category] = min(value, thresholds.get(category, value))
    return Policy(categories={c: CategoryRule(threshold=t) for c, t in thresholds.items()})


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
    "recommended_policy",
]
