"""`LearningRateSchedule`: warm-up, then constant or cosine decay, by steps or by time."""

import keras
import numpy as np


class LearningRateSchedule(keras.callbacks.Callback):
    """Linear warm-up over ``warmup_steps`` steps, then (``kind="cosine"``) cosine decay to 0
    over the last ``decay_fraction`` of the phase; ``kind="constant"`` holds the rate after the
    warm-up.

    ```none
    rate(p) = base * min(1, step / warmup_steps) * (1 + cos(pi * d)) / 2   (cosine)
    d = max(0, p - (1 - decay_fraction)) / decay_fraction
    p = max(step / total_steps, seconds / budget)
    ```

    ``decay_fraction=1`` decays over the whole phase; a smaller one holds the rate, then cools
    down at the end (warm-up / stable / decay, Hägele et al. 2024, "Scaling Laws and
    Compute-Optimal Training Beyond Fixed Training Durations"), which keeps the high rate for
    most of a time budget.

    Keras' own schedules (`keras.optimizers.schedules.CosineDecay`) count steps only; a run
    with a time budget does not know its step count in advance, so here the progress ``p`` is
    whichever is further along, the steps or the training time (``timer``, a `TimeBudget`, whose
    ``elapsed`` adds to ``spent`` seconds of ``budget``). The step is the first optimizer's
    ``iterations`` (restored with a checkpoint), so a resumed run goes on where it stopped.
    Sets every optimizer in ``optimizers`` (a GAN's two), each from the rate it had when the
    callback was made; logs ``learning_rate`` every epoch.
    """

    def __init__(
        self,
        optimizers,
        kind="cosine",
        warmup_steps=0,
        total_steps=None,
        decay_fraction=1.0,
        timer=None,
        spent=0.0,
        budget=float("inf"),
    ):
        super().__init__()
        self.optimizers = list(optimizers)
        self.base = [float(keras.ops.convert_to_numpy(o.learning_rate)) for o in self.optimizers]
        self.kind = kind
        self.warmup_steps = int(warmup_steps)
        self.total_steps = total_steps
        self.decay_fraction = float(decay_fraction)
        self.timer, self.spent, self.budget = timer, float(spent), float(budget)

    def factor(self, step, seconds=0.0):
        """The multiple of the base rate at optimizer step ``step`` after ``seconds``."""
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "constant":
            return warm
        progress = step / self.total_steps if self.total_steps else 0.0
        progress = min(1.0, max(progress, seconds / self.budget))
        decay = max(0.0, progress - (1.0 - self.decay_fraction)) / self.decay_fraction
        return warm * 0.5 * (1.0 + np.cos(np.pi * decay))

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.optimizers[0].iterations.numpy())
        seconds = self.spent + (self.timer.elapsed if self.timer is not None else 0.0)
        factor = self.factor(step, seconds)
        for optimizer, base in zip(self.optimizers, self.base, strict=True):
            optimizer.learning_rate = base * factor

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.optimizers[0].learning_rate)
            )
