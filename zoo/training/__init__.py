"""The one training run every zoo model goes through: `run` of a `RunConfig` (`runner`, in
named steps), with its resume state (`resume`), callbacks (`callbacks`, `schedule`), dtype
policy (`precision`), ``tf.distribute`` strategy (`distribute`), its hold on its output folder
(`lock`) and its stop on SIGTERM / SIGINT (`preemption`)."""

from zoo.training.callbacks import TrainingDiverged
from zoo.training.config import LR_SCHEDULES, TRAINING_AIDS, RunConfig
from zoo.training.lock import FolderInUse
from zoo.training.preemption import Interrupted
from zoo.training.runner import batches_per_pass, run

__all__ = [
    "LR_SCHEDULES",
    "TRAINING_AIDS",
    "FolderInUse",
    "Interrupted",
    "RunConfig",
    "TrainingDiverged",
    "batches_per_pass",
    "run",
]
