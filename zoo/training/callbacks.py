"""The training run's callbacks: atomic checkpoints, the guard against runs of skipped steps,
the time budget, and the model's pictures in TensorBoard."""

import os
import shutil
import tempfile
import time

import keras

from zoo.models.checks import non_finite_variables
from zoo.storage import writing
from zoo.training.preemption import Interrupted, signal_name

KEPT = "the previous checkpoint is intact"


def save_atomically(model, path, kept=None):
    """``model.save(path)`` through a temporary file in the same folder, renamed into place; a
    file system error is a `zoo.storage.WriteFailed` naming ``path`` (``kept``: what it left
    intact), and leaves no temporary file."""
    folder, name = os.path.split(path)
    staging = os.path.join(folder, f".{name}.{os.getpid()}.tmp.keras")
    try:
        with writing(path, kept):
            model.save(staging)
            os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


def _link_atomically(folder, source, name):
    """``folder/name`` becomes the file ``folder/source`` (a hard link; a copy where links are
    not supported), replacing the old ``name`` in one step."""
    staging = os.path.join(folder, f".{name}.{os.getpid()}.tmp.keras")
    try:
        with writing(os.path.join(folder, name), f"the previous {name} is intact"):
            try:
                os.link(os.path.join(folder, source), staging)
            except OSError:
                shutil.copyfile(os.path.join(folder, source), staging)
            os.replace(staging, os.path.join(folder, name))
    finally:
        if os.path.exists(staging):
            os.remove(staging)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the model (weights and optimizer state) after every epoch as
    ``resume-NNNN.keras``, which ``last.keras`` then names, as does ``best.keras`` on a new lowest
    ``monitor`` value (``monitor`` None: no ``best.keras``); then calls
    ``on_saved(epoch, logs, file_name, best)`` (`zoo.training.run` records its resume
    state there) and removes older ``resume-*`` files.

    Within an epoch it saves ``resume-NNNN-SSSSSS.keras`` (``NNNN`` epochs and ``SSSSSS`` steps
    done) every ``every`` steps (None: never), and after the step in progress when
    ``preemption`` (a `zoo.training.preemption.Preemption`) holds a pending signal, then calls
    ``on_step_saved(epochs_done, step, file_name)``; after a signal it raises
    `zoo.training.preemption.Interrupted` (at the end of the epoch when the signal comes in its
    last step or its validation, which the epoch's checkpoint then keeps).
    ``steps_per_epoch``: the epoch's length; ``first_step``: the steps of the next epoch done
    before this ``fit`` (a run resumed within an epoch).

    Keras' ``ModelCheckpoint`` writes the file in place, so an interrupted save leaves a broken
    checkpoint under the final name; here every file is complete before it is renamed into place
    (``os.replace`` is atomic), so a kill, or a full disk, leaves the previous one. A model with
    non-finite weights is not saved.
    """

    def __init__(
        self,
        folder,
        monitor="val_loss",
        best=float("inf"),
        on_saved=None,
        every=None,
        preemption=None,
        on_step_saved=None,
        steps_per_epoch=None,
    ):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.best = best
        self.on_saved = on_saved
        self.every = every
        self.preemption = preemption
        self.on_step_saved = on_step_saved
        self.steps_per_epoch = steps_per_epoch
        self.first_step = 0

    def on_train_begin(self, logs=None):
        """Removes temporaries a killed save left behind (``save_atomically``'s names)."""
        if os.path.isdir(self.folder):
            for name in os.listdir(self.folder):
                if name.startswith(".") and name.endswith(".tmp.keras"):
                    os.remove(os.path.join(self.folder, name))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step, self.first_step = epoch, self.first_step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        signum = self.preemption.pending if self.preemption is not None else None
        if self.steps_per_epoch and self.step >= self.steps_per_epoch:
            return  # the epoch's own checkpoint follows
        if signum is None and not (self.every and self.step % self.every == 0):
            return
        saved = self._save(f"resume-{self.epoch:04d}-{self.step:06d}.keras")
        if saved and self.on_step_saved is not None:
            self.on_step_saved(self.epoch, self.step, saved)
        if saved:
            self._remove_others(saved)
        if signum is not None:
            where = f"in epoch {self.epoch + 1} after step {self.step}"
            raise Interrupted(self._stopped(signum, where, saved), signum)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        name = self._save(f"resume-{epoch + 1:04d}.keras")
        if name is not None:
            _link_atomically(self.folder, name, "last.keras")
            value = logs.get(self.monitor) if self.monitor else None
            if value is not None and value < self.best:
                self.best = float(value)
                _link_atomically(self.folder, name, "best.keras")
            if self.on_saved is not None:
                self.on_saved(epoch, logs, name, self.best)
            self._remove_others(name)
        signum = self.preemption.pending if self.preemption is not None else None
        if signum is not None:
            raise Interrupted(self._stopped(signum, f"after epoch {epoch + 1}", name), signum)

    def _save(self, name):
        """Saves ``name``; returns it, or None when the weights are not finite."""
        bad = non_finite_variables(self.model)
        if bad:
            print(f"not saving {name}: non-finite weights in {', '.join(bad[:3])}")
            return None
        os.makedirs(self.folder, exist_ok=True)
        save_atomically(self.model, os.path.join(self.folder, name), KEPT)
        return name

    def _remove_others(self, name):
        for other in os.listdir(self.folder):
            if other.startswith("resume-") and other != name:
                os.remove(os.path.join(self.folder, other))

    def _stopped(self, signum, where, saved):
        kept = (
            f"saved {os.path.join(self.folder, saved)}"
            if saved
            else "weights not finite, the last checkpoint kept"
        )
        return (
            f"interrupted by {signal_name(signum)} {where}: {kept}; run the same command again "
            "to resume there"
        )


class PhaseProgress(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, counting epochs up to ``last_epoch`` (a ``fit`` that only finishes
    an epoch left part-done still shows ``Epoch 3/30``, not ``Epoch 3/3``), ending each epoch
    with the steps it trained and their own time (`TimeBudget`'s ``steps`` and
    ``seconds_per_step``).

    Keras' own end-of-epoch line counts the planned steps and divides the epoch's time,
    validation included, by them: a run that its time budget stopped after 384 of 938 steps
    printed ``938/938 - 654s - 697ms/step``. This one prints ``384/938 steps (time budget) -
    650s - 1.69s/step`` and the skipped steps as a count; a progress bar (a terminal) ends at
    the step it reached.
    """

    def __init__(self, last_epoch):
        super().__init__()
        self.last_epoch = last_epoch

    def set_params(self, params):
        super().set_params({**params, "epochs": self.last_epoch})

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        steps, per_step = logs.pop("steps", None), logs.pop("seconds_per_step", None)
        if not steps or self.target is None:
            return super().on_epoch_end(epoch, logs)
        steps = round(steps)
        planned = self.target + steps - self.seen  # the steps before a resume count too
        if self.verbose == 1:
            target, self.target = self.target, self.seen  # ends the bar where it stopped
            self.progbar.target = self.seen
            super().on_epoch_end(epoch, logs)
            self.target = target
        elif self.verbose == 2:
            print(epoch_line(steps, planned, self.seen * per_step, per_step, logs), flush=True)


def epoch_line(steps, planned, seconds, seconds_per_step, logs):
    """``384/938 steps (time budget) - 650s - 1.69s/step - loss: 1.2345 - skipped_steps: 0``:
    ``steps`` trained of ``planned``, in ``seconds`` of training (of the steps timed in this
    process: a resumed epoch's first steps ran before it)."""
    stopped = " (time budget)" if steps < planned else ""
    per = f"{seconds_per_step:.2f}s" if seconds_per_step >= 1 else f"{1e3 * seconds_per_step:.0f}ms"
    took = f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    parts = [f"{steps}/{planned} steps{stopped}", took, f"{per}/step"]
    for key, value in logs.items():
        if key.endswith("skipped_steps"):
            parts.append(f"{key}: {value:g}")
        elif isinstance(value, int | float):
            parts.append(f"{key}: {value:.4f}" if abs(value) >= 1e-3 else f"{key}: {value:.4e}")
    return " - ".join(parts)


class SkippedStepsGuard(keras.callbacks.Callback):
    """Stops training after ``patience`` consecutive skipped train steps, across epochs, or an
    epoch whose every step was skipped (the ``skipped_steps`` a zoo model's train step logs: a
    non-finite loss or gradient, see `tfflows.minimize`).

    A few in a row are normal early in float16 training, while the loss scale comes down; a
    long run of them means the run has diverged or the data holds NaN / inf. ``failure`` then
    says what happened (`zoo.training.run` raises `TrainingDiverged` with it).
    """

    def __init__(self, patience=25):
        super().__init__()
        self.patience = patience
        self.in_a_row = 0
        self.failure = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.seen, self.steps = epoch, 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        # The epoch's running count; under tf.distribute a batch's log may show a replica's
        # share of a step, so any rise counts.
        skipped = float((logs or {}).get("skipped_steps", 0.0))
        self.in_a_row = self.in_a_row + 1 if skipped > self.seen + 1e-6 else 0
        self.seen, self.steps = skipped, self.steps + 1
        if self.in_a_row >= self.patience:
            self._fail(f"{self.in_a_row} steps in a row had")

    def on_epoch_end(self, epoch, logs=None):
        skipped = float((logs or {}).get("skipped_steps", 0.0))
        if self.failure is None and self.steps and skipped > self.steps - 0.5:
            self._fail(f"all {self.steps} steps of the epoch had")

    def _fail(self, what):
        self.failure = (
            f"training stopped in epoch {self.epoch + 1}: {what} a non-finite loss or gradient "
            "and were skipped; lower the learning rate or look for NaN / inf in the data"
        )
        self.model.stop_training = True


class TimeBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` of training time have passed (checked every batch).

    Training time is the time of the epochs' training batches: from the start of each epoch
    to its validation, or to this callback's ``on_epoch_end`` (put it first among the callbacks,
    so that checkpoints, pictures and logs written at the end of an epoch fall outside). It
    bounds the budget and the speed. Also measures steady-state speed: ``steady_batches``
    batches in ``steady_seconds``, counted from the end of the first batch, so that tracing the
    train step is left out; and logs at each epoch's end the ``steps`` it trained (with
    ``first_step`` steps done before a resume, in the first epoch) and their
    ``seconds_per_step`` (training time over the steps trained here). ``clock``: the time in
    seconds, `time.perf_counter` by default (a test gives its own).
    """

    def __init__(self, seconds=float("inf"), clock=time.perf_counter, first_step=0):
        super().__init__()
        self.seconds = seconds
        self.clock = clock
        self.first_step = first_step
        self.epoch_batches, self.epoch_start, self.epoch_seconds = 0, None, None
        self.batches = 0
        self.elapsed = 0.0
        self.steady_batches = 0
        self.steady_seconds = 0.0

    def on_train_begin(self, logs=None):
        self.start = self.clock()
        self._paused = None

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        self.batches += 1
        self.epoch_batches += 1
        if self.batches == 1:
            self.first_batch_end = now
        else:
            self.steady_batches += 1
            self.steady_seconds = now - self.first_batch_end
        self.elapsed = now - self.start
        if self.elapsed >= self.seconds:
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        self._pause()

    def on_epoch_end(self, epoch, logs=None):
        self._pause()
        if logs is not None and self.epoch_batches:
            # A float, as every logged figure (a resume rewrites history.csv from floats).
            logs["steps"] = float(self.first_step + self.epoch_batches)
            logs["seconds_per_step"] = self.epoch_seconds / self.epoch_batches
        self.first_step = 0

    def on_epoch_begin(self, epoch, logs=None):
        if self._paused is not None:
            paused = self.clock() - self._paused
            self.start += paused
            if hasattr(self, "first_batch_end"):
                self.first_batch_end += paused
            self._paused = None
        self.epoch_batches, self.epoch_start, self.epoch_seconds = 0, self.clock(), None

    def _pause(self):
        if self._paused is None:
            self._paused = self.clock()
            if self.epoch_seconds is None and self.epoch_start is not None:
                self.epoch_seconds = self._paused - self.epoch_start


class PicturesToTensorBoard(keras.callbacks.Callback):
    """After every epoch, the model's own pictures (`zoo.models.ZooModel.write_artifacts`: sample
    grids, reconstructions, confusion matrices, whatever the model draws at the end of a run)
    as TensorBoard image summaries in ``log_dir``, one series per picture named after its file,
    stepped by epoch like the scalars of `keras.callbacks.TensorBoard`. The pictures are drawn
    on ``data`` (the held-out set) with a fixed ``seed``, so one series shows the same latents
    evolving."""

    def __init__(self, log_dir, data, seed=0, temperature=1.0):
        super().__init__()
        self.log_dir, self.data = log_dir, data
        self.seed, self.temperature = seed, temperature
        self.writer = None

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        with tempfile.TemporaryDirectory() as scratch:
            names = self.model.write_artifacts(
                scratch, self.data, seed=self.seed, temperature=self.temperature
            )
            with self.writer.as_default(step=epoch):
                for name in names:
                    if name.endswith(".png"):
                        image = tf.io.decode_png(tf.io.read_file(os.path.join(scratch, name)))
                        tf.summary.image(name.removesuffix(".png"), image[None])
            self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()
