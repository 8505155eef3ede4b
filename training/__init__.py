"""Fine-tuning: one loop with callbacks, in ``clean`` and ``adversarial`` modes (DP is planned).

Heavy imports (torch, transformers) happen inside the modules, not here.
"""

from training.config import TrainConfig

__all__ = ["TrainConfig"]
