"""Resumable training state: written atomically at epoch ends, read back with ``weights_only``.

A state folder holds ``weights.safetensors`` (current and best weights), ``optimizer.pt``
(optimiser and scheduler state, loaded with ``torch.load(weights_only=True)``) and
``state.json`` (config, epoch counters, history, random-generator states, callback and privacy
accountant state; random-generator states per process of a data-parallel run). Nothing in it is
unpickled as arbitrary objects.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from guard.atomic import recover_dir, remove_dir, write_dir_atomic
from guard.errors import ConfigError

if TYPE_CHECKING:
    import torch

STATE_FILE = "state.json"
WEIGHTS_FILE = "weights.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
#: Layout version of the state folder; bump on incompatible changes.
STATE_SCHEMA_VERSION = 3


def resume_dir_for(out: Path) -> Path:
    """The state folder that goes with checkpoint folder ``out``: ``<out>.resume`` beside it."""
    return out.with_name(out.name + ".resume")


@dataclass(frozen=True)
class TrainingState:
    """What a state folder holds, loaded.

    Attributes:
        meta: The parsed ``state.json``.
        weights: Tensors by name; ``model.*`` are the current weights, ``best.*`` the best ones.
        optimizer: Optimiser and scheduler state dicts (and any other tensors saved beside them).
    """

    meta: dict[str, Any]
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]


def python_numpy_rng_state() -> dict[str, Any]:
    """The global Python and NumPy random states, as JSON."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, np.asarray(keys).tolist(), pos, has_gauss, cached]}


def restore_python_numpy_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`python_numpy_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_training_state(folder: Path, *, meta: dict[str, Any],
                        weights: dict[str, torch.Tensor], optimizer: dict[str, Any]) -> None:
    """Write a state folder all at once (a crash mid-write leaves the previous one intact)."""
    import torch
    from safetensors.torch import save_file

    with write_dir_atomic(folder) as staging:
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()},
                  str(staging / WEIGHTS_FILE))
        torch.save(optimizer, staging / OPTIMIZER_FILE)
        record = {"schema_version": STATE_SCHEMA_VERSION, **meta}
        (staging / STATE_FILE).write_text(json.dumps(record) + "\n", encoding="utf-8")


def load_training_state(folder: Path) -> TrainingState:
    """Read a state folder written by :func:`save_training_state`.

    A folder whose replacement was killed midway is restored first (see
    :func:`guard.atomic.recover_dir`). ``optimizer.pt`` is read with
    ``torch.load(weights_only=True)``: a file holding anything but tensors and plain
    containers is refused, never unpickled.

    Raises:
        ConfigError: If the folder is missing, incomplete, damaged, holds pickled objects, or
            is from another layout version.
    """
    recover_dir(folder)
    state_file = folder / STATE_FILE
    if not state_file.is_file():
        raise ConfigError(f"no resumable training state at {folder}; it is written after each "
                          "epoch of a run that has not finished yet")
    restart = f"delete {folder} and train from the start"
    try:
        meta = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the training state file {state_file} cannot be read ({exc}); "
                          f"{restart}") from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"the training state file {state_file} is not a JSON object; {restart}")
    if meta.get("schema_version") != STATE_SCHEMA_VERSION:
        raise ConfigError(f"the training state at {folder} has layout version "
                          f"{meta.get('schema_version')}; this version reads "
                          f"{STATE_SCHEMA_VERSION}. Train from the start")
    return TrainingState(meta=meta, weights=_load_weights(folder / WEIGHTS_FILE, restart),
                         optimizer=_load_tensors(folder / OPTIMIZER_FILE, restart))


def discard_training_state(folder: Path) -> None:
    """Delete a state folder once its run is complete; a kill midway leaves it whole or gone."""
    remove_dir(folder)


def _damaged(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    return "is empty" if size == 0 else "is truncated or damaged"


def _load_weights(path: Path, restart: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"the resume weights file {path} {_damaged(path)}: it is not a "
                          f"readable safetensors file; {restart}") from exc


def _load_tensors(path: Path, restart: str) -> dict[str, Any]:
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch's notes on a refused pickle's protocol
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            loaded = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        # torch's own message advises weights_only=False, i.e. running the file's code: the
        # one thing a tampered state must never get. Say what is wrong instead.
        raise ConfigError(
            f"the resume state {path} is not a plain tensor checkpoint: it holds pickled Python "
            f"objects beyond tensors and plain containers, and it is refused (loading them could "
            f"run arbitrary code); {restart}") from None
    except Exception as exc:  # whatever a damaged, untrusted file makes the parser raise
        raise ConfigError(f"the resume state {path} {_damaged(path)}: it is not a torch "
                          f"checkpoint ({type(exc).__name__}); {restart}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"the resume state {path} holds a {type(loaded).__name__}, not the "
                          f"optimiser and scheduler states; {restart}")
    return loaded
