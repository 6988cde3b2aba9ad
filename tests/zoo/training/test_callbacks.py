import keras
import numpy as np

from zoo.training import callbacks


class Clock:
    """A clock that moves only when a callback spends time (`Spend`): the test does not depend
    on how fast this machine traces and runs the steps."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Spend(keras.callbacks.Callback):
    """Spends ``seconds`` on ``clock`` in the hook ``hook``."""

    def __init__(self, clock, hook, seconds):
        super().__init__()

        def spend(*args, **kwargs):
            clock.now += seconds

        setattr(self, hook, spend)


def fit(*extra, epochs=3, steps=4):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((steps * 8, 2), np.float32), np.ones((steps * 8, 1), np.float32)
    model.fit(
        x, y, batch_size=8, epochs=epochs, validation_data=(x, y), verbose=0, callbacks=list(extra)
    )


def test_time_budget_counts_training_batches_not_validation_or_epoch_ends():
    clock = Clock()
    budget = callbacks.TimeBudget(clock=clock)
    batches = Spend(clock, "on_train_batch_end", 0.125)  # before the budget reads the clock
    fit(
        batches,
        budget,
        Spend(clock, "on_epoch_end", 0.5),
        Spend(clock, "on_test_end", 0.5),
    )
    assert clock.now == 12 * 0.125 + 3 * (0.5 + 0.5)
    # 12 batches of 0.125 s; validation and epoch ends (checkpoints, pictures) left out.
    assert budget.elapsed == 1.5 and budget.batches == 12
    # From the end of the first batch: its tracing is left out of the speed.
    assert budget.steady_batches == 11 and budget.steady_seconds == 11 * 0.125


def test_time_budget_stops_after_the_batch_that_spends_it():
    clock = Clock()
    budget = callbacks.TimeBudget(0.3, clock=clock)
    fit(Spend(clock, "on_train_batch_end", 0.125), budget, epochs=5)
    assert budget.batches == 3 and budget.elapsed == 0.375
