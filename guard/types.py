"""Protocols shared by every wing of the harness: batch in, batch out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


@runtime_checkable
class Classifier(Protocol):
    """A text classifier.

    ``predict_proba`` returns an array of shape ``(len(texts), len(labels))`` whose rows sum to 1,
    columns in the order of ``labels``.
    """

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names, in column order."""
        ...

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Class probabilities for each text."""
        ...


@runtime_checkable
class Generator(Protocol):
    """A text generator: one completion per prompt."""

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Complete each prompt."""
        ...
