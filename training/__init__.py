"""Fine-tuning loops. This issue's mode is ``clean``; adversarial and DP modes build on the loop.

Heavy imports (torch, transformers) happen inside the modules, not here.
"""

from training.config import TrainConfig

__all__ = ["TrainConfig"]
