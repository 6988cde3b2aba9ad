# zoo.training's names; __init__.py imports each on first use (lazy_loader reads this).
from .config import (
    LR_SCHEDULES as LR_SCHEDULES,
    TRAINING_AIDS as TRAINING_AIDS,
    RunConfig as RunConfig,
)
from .errors import TrainingDiverged as TrainingDiverged
from .lock import FolderInUse as FolderInUse
from .preemption import Interrupted as Interrupted
from .runner import batches_per_pass as batches_per_pass, run as run
