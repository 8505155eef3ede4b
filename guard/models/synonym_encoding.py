"""Synonym encoding: every word becomes the representative of its synonym cluster.

A defence against word-substitution attacks after Wang, Jin & He (2021), "Natural Language
Adversarial Defense through Synonym Encoding" (SEM), UAI. The vocabulary of a counter-fitted
embedding is clustered greedily, most frequent words first: a word not yet in a cluster leads
a new one, which takes in its close neighbours that are in none, so every member of a cluster
is a close neighbour of its leader (no chains of neighbours of neighbours). The model is
trained on and reads the encoded text, so an attacker's swap of a word for a neighbour in the
same cluster changes nothing the model sees. Unlike SAFER's sampling
(:mod:`guard.models.substitution_smoothing`) it is deterministic and costs one dictionary
lookup per word.

Differences from the paper: a word joins its leader's cluster only (SEM lets a new word take
its nearest encoded neighbour's code, which on these 50-d vectors chains most of the
vocabulary into a few clusters); the embedding is the counter-fitted GloVe built here
(:mod:`attacks.counterfitting`), neighbours are the ``size`` nearest with cosine >=
``min_cos_sim`` (SEM: Euclidean distance < delta), and words in ``protected`` (TextFooler's
stopwords by default) are never encoded. Saved with a checkpoint as ``synonym_encoding.json``;
:class:`guard.models.classifier.HFClassifier` applies it to every input after the word
recogniser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guard.errors import ModelNotFoundError
from guard.models.substitution_smoothing import close_neighbours, match_case

#: File name of a saved encoder inside a checkpoint folder.
SYNONYM_ENCODING_FILE = "synonym_encoding.json"
_FORMAT = "guard-synonym-encoding/1"
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class SynonymEncoder:
    """SEM's synonym encoding (see the module docstring).

    Build one with :meth:`from_neighbours`; load a saved one with :meth:`load`.

    Attributes:
        codes: Lower-case word -> the word that represents its cluster (only words whose code
            differs from themselves are listed).
        provenance: Where the clusters came from and how they were chosen.
    """

    codes: dict[str, str]
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_neighbours(cls, words: Sequence[str], neighbours: np.ndarray, matrix: np.ndarray,
                        *, size: int = 10, min_cos_sim: float = 0.8,
                        protected: Collection[str] = (),
                        provenance: dict[str, Any] | None = None) -> SynonymEncoder:
        """Cluster ``words`` (most frequent first) by their nearest neighbours.

        Args:
            words: The embedding's vocabulary, most frequent first.
            neighbours: ``(len(words), >= size + 1)`` nearest rows by decreasing cosine,
                column 0 the word itself.
            matrix: The L2-normalised vectors, to apply ``min_cos_sim``.
            size: Nearest neighbours a word shares its code with.
            min_cos_sim: Neighbours less similar than this are not clustered with it.
            protected: Words that keep themselves and never join a cluster.
            provenance: Recorded with the codes.

        Raises:
            ConfigError: For shapes that do not match or out-of-range settings.
        """
        candidates, close = close_neighbours(words, neighbours, matrix, size=size,
                                             min_cos_sim=min_cos_sim)
        guarded = {w.lower() for w in protected}
        code = np.full(len(words), -1, dtype=np.int64)
        for i, word in enumerate(words):
            if word in guarded or code[i] >= 0:  # an encoded word hands on nothing
                continue
            code[i] = i  # a new cluster, led by this word
            for j in candidates[i][close[i]]:
                if code[j] < 0 and words[j] not in guarded:
                    code[j] = i
        codes = {words[i]: words[int(c)] for i, c in enumerate(code) if c >= 0 and c != i}
        record = {**(provenance or {}), "size": size, "min_cos_sim": min_cos_sim,
                  "protected_words": len(guarded), "encoded_words": len(codes),
                  "clusters": len({int(c) for c in code if c >= 0})}
        return cls(codes, record)

    def encode(self, text: str) -> str:
        """``text`` with each word replaced by its cluster's representative, case kept."""
        def swap(match: re.Match[str]) -> str:
            word = match.group(0)
            code = self.codes.get(word.lower())
            return word if code is None else match_case(code, word)

        return _WORD.sub(swap, text)

    def to_json(self) -> str:
        """The encoder as the JSON a checkpoint stores."""
        return json.dumps({"format": _FORMAT, "codes": self.codes,
                           "provenance": self.provenance})

    def save(self, folder: str | Path) -> None:
        """Write the encoder into ``folder``."""
        (Path(folder) / SYNONYM_ENCODING_FILE).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> SynonymEncoder | None:
        """The encoder saved in ``folder``, or ``None`` if it has none.

        Raises:
            ModelNotFoundError: If the file exists but is not a saved encoder.
        """
        path = Path(folder) / SYNONYM_ENCODING_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            codes = {str(k): str(v) for k, v in data["codes"].items()}
            return cls(codes, dict(data.get("provenance", {})))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelNotFoundError(f"{path}: cannot read the synonym encoder ({exc})") from exc
