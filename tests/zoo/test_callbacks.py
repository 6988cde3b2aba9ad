import time

import keras
import numpy as np

from zoo import callbacks


class Sleep(keras.callbacks.Callback):
    def __init__(self, hook, seconds):
        super().__init__()
        setattr(self, hook, lambda *args, **kwargs: time.sleep(seconds))


def fit(*extra, epochs=3, steps=4):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((steps * 8, 2), np.float32), np.ones((steps * 8, 1), np.float32)
    model.fit(
        x, y, batch_size=8, epochs=epochs, validation_data=(x, y), verbose=0, callbacks=list(extra)
    )


def test_time_budget_counts_training_batches_not_validation_or_epoch_ends():
    budget = callbacks.TimeBudget()
    start = time.perf_counter()
    fit(budget, Sleep("on_epoch_end", 0.3), Sleep("on_test_end", 0.3))
    assert time.perf_counter() - start > 1.8
    assert budget.elapsed < 0.5 and budget.steady_batches == 11
    # Time inside the batches is training time: 0.1 s a batch stops the run after ~3 batches.
    budget = callbacks.TimeBudget(0.25)
    fit(Sleep("on_train_batch_end", 0.1), budget, epochs=5)
    assert 2 <= budget.batches <= 4 and budget.elapsed >= 0.25
