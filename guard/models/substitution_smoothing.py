"""Randomised synonym substitution with a vote: an inference-time defence against word swaps.

After Ye, Gong & Liu (2020), "SAFER: A Structure-free Approach for Certified Robustness to
Adversarial Word Substitutions", ACL. Every word that has a *perturbation set* (itself and its
nearest neighbours in a counter-fitted embedding) is replaced by a uniform draw from that set;
the classifier reads ``samples`` such copies and its answer is their mean class probability.
An attacker who swaps a word for one of its neighbours mostly lands inside the same set, so
the copies the classifier reads barely change. Training on perturbed copies (SAFER's base
classifier; ``guard train --substitution-defence safer``) keeps clean accuracy.

Differences from the paper: the perturbation sets come from the counter-fitted GloVe vectors
built here (:mod:`attacks.counterfitting`), not from Jia et al.'s (2019) published neighbour
lists; words in ``protected`` (by default TextFooler's stopwords, which carry negation and which
that attack never swaps) are never perturbed; and the answer is the mean probability over a
few copies (a *soft* vote, so that score-based attacks and calibration see probabilities),
not a majority vote over thousands of samples with a certified radius.

The inference copies use common random numbers: copy ``j`` chooses at word position ``p`` with
the same uniform number ``u[j, p]`` (from ``seed``) for every text, so a text always gets the
same copies and the same answer, and two texts that differ in one word get copies that differ
at that word only. Draws seeded by each text would hand an attacker a fresh roll of the noise
with every candidate it tries, which a greedy search exploits. Training draws fresh noise per
text and epoch (:meth:`SubstitutionSmoother.perturb`). Saved with a checkpoint as
``substitution_smoothing.json`` plus
``substitution_smoothing.safetensors``; :class:`guard.models.classifier.HFClassifier` applies
it to every input. Only numpy and safetensors are needed to load and apply it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guard.errors import ConfigError, ModelNotFoundError

#: File names of a saved smoother inside a checkpoint folder.
SMOOTHING_FILE = "substitution_smoothing.json"
SMOOTHING_TABLE_FILE = "substitution_smoothing.safetensors"
_FORMAT = "guard-substitution-smoothing/1"
_WORD = re.compile(r"[A-Za-z]+")
#: Word positions with their own inference draws; later positions reuse them cyclically.
_POSITIONS = 1024


def close_neighbours(words: Sequence[str], neighbours: np.ndarray, matrix: np.ndarray, *,
                     size: int, min_cos_sim: float) -> tuple[np.ndarray, np.ndarray]:
    """Each word's ``size`` nearest neighbours and which of them are close enough.

    Args:
        words: The vocabulary, row order.
        neighbours: ``(len(words), >= size + 1)`` nearest rows, column 0 the word itself.
        matrix: The L2-normalised vectors.
        size: Neighbours per word.
        min_cos_sim: Least cosine of a close neighbour.

    Returns:
        ``(len(words), size)`` neighbour rows and the boolean mask of the close ones.

    Raises:
        ConfigError: For shapes that do not match or out-of-range settings.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"size must be a positive integer, got {size!r}")
    if not -1.0 <= min_cos_sim <= 1.0:
        raise ConfigError(f"min_cos_sim is a cosine in [-1, 1], got {min_cos_sim!r}")
    neighbours = np.asarray(neighbours)
    if neighbours.shape[0] != len(words) or neighbours.shape[1] < 2:
        raise ConfigError(f"neighbours must be a ({len(words)}, k + 1) matrix, got "
                          f"{neighbours.shape}")
    candidates = neighbours[:, 1 : size + 1]
    return candidates, np.einsum("nd,nkd->nk", matrix, matrix[candidates]) >= min_cos_sim


def match_case(word: str, like: str) -> str:
    """``word`` in the case of ``like``: UPPER (two letters or more), Capitalised or as is."""
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[0].isupper() else word


@dataclass(frozen=True, eq=False)
class SubstitutionSmoother:
    """SAFER's randomised substitution (see the module docstring).

    Build one with :meth:`from_neighbours`; load a saved one with :meth:`load`.

    Attributes:
        words: Vocabulary of the perturbation sets (lower case).
        sets: ``(len(words), width)`` int32 row indices; row ``i`` lists word ``i`` itself and
            then its neighbours, ``-1`` padding the rows with fewer.
        samples: Perturbed copies read per input at inference.
        seed: Salt of the per-text draws.
        provenance: Where the sets came from and how they were chosen (saved, reported).
    """

    words: tuple[str, ...]
    sets: np.ndarray
    samples: int = 8
    seed: int = 0
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _sizes: np.ndarray = field(init=False, repr=False, compare=False)
    _uniforms: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or \
                self.samples < 1:
            raise ConfigError(f"samples must be a positive integer, got {self.samples!r}")
        sets = np.asarray(self.sets)
        if sets.ndim != 2 or sets.shape[0] != len(self.words) or sets.shape[1] < 1:
            raise ConfigError(f"perturbation sets must be a ({len(self.words)}, width) matrix, "
                              f"got shape {sets.shape}")
        if len(self.words) and not np.array_equal(sets[:, 0], np.arange(len(self.words))):
            raise ConfigError("each perturbation set must start with its own word")
        object.__setattr__(self, "sets", sets.astype(np.int32, copy=False))
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})
        object.__setattr__(self, "_sizes", (sets >= 0).sum(axis=1).astype(np.int64))
        object.__setattr__(self, "_uniforms", np.random.default_rng(
            [self.seed, 0x5AFE]).random((self.samples, _POSITIONS)))

    @classmethod
    def from_neighbours(cls, words: Sequence[str], neighbours: np.ndarray, matrix: np.ndarray,
                        *, size: int = 8, min_cos_sim: float = 0.7,
                        protected: Collection[str] = (), samples: int = 8, seed: int = 0,
                        provenance: dict[str, Any] | None = None) -> SubstitutionSmoother:
        """Perturbation sets from an embedding's nearest neighbours.

        Args:
            words: The embedding's vocabulary, row order.
            neighbours: ``(len(words), >= size + 1)`` nearest rows by decreasing cosine,
                column 0 the word itself (:class:`attacks.counterfitting.CounterFitted`'s
                ``nn``).
            matrix: The L2-normalised vectors, to apply ``min_cos_sim``.
            size: Most neighbours per set besides the word itself.
            min_cos_sim: Neighbours less similar than this are left out.
            protected: Words never perturbed (no set).
            samples: Copies per input at inference.
            seed: Salt of the draws.
            provenance: Recorded with the sets.

        Raises:
            ConfigError: For shapes that do not match or out-of-range settings.
        """
        candidates, keep = close_neighbours(words, neighbours, matrix, size=size,
                                            min_cos_sim=min_cos_sim)
        guarded = {w.lower() for w in protected}
        rows: list[int] = []
        for i, word in enumerate(words):
            if word in guarded or not keep[i].any():
                continue
            rows.append(i)
        # Renumber into the kept vocabulary plus the neighbours it points to.
        used = sorted(set(rows) | {int(j) for i in rows for j in candidates[i][keep[i]]})
        position = {old: new for new, old in enumerate(used)}
        sets = np.full((len(used), size + 1), -1, dtype=np.int32)
        sets[:, 0] = np.arange(len(used))
        for i in rows:
            chosen = [position[int(j)] for j in candidates[i][keep[i]]]
            sets[position[i], 1 : len(chosen) + 1] = chosen
        record = {**(provenance or {}), "size": size, "min_cos_sim": min_cos_sim,
                  "protected_words": len(guarded),
                  "perturbable_words": len(rows)}
        return cls(tuple(words[i] for i in used), sets, samples=samples, seed=seed,
                   provenance=record)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SubstitutionSmoother):
            return NotImplemented
        return ((self.words, self.samples, self.seed) == (other.words, other.samples, other.seed)
                and np.array_equal(self.sets, other.sets))

    def perturbation_set(self, word: str) -> tuple[str, ...]:
        """The words ``word`` may become (itself first); ``(word,)`` if it has no set."""
        row = self._index.get(word.lower())
        if row is None:
            return (word,)
        return tuple(self.words[j] for j in self.sets[row, : self._sizes[row]])

    def _substitute(self, text: str, uniform: Callable[[int], float]) -> str:
        """``text`` with its ``p``-th word replaced by the set member ``uniform(p)`` picks."""
        positions = itertools.count()

        def swap(match: re.Match[str]) -> str:
            word = match.group(0)
            u = uniform(next(positions))
            row = self._index.get(word.lower())
            if row is None or self._sizes[row] < 2:
                return word
            pick = int(self.sets[row, int(u * self._sizes[row])])
            return word if pick == row else match_case(self.words[pick], word)

        return _WORD.sub(swap, text)

    def perturb(self, text: str, *, salt: str = "") -> str:
        """One freshly drawn copy of ``text`` (training), the same for the same text and salt."""
        digest = hashlib.sha256(f"{self.seed}\0{salt}\0{text}".encode()).digest()
        draws = np.random.default_rng(int.from_bytes(digest[:8], "big")).random(
            len(_WORD.findall(text)))
        return self._substitute(text, lambda p: float(draws[p]))

    def copies(self, text: str) -> list[str]:
        """The ``samples`` copies the classifier reads for ``text`` (common random numbers)."""
        def draws(j: int) -> Callable[[int], float]:
            return lambda p: float(self._uniforms[j, p % _POSITIONS])

        return [self._substitute(text, draws(j)) for j in range(self.samples)]

    def vote(self, probabilities: np.ndarray) -> np.ndarray:
        """Mean class probability per input from ``(n * samples, classes)`` copy rows."""
        n = probabilities.shape[0] // self.samples
        return probabilities.reshape(n, self.samples, -1).mean(axis=1)  # type: ignore[no-any-return]

    def save(self, folder: str | Path) -> None:
        """Write the smoother into ``folder`` (two files)."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        meta = {"format": _FORMAT, "samples": self.samples, "seed": self.seed,
                "words": list(self.words), "provenance": self.provenance}
        save_file({"sets": np.ascontiguousarray(self.sets)}, str(folder / SMOOTHING_TABLE_FILE))
        (folder / SMOOTHING_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> SubstitutionSmoother | None:
        """The smoother saved in ``folder``, or ``None`` if it has none.

        Raises:
            ModelNotFoundError: If the files are unreadable or of an unknown format.
        """
        folder = Path(folder)
        meta_path, table_path = folder / SMOOTHING_FILE, folder / SMOOTHING_TABLE_FILE
        if not meta_path.is_file():
            return None
        from safetensors.numpy import load_file

        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"unknown format {meta.get('format')!r}")
            sets = load_file(str(table_path))["sets"]
            return cls(tuple(meta["words"]), sets, samples=int(meta["samples"]),
                       seed=int(meta["seed"]), provenance=dict(meta.get("provenance", {})))
        except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
            raise ModelNotFoundError(
                f"{meta_path}: cannot read the substitution smoother ({exc})") from exc
