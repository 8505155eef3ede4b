"""Fine-tuning: one loop with callbacks, in ``clean``, ``adversarial`` and ``dp`` modes.

Heavy imports (torch, transformers) happen inside the modules, not here.
"""

from training.config import TrainConfig

__all__ = ["TrainConfig"]
