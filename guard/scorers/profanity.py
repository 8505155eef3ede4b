"""The embedded default scorer: an offensive-language linear model that ships with the package.

The weights come from ``alt-profanity-check`` 1.9.1 (MIT): TF-IDF over word unigrams and five
Platt-calibrated linear SVMs whose probabilities are averaged. They were converted once to
safetensors (``assets/profanity_linear/SOURCE.md``), so scoring needs only NumPy: no
scikit-learn, no pickle, no network, well under a millisecond per text on a CPU.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from guard.scorers.base import Scores

_ASSETS = Path(__file__).parent / "assets" / "profanity_linear"
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern


class LinearProfanityScorer:
    """Offensive-language probability, category ``toxicity`` (English, bag of words).

    Args:
        assets: Folder with ``vocab.json`` and ``weights.safetensors`` (default: the shipped
            ones).
    """

    name = "profanity-linear"

    def __init__(self, *, assets: str | Path = _ASSETS) -> None:
        from safetensors.numpy import load_file

        folder = Path(assets)
        self._vocab: dict[str, int] = json.loads((folder / "vocab.json").read_text("utf-8"))
        weights = load_file(str(folder / "weights.safetensors"))
        # p = mean over folds of 1 / (1 + exp(a * (x @ coef + intercept) + b)), x = l2(tf * idf)
        self._idf = weights["idf"]
        self._coef = weights["coef"]  # (folds, vocab)
        self._intercept = weights["intercept"]
        self._a = weights["calib_a"]
        self._b = weights["calib_b"]

    @property
    def categories(self) -> tuple[str, ...]:
        """Only ``toxicity``."""
        return ("toxicity",)

    @property
    def device(self) -> str:
        """Always the CPU."""
        return "cpu"

    def score(self, texts: Sequence[str]) -> Scores:
        """Offensive-language probability of each text."""
        out = np.empty(len(texts), dtype=np.float64)
        for i, text in enumerate(texts):
            counts = Counter(
                index for token in _TOKEN.findall(text.lower())
                if (index := self._vocab.get(token)) is not None
            )
            if counts:
                columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                weights *= self._idf[columns]
                weights /= np.linalg.norm(weights)
                decision = self._coef[:, columns] @ weights + self._intercept
            else:
                decision = self._intercept.copy()
            out[i] = float(np.mean(1.0 / (1.0 + np.exp(self._a * decision + self._b))))
        return {"toxicity": out}
