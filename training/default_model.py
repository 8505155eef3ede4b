"""The default assistant: MiniLM fine-tuned on the bundled intents, trained once and cached."""

from __future__ import annotations

import json
from pathlib import Path

from guard.cache import cache_root
from guard.data import load_splits
from guard.models.source import default_backbone_path
from guard.provenance import sha256_model_dir, sha256_text
from training.checkpoint import read_manifest
from training.config import TrainConfig


def default_model_dir(config: TrainConfig | None = None) -> Path:
    """Cache folder of the default model for ``config`` (defaults: :class:`TrainConfig` ()).

    The folder name hashes the configuration, the bundled data and the backbone weights, so a
    change to any of them trains a new model instead of reusing a stale one.
    """
    config = config or TrainConfig()
    key = sha256_text(json.dumps({
        "config": config.model_dump(),
        "data": load_splits(config.data).sha256,
        "backbone": sha256_model_dir(default_backbone_path()),
    }, sort_keys=True))
    return cache_root() / "models" / f"default-{key[:16]}"


def ensure_default_model(*, progress: bool = True, config: TrainConfig | None = None) -> Path:
    """The cached default model folder, training it first if it is not there yet.

    Args:
        progress: Show the training progress bar.
        config: Training configuration (default: :class:`TrainConfig` defaults).
    """
    from training.pipeline import fine_tune

    config = config or TrainConfig()
    folder = default_model_dir(config)
    if read_manifest(folder) is None:
        fine_tune(config, out=folder, progress=progress)
    return folder
