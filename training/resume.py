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

from guard.atomic import write_dir_atomic
from guard.errors import ConfigError

if TYPE_CHECKING:
    import torch

STATE_FILE = "state.json"
WEIGHTS_FILE = "weights.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
#: Layout version of the state folder; bump on incompatible changes.
STATE_SCHEMA_VERSION = 2


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

    Raises:
        ConfigError: If the folder is missing, incomplete or from another layout version.
    """
    import torch
    from safetensors.torch import load_file

    state_file = folder / STATE_FILE
    if not state_file.is_file():
        raise ConfigError(f"no resumable training state at {folder}; it is written after each "
                          "epoch of a run that has not finished yet")
    try:
        meta = json.loads(state_file.read_text(encoding="utf-8"))
        weights = load_file(str(folder / WEIGHTS_FILE))
        optimizer = torch.load(folder / OPTIMIZER_FILE, weights_only=True, map_location="cpu")
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"the training state at {folder} cannot be read ({exc}); delete it "
                          "and train from the start") from exc
    if meta.get("schema_version") != STATE_SCHEMA_VERSION:
        raise ConfigError(f"the training state at {folder} has layout version "
                          f"{meta.get('schema_version')}; this version reads "
                          f"{STATE_SCHEMA_VERSION}. Train from the start")
    return TrainingState(meta=meta, weights=weights, optimizer=optimizer)
