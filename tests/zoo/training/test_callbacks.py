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


class EpochLogs(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


def fit(*extra, epochs=3, steps=4, verbose=0):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((steps * 8, 2), np.float32), np.ones((steps * 8, 1), np.float32)
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=epochs,
        validation_data=(x, y),
        verbose=verbose,
        callbacks=list(extra),
    )


def test_time_budget_counts_training_batches_not_validation_or_epoch_ends():
    clock = Clock()
    budget = callbacks.TimeBudget(clock=clock)
    batches = Spend(clock, "on_train_batch_end", 0.125)  # before the budget reads the clock
    logged = EpochLogs()
    fit(
        batches,
        budget,
        Spend(clock, "on_epoch_end", 0.5),
        Spend(clock, "on_test_end", 0.5),
        logged,
    )
    assert [(e["steps"], e["seconds_per_step"]) for e in logged.logs] == [(4, 0.125)] * 3
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


def test_an_epoch_the_budget_stops_shows_the_steps_it_trained_and_their_time(capsys):
    """The line and the logs count the steps trained (3 of 4; in a resumed epoch, with the 5
    done before) and time them alone (not validation, not the epoch's end), not Keras' ``4/4
    - 1s - 250ms/step``."""
    clock = Clock()
    budget = callbacks.TimeBudget(0.3, clock=clock, first_step=5)
    logged = EpochLogs()
    spend = [Spend(clock, "on_train_batch_end", 0.125), Spend(clock, "on_test_end", 0.5)]
    fit(spend[0], budget, spend[1], logged, callbacks.PhaseProgress(7), epochs=2, verbose=2)
    (logs,) = logged.logs
    assert logs["steps"] == 8 and logs["seconds_per_step"] == 0.125, logs
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/7" and lines[1].startswith(
        "8/9 steps (time budget) - 0.4s - 125ms/step - loss: "
    ), lines
    assert " - steps" not in lines[1] and "seconds_per_step" not in lines[1]


def test_the_epoch_line_gives_skipped_steps_as_a_count():
    line = callbacks.epoch_line(
        938, 938, 1588.1, 1.6931, {"loss": 0.25, "skipped_steps": 0.0, "val_loss": 2e-5}
    )
    assert line == (
        "938/938 steps - 1588s - 1.69s/step - loss: 0.2500 - skipped_steps: 0 - "
        "val_loss: 2.0000e-05"
    )
