"""The one training run every zoo model goes through: `run` of a `RunConfig` (`runner`, in
named steps), with its resume state (`resume`), callbacks (`callbacks`, `schedule`), dtype
policy (`precision`) and ``tf.distribute`` strategy (`distribute`)."""

from zoo.training.callbacks import TrainingDiverged
from zoo.training.config import LR_SCHEDULES, TRAINING_AIDS, RunConfig
from zoo.training.runner import batches_per_pass, run

__all__ = [
    "LR_SCHEDULES",
    "TRAINING_AIDS",
    "RunConfig",
    "TrainingDiverged",
    "batches_per_pass",
    "run",
]
