"""`RunConfig`: everything a training run depends on, `zoo train`'s options one for one."""

import dataclasses
import os

from zoo.data import DataOptions
from zoo.models.checks import positive_number, whole_number
from zoo.training import precision
from zoo.training.distribute import STRATEGIES

LR_SCHEDULES = ("constant", "cosine")
# The training aids: options of `zoo train` and the benchmarks (`zoo.cli.add_training_aids`).
TRAINING_AIDS = ("lr_schedule", "warmup_steps", "decay_fraction", "clip_norm", "ema", "ema_every")
# What a resumed run must share with its start (`zoo.training.resume.fingerprint`): every
# field but these, which do not change what is trained ...
NOT_FINGERPRINTED = (
    "data_dir",
    "download",
    "strategy",
    "temperature",
    "out",
    "verbose",
    "export",
    "tensorboard",
    "restart",
    "command",
    "checkpoint_every",
)
# ... and, of the fields added after the first resumable release, only those set, so that the
# states saved before they existed still match.
FIRST_FINGERPRINT = (
    "model",
    "dataset",
    "train_split",
    "test_split",
    "image_size",
    "color",
    "num_levels",
    "classes",
    "labels_per_class",
    "batch_size",
    "steps_per_epoch",
    "epochs",
    "time_budget",
    "learning_rate",
    "mixed_precision",
    "seed",
    "options",
)


@dataclasses.dataclass(kw_only=True)
class RunConfig(DataOptions):
    """Everything a training run depends on; `zoo train`'s options, one for one. The data
    options are `zoo.data.DataOptions`' fields; keyword arguments all, but ``model``.

    ``learning_rate`` None uses the model's default; ``lr_schedule`` (``"constant"`` or
    ``"cosine"``, to 0 over each phase's steps or time budget, or over their last
    ``decay_fraction``) follows ``warmup_steps`` of linear warm-up
    (`zoo.training.schedule.LearningRateSchedule`); ``clip_norm`` clips each step's gradients to
    that global norm; ``ema`` (a momentum in (0, 1), e.g. 0.999) keeps Keras' exponential moving
    average of the weights, which validation, the saved model and the export use (one-optimizer
    models; batch norms' running statistics recomputed for it, `zoo.training.statistics`),
    updated every ``ema_every``-th step (`zoo.models.optimizers.FusedAdam`).
    ``options`` go to the model's constructor; ``steps_per_epoch`` repeats the training data to
    that many batches an epoch; ``epochs`` is per phase of the model's recipe; ``time_budget``
    stops training after that many seconds (shared between the phases as their epochs);
    ``checkpoint_every`` also checkpoints every that many steps within an epoch, which bounds
    what a SIGKILL loses (SIGTERM and SIGINT checkpoint the step they stop at anyway);
    ``out`` defaults to ``runs/MODEL-DATASET``. ``tensorboard`` writes TensorBoard logs into
    ``out/logs``: the scalars of every epoch (`keras.callbacks.TensorBoard`) and the model's
    pictures (`zoo.training.callbacks.PicturesToTensorBoard`). A run whose ``out`` holds an
    interrupted run with the same options resumes it (`zoo.training.resume`); ``restart``
    starts over.
    """

    model: str = dataclasses.field(kw_only=False)
    train_split: str = "train"
    test_split: str = "test"
    steps_per_epoch: int | None = None
    epochs: int = 30
    learning_rate: float | None = None
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    decay_fraction: float = 1.0
    clip_norm: float | None = None
    ema: float | None = None
    ema_every: int = 1
    mixed_precision: str = "auto"
    strategy: str = "none"
    time_budget: float | None = None
    checkpoint_every: int | None = None
    temperature: float = 0.8
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    out: str | None = None
    verbose: bool = False
    export: bool = True
    tensorboard: bool = True
    restart: bool = False
    command: str | None = None

    def check(self):
        """Raises ValueError naming the first option that makes no sense, before anything runs."""
        counts = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "labels_per_class": self.labels_per_class,
            "num_levels": self.num_levels,
            "checkpoint_every": self.checkpoint_every,
        }
        for name, value in counts.items():
            if value is not None or name in ("epochs", "batch_size"):
                whole_number(name, value, 2 if name == "num_levels" else 1)
        positives = {
            "learning_rate": self.learning_rate,
            "time_budget": self.time_budget,
            "temperature": self.temperature,
        }
        for name, value in positives.items():
            if value is not None or name == "temperature":
                positive_number(name, value)
        self._check_aids()
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        if self.strategy == "multi-worker" and self.time_budget is not None:
            raise ValueError(
                "time_budget cannot be used with strategy 'multi-worker': every worker must "
                "stop after the same step."
            )
        precision.check(self.mixed_precision)

    def _check_aids(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}."
            )
        whole_number("warmup_steps", self.warmup_steps, 0)
        positive_number("decay_fraction", self.decay_fraction)
        if self.decay_fraction > 1:
            raise ValueError(f"decay_fraction must be in (0, 1], got {self.decay_fraction!r}.")
        if self.decay_fraction != 1 and self.lr_schedule != "cosine":
            raise ValueError(
                f"decay_fraction {self.decay_fraction!r} needs lr_schedule 'cosine', "
                f"got {self.lr_schedule!r}."
            )
        if self.clip_norm is not None:
            positive_number("clip_norm", self.clip_norm)
        if self.ema is not None and (
            isinstance(self.ema, bool)
            or not isinstance(self.ema, int | float)
            or not 0 < self.ema < 1
        ):
            raise ValueError(f"ema must be a momentum in (0, 1), e.g. 0.999; got {self.ema!r}.")
        whole_number("ema_every", self.ema_every, 1)
        if self.ema_every != 1 and self.ema is None:
            raise ValueError(f"ema_every {self.ema_every!r} needs ema, the average's momentum.")

    def optimizer_options(self):
        """Keras optimizer arguments for ``clip_norm`` and ``ema`` (a model's
        ``optimizer_options``, `zoo.models.ZooModel.adam`)."""
        options = {}
        if self.clip_norm is not None:
            options["global_clipnorm"] = float(self.clip_norm)
        if self.ema is not None:
            options.update(use_ema=True, ema_momentum=float(self.ema))
            if self.ema_every != 1:
                options["ema_every"] = self.ema_every
        return options

    def output_folder(self):
        name = os.path.basename(os.path.normpath(str(self.dataset)))
        return self.out or os.path.join("runs", f"{self.model}-{name}")
