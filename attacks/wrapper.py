"""A TextAttack model wrapper that pads to the batch, batches queries and caches repeats."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from attacks.textattack_env import load_textattack
from guard.models.classifier import HFClassifier

_textattack = load_textattack()


class CachingModelWrapper(_textattack.models.wrappers.ModelWrapper):  # type: ignore[misc,name-defined]
    """Wraps an :class:`HFClassifier` for TextAttack.

    TextAttack's ``HuggingFaceModelWrapper`` pads every query to the tokenizer's maximum length
    (512 for MiniLM); this one pads each length-sorted batch to its longest text, and answers a
    text it has seen before from an LRU cache. Query counting stays with TextAttack's goal
    function, so budgets and reported query counts are unchanged.

    Args:
        classifier: The model under attack.
        cache_size: Most texts remembered.
    """

    def __init__(self, classifier: HFClassifier, *, cache_size: int = 65536) -> None:
        self.classifier = classifier
        self.model = classifier.model  # some TextAttack components look for .model
        self.tokenizer = classifier.tokenizer
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self.forward_texts = 0  # texts actually run through the model (not from the cache)

    def __call__(self, text_input_list: Sequence[str]) -> np.ndarray:
        """Logits for each text, shape ``(len(texts), n_labels)``."""
        missing = list(dict.fromkeys(t for t in text_input_list if t not in self._cache))
        if missing:
            logits = self.classifier.logits(missing)
            self.forward_texts += len(missing)
            for text, row in zip(missing, logits, strict=True):
                self._cache[text] = row.astype(np.float32)
        out = np.stack([self._cache[t] for t in text_input_list]) if text_input_list else \
            np.empty((0, len(self.classifier.labels)), dtype=np.float32)
        for text in text_input_list:
            self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def get_grad(self, text_input: str) -> dict[str, object]:
        """Gradient-based recipes are not supported by this wrapper."""
        raise NotImplementedError("gradient-based recipes need TextAttack's own wrapper")
