"""Hugging Face sequence classifiers behind the :class:`guard.types.Classifier` protocol."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from guard.models.source import (
    ModelSource,
    load_pretrained,
    pick_device,
    resolve_model,
    token_limit,
)
from guard.models.substitution_smoothing import SubstitutionSmoother
from guard.models.synonym_encoding import SynonymEncoder
from guard.models.word_recognition import WordRecognizer
from guard.provenance import sha256_model_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Indices of ``texts`` in batches of similar length, so dynamic padding wastes little."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class HFClassifier:
    """A Hugging Face sequence classifier with batched, length-sorted, dynamically padded inference.

    Build one with :meth:`from_pretrained`; wrap an already loaded model with the constructor.

    Args:
        model: A ``transformers`` sequence-classification model.
        tokenizer: Its tokenizer.
        max_length: Longer inputs are truncated to this many tokens.
        batch_size: Inference batch size.
        source: Where the model came from (recorded in results).
        word_recognizer: Applied to every input before tokenization (a checkpoint trained with
            word recognition carries one; :meth:`from_pretrained` loads it).
        smoother: Randomised synonym substitution with a vote (SAFER): every input is read as
            ``smoother.samples`` perturbed copies and answered with their mean probability
            (a checkpoint trained with ``substitution_defence="safer"`` carries one). It costs
            ``samples`` forward passes per input.
        synonym_encoder: Maps every word to its synonym cluster's representative after the
            word recogniser (SEM; a checkpoint trained with ``substitution_defence="sem"``
            carries one).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int = 128,
        batch_size: int = 32,
        source: ModelSource | None = None,
        word_recognizer: WordRecognizer | None = None,
        smoother: SubstitutionSmoother | None = None,
        synonym_encoder: SynonymEncoder | None = None,
    ) -> None:
        self.model = model.eval()
        self.word_recognizer = word_recognizer
        self.smoother = smoother
        self.synonym_encoder = synonym_encoder
        self.tokenizer = tokenizer
        self.max_length = token_limit(model.config, max_length)
        self.batch_size = batch_size
        self.source = source
        id2label = model.config.id2label or {}
        self._labels = tuple(str(id2label[i]) for i in range(len(id2label)))
        self._fingerprint: str | None = None
        # Fast (Rust) tokenizers reconfigure padding/truncation per call and raise "Already
        # borrowed" when two threads do so at once; the model itself is safe to share.
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path,
        *,
        device: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        max_length: int = 128,
        batch_size: int = 32,
    ) -> HFClassifier:
        """Load a classifier from a local folder or a hub id.

        Args:
            model: Folder written by ``guard train`` / ``save_pretrained``, or a hub id.
            device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
            revision: Hub revision to pin.
            trust_remote_code: Run code shipped with a hub model. Off unless you trust its author.
            max_length: Longer inputs are truncated to this many tokens.
            batch_size: Inference batch size.

        Raises:
            ModelNotFoundError: If the model cannot be found or loaded.
        """
        from transformers import AutoModelForSequenceClassification

        source = resolve_model(model, revision=revision)
        tokenizer, net = load_pretrained(AutoModelForSequenceClassification, source,
                                         what="a sequence classifier",
                                         trust_remote_code=trust_remote_code)
        net.to(pick_device(device))
        local = source.kind == "local"
        return cls(net, tokenizer, max_length=max_length, batch_size=batch_size, source=source,
                   word_recognizer=WordRecognizer.load(source.location) if local else None,
                   smoother=SubstitutionSmoother.load(source.location) if local else None,
                   synonym_encoder=SynonymEncoder.load(source.location) if local else None)

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names, in column order of :meth:`predict_proba`."""
        return self._labels

    @property
    def device(self) -> str:
        """The device the model runs on, e.g. ``"cpu"`` or ``"cuda:0"``."""
        return str(next(self.model.parameters()).device)

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 of the model folder's weights, config and tokenizer (local models only)."""
        if self._fingerprint is None and self.source is not None and self.source.kind == "local":
            self._fingerprint = sha256_model_dir(self.source.location)
        return self._fingerprint

    def read(self, texts: Sequence[str]) -> list[str]:
        """The texts as the model reads them: corrected, then synonym-encoded (if it has those)."""
        out = list(texts)
        if self.word_recognizer is not None:
            out = [self.word_recognizer.correct(text) for text in out]
        if self.synonym_encoder is not None:
            out = [self.synonym_encoder.encode(text) for text in out]
        return out

    def encode(self, texts: Sequence[str], *, read: bool = True) -> dict[str, torch.Tensor]:
        """Tokenize a batch, padded to its longest member (never to the model maximum).

        With ``read``, the texts pass through :meth:`read` first.
        """
        if read:
            texts = self.read(texts)
        with self._tokenizer_lock:
            batch = self.tokenizer(
                list(texts), padding=True, truncation=True, max_length=self.max_length,
                return_tensors="pt",
            )
        return {name: tensor.to(self.model.device) for name, tensor in batch.items()}

    def logits(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Logits, shape ``(len(texts), len(labels))``, in input order.

        The model's raw logits; with a smoother, the log of the copies' mean probability
        (whose softmax is that mean).
        """
        if self.smoother is None:
            return self._model_logits(texts, read=True)
        # correct misspellings, then perturb the words
        copies = [copy for text in self.read(texts) for copy in self.smoother.copies(text)]
        logits = self._model_logits(copies, read=False)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return np.log(np.maximum(self.smoother.vote(probs), 1e-30))  # type: ignore[no-any-return]

    def _model_logits(self, texts: Sequence[str], *, read: bool) -> npt.NDArray[np.float64]:
        import torch

        out = np.empty((len(texts), len(self._labels)), dtype=np.float64)
        with torch.inference_mode():
            for idx in length_sorted_batches(texts, self.batch_size):
                batch = self.encode([texts[i] for i in idx], read=read)
                out[idx] = self.model(**batch).logits.float().cpu().numpy()
        return out

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Class probabilities, shape ``(len(texts), len(labels))``, rows summing to 1."""
        if len(texts) == 0:
            return np.empty((0, len(self._labels)), dtype=np.float64)
        logits = self.logits(texts)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label for each text."""
        if len(texts) == 0:
            return []
        return [self._labels[i] for i in self.predict_proba(texts).argmax(axis=1)]
