"""Detoxify checkpoints as a scorer, loaded without unpickling arbitrary code.

Detoxify (Hanu & Unitary team, 2020) ships Jigsaw-trained toxicity classifiers as checkpoints
holding ``{"config": ..., "state_dict": ...}``. Its own loader calls ``torch.load`` with
``weights_only=False``, which runs any code a tampered checkpoint carries. This backend loads the
same files with ``weights_only=True`` (plain containers and tensors only), builds the model from
an allow-listed transformers class, and scores in length-sorted, dynamically padded batches under
``torch.inference_mode``. Scores match ``detoxify.Detoxify.predict`` on the same checkpoint.
"""

from __future__ import annotations

import pickle
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from guard.errors import ConfigError, ModelNotFoundError
from guard.models.classifier import length_sorted_batches
from guard.models.source import hub_offline, pick_device, token_limit
from guard.scorers.base import Scores

#: Published checkpoints (detoxify 0.5.x), fetched into torch hub's cache when online.
PUBLISHED = {
    "original": "v0.1-alpha/toxic_original-c1212f89.ckpt",
    "unbiased": "v0.3-alpha/toxic_debiased-c7548aa0.ckpt",
    "multilingual": "v0.4-alpha/multilingual_debiased-0b549669.ckpt",
    "original-small": "v0.1.2/original-albert-0e1d6498.ckpt",
    "unbiased-small": "v0.1.2/unbiased-albert-c8519128.ckpt",
}
_RELEASES = "https://github.com/unitaryai/detoxify/releases/download/"

_MODEL_CLASSES = {
    "BertForSequenceClassification",
    "RobertaForSequenceClassification",
    "XLMRobertaForSequenceClassification",
    "AlbertForSequenceClassification",
    "DistilBertForSequenceClassification",
}
_TOKENIZER_CLASSES = {
    "BertTokenizer", "BertTokenizerFast", "RobertaTokenizer", "RobertaTokenizerFast",
    "XLMRobertaTokenizer", "XLMRobertaTokenizerFast", "AlbertTokenizer", "AlbertTokenizerFast",
    "DistilBertTokenizer", "DistilBertTokenizerFast",
}
# detoxify renames these classes so every checkpoint reports the same categories
_RENAME = {"toxic": "toxicity", "identity_hate": "identity_attack",
           "severe_toxic": "severe_toxicity"}


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """A local checkpoint path, or the cached file of a published one (downloaded if online).

    Raises:
        ModelNotFoundError: If the file is not there and cannot be fetched.
    """
    name = str(checkpoint)
    if name not in PUBLISHED:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"no detoxify checkpoint at {name!r}; pass a checkpoint file or one of "
                f"{sorted(PUBLISHED)}"
            )
        return path
    import torch.hub

    url = _RELEASES + PUBLISHED[name]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if cached.is_file():
        return cached
    if hub_offline():
        raise ModelNotFoundError(
            f"detoxify checkpoint {name!r} is not cached at {cached} and downloads are disabled "
            f"(HF_HUB_OFFLINE=1); download {url} there on a connected machine"
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(cached))
    return cached


def load_checkpoint_safely(path: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` a detoxify checkpoint and check its layout.

    Raises:
        ConfigError: If the file is empty, truncated or not a torch checkpoint, holds arbitrary
            Python objects, or lacks config / state_dict.
    """
    import torch

    try:
        with warnings.catch_warnings():  # torch's notes on a refused pickle's protocol
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's message advises weights_only=False, i.e. running the file's code: never pass
        # that on. Say what is wrong instead.
        raise ConfigError(
            f"{path} holds Python objects beyond tensors and plain containers, so it is "
            "refused, not unpickled (that could run arbitrary code). Re-save it on a trusted "
            "machine as {'config': ..., 'state_dict': ...} with plain values"
        ) from None
    except Exception as exc:  # whatever a damaged, untrusted file makes the parser raise
        raise ConfigError(f"{path} is not a detoxify checkpoint: {_damage(path)} "
                          f"({type(exc).__name__}); pass a file saved with torch.save") from exc
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise ConfigError(f"{path} is not a detoxify checkpoint: it needs 'config' and "
                          "'state_dict' entries")
    return loaded


def _damage(path: Path) -> str:
    """What is wrong with a file torch cannot load, as far as its size tells."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "the file is empty"
    return "the file is truncated, damaged or not a torch checkpoint"


class DetoxifyScorer:
    """Detoxify toxicity categories (``toxicity``, ``severe_toxicity``, ``obscene``, ...).

    Args:
        checkpoint: A published name (``original``, ``unbiased``, ``multilingual``,
            ``original-small``, ``unbiased-small``) or a local checkpoint file.
        huggingface_config_path: Local folder with the transformers config and tokenizer, used
            instead of the checkpoint's ``model_type`` (needed offline for published ones).
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        batch_size: Texts per forward pass.
        max_length: Longer texts are truncated (detoxify's models take 512 tokens).
        quantize: Dynamic int8 quantisation of the linear layers (CPU only): faster, slightly
            different scores.

    Raises:
        ModelNotFoundError: If the checkpoint or its config folder cannot be found.
        ConfigError: If the checkpoint is unsafe, malformed or names a model class we do not load.
    """

    name = "detoxify"

    def __init__(
        self,
        checkpoint: str | Path = "original",
        *,
        huggingface_config_path: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 32,
        max_length: int = 512,
        quantize: bool = False,
    ) -> None:
        import torch
        import transformers

        loaded = load_checkpoint_safely(resolve_checkpoint(checkpoint))
        try:
            arch = loaded["config"]["arch"]["args"]
            classes = list(loaded["config"]["dataset"]["args"]["classes"])
            model_name, tokenizer_name = arch["model_name"], arch["tokenizer_name"]
            source = str(huggingface_config_path or arch["model_type"])
            num_classes = int(arch["num_classes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"detoxify checkpoint config lacks {exc}") from exc
        if num_classes != len(classes) or not all(isinstance(c, str) for c in classes):
            raise ConfigError(f"detoxify checkpoint config names {len(classes)} classes for "
                              f"{num_classes} outputs; they must match, one name each")
        if model_name not in _MODEL_CLASSES or tokenizer_name not in _TOKENIZER_CLASSES:
            raise ConfigError(
                f"checkpoint asks for {model_name}/{tokenizer_name}; supported: "
                f"{sorted(_MODEL_CLASSES)} with their tokenizers"
            )
        local_only = Path(source).is_dir() or hub_offline()
        model_class = getattr(transformers, model_name)
        try:
            config = model_class.config_class.from_pretrained(
                source, num_labels=num_classes, local_files_only=local_only)
            tokenizer = getattr(transformers, tokenizer_name).from_pretrained(
                source, local_files_only=local_only)
        except OSError as exc:
            raise ModelNotFoundError(
                f"cannot load the config/tokenizer {source!r} the detoxify checkpoint needs: "
                f"{exc}. Pass huggingface_config_path= a local folder with them"
            ) from exc
        model = model_class(config)
        try:
            missing, unexpected = model.load_state_dict(loaded["state_dict"], strict=False)
        except (RuntimeError, TypeError, AttributeError, ValueError) as exc:
            # torch lists every mismatched tensor on a line of its own: name the first
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = lines[1] if len(lines) > 1 else lines[0] if lines else type(exc).__name__
            more = f" (and {len(lines) - 2} more)" if len(lines) > 2 else ""
            raise ConfigError(f"checkpoint weights do not fit {model_name}: {detail}{more}") \
                from exc
        missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
        if missing or unexpected:
            raise ConfigError(
                f"checkpoint weights do not fit {model_name}: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        model.eval()
        target = pick_device(device)
        if quantize:
            if target != "cpu":
                raise ConfigError("int8 dynamic quantisation runs on the CPU; use device='cpu'")
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                           dtype=torch.qint8)
        self.model = model.to(target)
        self._device = target
        self._tokenizer_lock = threading.Lock()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = token_limit(config, max_length)
        self._categories = tuple(_RENAME.get(c, c) for c in classes)

    @property
    def categories(self) -> tuple[str, ...]:
        """Category names, detoxify's standardised spelling."""
        return self._categories

    @property
    def device(self) -> str:
        """The device the model runs on."""
        return self._device

    def score(self, texts: Sequence[str]) -> Scores:
        """Sigmoid probability per category."""
        import torch

        out = np.empty((len(texts), len(self._categories)), dtype=np.float64)
        with torch.inference_mode():
            for idx in length_sorted_batches(texts, self.batch_size):
                with self._tokenizer_lock:  # fast tokenizers are not safe across threads
                    batch = self.tokenizer([texts[i] for i in idx], padding=True,
                                           truncation=True, max_length=self.max_length,
                                           return_tensors="pt")
                logits = self.model(**batch.to(self._device)).logits
                out[idx] = torch.sigmoid(logits.float()).cpu().numpy()
        return {category: out[:, k] for k, category in enumerate(self._categories)}
