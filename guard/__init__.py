"""metaverse-guard: evaluation, hardening and output guarding for virtual-world text models.

``import guard`` is cheap: it imports no torch, transformers, textattack or opacus, touches no
network and changes no global state. Heavy parts load when first used.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from guard.errors import (
    ConfigError,
    DataError,
    GuardCheckError,
    GuardError,
    MissingExtraError,
    ModelNotFoundError,
    UnknownNameError,
    UsageError,
)
from guard.lazy import lazy_getattr

if TYPE_CHECKING:
    from guard.batching import MicroBatcher
    from guard.output_guard import GuardDecision, GuardedGenerator, OutputGuard
    from guard.policy import CategoryRule, Policy

try:
    __version__ = version("metaverse-guard")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# The guard's classes load on first use, so `import guard` stays cheap.
__getattr__ = lazy_getattr("guard", {
    "OutputGuard": "guard.output_guard",
    "GuardDecision": "guard.output_guard",
    "GuardedGenerator": "guard.output_guard",
    "MicroBatcher": "guard.batching",
    "Policy": "guard.policy",
    "CategoryRule": "guard.policy",
})


__all__ = [
    "CategoryRule",
    "ConfigError",
    "DataError",
    "GuardCheckError",
    "GuardDecision",
    "GuardError",
    "GuardedGenerator",
    "MicroBatcher",
    "MissingExtraError",
    "ModelNotFoundError",
    "OutputGuard",
    "Policy",
    "UnknownNameError",
    "UsageError",
    "__version__",
]
