"""The scorer protocol, score validation and composition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from guard.errors import ConfigError, GuardError

Scores = dict[str, npt.NDArray[np.float64]]
# bool, signed and unsigned integers, floats: numbers that compare with a threshold as they are
_REAL_KINDS = frozenset("biuf")


class ScoreError(GuardError):
    """A scorer returned something that is not a valid score (NaN, out of range, wrong shape)."""


@runtime_checkable
class Scorer(Protocol):
    """Scores texts per category. Every score is a probability-like value in [0, 1]."""

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories :meth:`score` returns."""
        ...

    def score(self, texts: Sequence[str]) -> Scores:
        """``{category: array of len(texts)}``."""
        ...


def check_scores(scores: Scores, n: int, categories: Sequence[str]) -> Scores:
    """Validate a scorer's output: every declared category, right length, real, finite, in [0, 1].

    Anything else is a scorer failure, never a low score: an empty mapping, a scorer that
    declares no categories, complex numbers, strings, ``None`` or objects in place of numbers.

    Raises:
        ScoreError: Describing the first problem found.
    """
    if not isinstance(scores, Mapping):
        raise ScoreError(f"scorer returned {type(scores).__name__}, not a mapping of scores")
    if not categories:
        raise ScoreError("scorer declares no categories")
    missing = [c for c in categories if c not in scores]
    if missing:
        raise ScoreError(f"scorer returned no scores for categories {missing}")
    checked: Scores = {}
    for category, values in scores.items():
        if not isinstance(category, str):
            raise ScoreError(f"scorer returned a category named {category!r}, not a string")
        try:
            array = np.asarray(values)
        except (TypeError, ValueError) as exc:  # ragged or otherwise not an array
            raise ScoreError(f"scores for {category!r} are not an array: {exc}") from None
        if array.dtype.kind not in _REAL_KINDS:
            raise ScoreError(f"scores for {category!r} are {array.dtype} values, not real "
                             "numbers")
        if array.shape != (n,):
            raise ScoreError(f"scores for {category!r} have shape {array.shape}, expected ({n},)")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ScoreError(f"scorer returned a non-finite score for {category!r}")
        if (array < 0).any() or (array > 1).any():
            raise ScoreError(f"scorer returned a score outside [0, 1] for {category!r}")
        checked[category] = array
    return checked


class CompositeScorer:
    """Several scorers as one: the maximum score per category across them.

    Args:
        scorers: The scorers to combine; each runs on the whole batch.

    Raises:
        ConfigError: If no scorer is given.
    """

    def __init__(self, scorers: Sequence[Scorer]) -> None:
        if not scorers:
            raise ConfigError("a composite scorer needs at least one scorer")
        self.scorers = tuple(scorers)
        seen: dict[str, None] = {}
        for scorer in self.scorers:
            seen.update(dict.fromkeys(scorer.categories))
        self._categories = tuple(seen)

    @property
    def categories(self) -> tuple[str, ...]:
        """Union of the members' categories, in order of first appearance."""
        return self._categories

    def score(self, texts: Sequence[str]) -> Scores:
        """Maximum per category over the member scorers."""
        combined: Scores = {}
        for scorer in self.scorers:
            for category, values in check_scores(scorer.score(texts), len(texts),
                                                 scorer.categories).items():
                previous = combined.get(category)
                combined[category] = values if previous is None else np.maximum(previous, values)
        return combined
