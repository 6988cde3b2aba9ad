"""Training callbacks the zoo's command line uses."""

import os
import time

import keras


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves ``last.keras`` every epoch and ``best.keras`` on a new best ``monitor`` value.

    Keras' ``ModelCheckpoint`` writes the file in place, so an interrupted save leaves a broken
    checkpoint under the final name; this writes to a temporary file in the same folder and
    renames it over the old one (``os.replace`` is atomic).
    """

    def __init__(self, folder, monitor="val_loss"):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.best = float("inf")

    def _save(self, name):
        os.makedirs(self.folder, exist_ok=True)
        final = os.path.join(self.folder, name)
        staging = os.path.join(self.folder, f".{name}.{os.getpid()}.tmp.keras")
        try:
            self.model.save(staging)
            os.replace(staging, final)
        finally:
            if os.path.exists(staging):
                os.remove(staging)

    def on_epoch_end(self, epoch, logs=None):
        self._save("last.keras")
        value = (logs or {}).get(self.monitor)
        if value is not None and value < self.best:
            self.best = value
            self._save("best.keras")


class TimeBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` of training time have passed (checked every batch).

    Also measures steady-state speed: ``steady_batches`` batches in ``steady_seconds``, counted
    from the end of the first batch, so that tracing the train step is left out.
    """

    def __init__(self, seconds=float("inf")):
        super().__init__()
        self.seconds = seconds
        self.batches = 0
        self.elapsed = 0.0
        self.steady_batches = 0
        self.steady_seconds = 0.0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.batches += 1
        if self.batches == 1:
            self.first_batch_end = now
        else:
            self.steady_batches += 1
            self.steady_seconds = now - self.first_batch_end
        self.elapsed = now - self.start
        if self.elapsed >= self.seconds:
            self.model.stop_training = True

    def on_test_begin(self, logs=None):
        self._test_start = time.perf_counter()

    def on_test_end(self, logs=None):
        # Validation time is not training time.
        if hasattr(self, "first_batch_end"):
            self.first_batch_end += time.perf_counter() - self._test_start
