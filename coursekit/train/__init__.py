"""Training: the run configuration, and (with the training-engine issue) the loop around it."""

from coursekit.train.config import TrainConfig

__all__ = ["TrainConfig"]
