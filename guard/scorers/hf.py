"""Any Hugging Face sequence classifier as a scorer, its labels mapped to categories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from guard.errors import ConfigError
from guard.scorers.base import Scores


class HFScorer:
    """Scores from a sequence classifier (local folder or hub id).

    Multi-label models (``problem_type == "multi_label_classification"``) get a sigmoid per
    label; single-label models a softmax across labels.

    Args:
        model: Folder or hub id of the classifier.
        categories: Model label -> guard category. Labels left out are not reported. Default:
            every label except ones that look benign ("neutral", "non-toxic", "LABEL_0", ...),
            under its own lower-cased name.
        activation: ``"auto"`` (from the model config), ``"sigmoid"`` or ``"softmax"``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        batch_size: Texts per forward pass (batches are length-sorted and dynamically padded).
        max_length: Longer texts are truncated to this many tokens.
        revision: Hub revision to pin.
        trust_remote_code: Run code shipped with a hub model. Off unless you trust its author.

    Raises:
        ConfigError: If ``categories`` names labels the model does not have.
    """

    name = "hf"
    _BENIGN = frozenset({"neutral", "non-toxic", "non_toxic", "nontoxic", "not_toxic", "ok", "safe",
               "label_0", "normal", "clean", "none"})

    def __init__(
        self,
        model: str | Path,
        *,
        categories: Mapping[str, str] | None = None,
        activation: Literal["auto", "sigmoid", "softmax"] = "auto",
        device: str = "auto",
        batch_size: int = 32,
        max_length: int = 256,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        from guard.models.classifier import HFClassifier

        self._clf = HFClassifier.from_pretrained(
            model, device=device, revision=revision, trust_remote_code=trust_remote_code,
            max_length=max_length, batch_size=batch_size,
        )
        labels = self._clf.labels
        if categories is None:
            categories = {label: label.lower() for label in labels
                          if label.lower() not in self._BENIGN}
        unknown = sorted(set(categories) - set(labels))
        if unknown:
            raise ConfigError(f"labels {unknown} are not labels of {model}; it has {list(labels)}")
        if not categories:
            raise ConfigError(f"no label of {model} maps to a category; pass categories=")
        self._columns = {category: labels.index(label) for label, category in categories.items()}
        if activation == "auto":
            multi = self._clf.model.config.problem_type == "multi_label_classification"
            activation = "sigmoid" if multi else "softmax"
        self.activation = activation

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories reported."""
        return tuple(self._columns)

    @property
    def device(self) -> str:
        """The device the model runs on."""
        return self._clf.device

    def score(self, texts: Sequence[str]) -> Scores:
        """Per-category probabilities."""
        if len(texts) == 0:
            return {c: np.empty(0) for c in self._columns}
        logits = self._clf.logits(texts)
        if self.activation == "sigmoid":
            probs = 1.0 / (1.0 + np.exp(-logits))
        else:
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = shifted / shifted.sum(axis=1, keepdims=True)
        return {category: probs[:, column] for category, column in self._columns.items()}
