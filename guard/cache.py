"""Where metaverse-guard keeps what it builds once and reuses: the default model, NLTK data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$GUARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/metaverse-guard``, else ``~/.cache/...``."""
    if explicit := os.environ.get("GUARD_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "metaverse-guard"
