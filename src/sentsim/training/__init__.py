"""Training: one loop (schedule, evaluation, checkpoints, cards) for both kinds of model."""

from sentsim.training.loop import TrainReport, TrainSettings, fit

__all__ = ["TrainReport", "TrainSettings", "fit"]
