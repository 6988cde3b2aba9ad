"""Training callbacks the zoo's command line uses."""

import os
import time

import keras


def save_atomically(model, path):
    """``model.save(path)`` through a temporary file in the same folder, renamed into place."""
    folder, name = os.path.split(path)
    staging = os.path.join(folder, f".{name}.{os.getpid()}.tmp.keras")
    try:
        model.save(staging)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves ``last.keras`` every epoch and ``best.keras`` on a new lowest ``monitor`` value
    (``monitor`` None: ``last.keras`` only).

    Keras' ``ModelCheckpoint`` writes the file in place, so an interrupted save leaves a broken
    checkpoint under the final name; this writes to a temporary file in the same folder and
    renames it over the old one (``os.replace`` is atomic).
    """

    def __init__(self, folder, monitor="val_loss"):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.best = float("inf")

    def on_train_begin(self, logs=None):
        """Removes temporaries a killed save left behind (``save_atomically``'s names)."""
        if os.path.isdir(self.folder):
            for name in os.listdir(self.folder):
                if name.startswith(".") and name.endswith(".tmp.keras"):
                    os.remove(os.path.join(self.folder, name))

    def _save(self, name):
        os.makedirs(self.folder, exist_ok=True)
        save_atomically(self.model, os.path.join(self.folder, name))

    def on_epoch_end(self, epoch, logs=None):
        self._save("last.keras")
        value = (logs or {}).get(self.monitor) if self.monitor else None
        if value is not None and value < self.best:
            self.best = value
            self._save("best.keras")


class TimeBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` of training time have passed (checked every batch).

    Validation time is not training time: it counts towards neither the budget nor the speed.
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
        spent = time.perf_counter() - self._test_start
        self.start += spent
        if hasattr(self, "first_batch_end"):
            self.first_batch_end += spent


class EpochSamples(keras.callbacks.Callback):
    """Writes ``epoch_NNN.png`` into ``folder`` after every epoch: a grid of ``model.sample``
    drawn with the same stateless seed each time, so the pictures show one set of latents
    evolving."""

    def __init__(self, folder, num_samples=64, temperature=1.0, seed=(0, 0)):
        super().__init__()
        self.folder = folder
        self.num_samples = num_samples
        self.temperature = temperature
        self.seed = list(seed)

    def on_epoch_end(self, epoch, logs=None):
        from zoo import plots

        os.makedirs(self.folder, exist_ok=True)
        images = self.model.sample(self.num_samples, temperature=self.temperature, seed=self.seed)
        path = os.path.join(self.folder, f"epoch_{epoch + 1:03d}.png")
        plots.sample_grid(images, path, title=f"epoch {epoch + 1}")
