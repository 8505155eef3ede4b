"""Model adapters: Hugging Face classifiers and generators behind the :mod:`guard.types` protocols.

Imports of torch and transformers happen when an adapter module is imported, not on
``import guard``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from guard.lazy import lazy_getattr

if TYPE_CHECKING:
    from guard.models.classifier import HFClassifier
    from guard.models.generator import HFGenerator
    from guard.models.responder import Responder, Response
    from guard.models.source import ModelSource, default_backbone_path, resolve_model
    from guard.models.tutor import Persona, TutorGenerator

__all__ = [
    "HFClassifier",
    "HFGenerator",
    "ModelSource",
    "Persona",
    "Responder",
    "Response",
    "TutorGenerator",
    "default_backbone_path",
    "resolve_model",
]

__getattr__ = lazy_getattr("guard.models", {
    "HFClassifier": "guard.models.classifier",
    "HFGenerator": "guard.models.generator",
    "Responder": "guard.models.responder",
    "Response": "guard.models.responder",
    "ModelSource": "guard.models.source",
    "default_backbone_path": "guard.models.source",
    "resolve_model": "guard.models.source",
    "Persona": "guard.models.tutor",
    "TutorGenerator": "guard.models.tutor",
})
