"""metaverse-guard: evaluation, hardening and output guarding for virtual-world text models.

``import guard`` is cheap: it imports no torch, transformers, textattack or opacus, touches no
network and changes no global state. Heavy parts load when first used.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from guard.errors import (
    ConfigError,
    DataError,
    GuardError,
    MissingExtraError,
    ModelNotFoundError,
    UnknownNameError,
)

try:
    __version__ = version("metaverse-guard")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "ConfigError",
    "DataError",
    "GuardError",
    "MissingExtraError",
    "ModelNotFoundError",
    "UnknownNameError",
    "__version__",
]
