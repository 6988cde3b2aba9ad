"""The training aids of the shared run path: learning-rate warm-up and cosine decay, gradient
clipping and weight averaging (EMA)."""

import csv
import dataclasses
import math
import os

import keras
import numpy as np
import pytest

from zoo import data, training
from zoo.training import statistics
from zoo.training.schedule import LearningRateSchedule


def test_warmup_then_cosine_by_steps_or_time_whichever_is_further():
    optimizer = keras.optimizers.Adam(0.1)
    schedule = LearningRateSchedule(
        [optimizer], "cosine", warmup_steps=10, total_steps=110, budget=100.0
    )
    assert schedule.factor(0) == pytest.approx(0.1 * 0.5 * (1 + math.cos(0.0)))
    assert schedule.factor(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 110)))
    assert schedule.factor(55) == pytest.approx(0.5)
    assert schedule.factor(55, seconds=75.0) == pytest.approx(0.5 * (1 + math.cos(0.75 * math.pi)))
    assert schedule.factor(500) == pytest.approx(0.0)
    # Warm-up / stable / decay: the rate holds until the last quarter, then decays over it.
    cooled = LearningRateSchedule([optimizer], "cosine", total_steps=100, decay_fraction=0.25)
    assert [cooled.factor(s) for s in (0, 50, 75)] == pytest.approx([1.0, 1.0, 1.0])
    assert cooled.factor(80) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 25)))
    assert cooled.factor(50, seconds=cooled.budget) == pytest.approx(1.0)
    timed = LearningRateSchedule([optimizer], "cosine", budget=8.0, decay_fraction=0.5)
    assert [timed.factor(0, seconds=t) for t in (3.9, 6.0, 8.0)] == pytest.approx([1, 0.5, 0])
    constant = LearningRateSchedule([optimizer], "constant", warmup_steps=4)
    assert [constant.factor(s) for s in (0, 3, 1000)] == pytest.approx([0.25, 1.0, 1.0])
    # Each optimizer is set from its own starting rate.
    other = keras.optimizers.Adam(0.02)
    both = LearningRateSchedule([optimizer, other], "cosine", total_steps=4)
    optimizer.iterations.assign(2)
    both.on_train_batch_begin(0)
    np.testing.assert_allclose(
        [float(optimizer.learning_rate), float(other.learning_rate)], [0.05, 0.01], rtol=1e-6
    )


def test_a_run_with_every_aid(tmp_path):
    out = str(tmp_path / "run")
    config = training.RunConfig(
        model="realnvp_flat",
        epochs=3,
        batch_size=128,
        learning_rate=2e-3,
        lr_schedule="cosine",
        warmup_steps=3,
        decay_fraction=0.5,
        clip_norm=5.0,
        ema=0.9,
        ema_every=2,
        options={"num_couplings": 2, "hidden_units": [16]},
        out=out,
        export=False,
    )
    metrics = training.run(config)
    with open(os.path.join(out, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    rates = [float(row["learning_rate"]) for row in rows]
    validated = [float(row["val_bits_per_dim"]) for row in rows]
    steps = training.batches_per_pass(data.load("digits", "train", batch_size=128)[0])
    schedule = LearningRateSchedule(
        [keras.optimizers.Adam(2e-3)], "cosine", 3, total_steps=3 * steps, decay_fraction=0.5
    )
    expected = [2e-3 * schedule.factor(steps * (e + 1) - 1) for e in range(3)]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    optimizer = model.optimizer
    assert optimizer.use_ema and optimizer.ema_momentum == 0.9 and optimizer.ema_every == 2
    assert optimizer.global_clipnorm == 5.0
    # The saved weights are the average (Keras puts it in place at the end of fit), and the
    # held-out figure is theirs.
    for weight, average in zip(
        model.trainable_weights, optimizer._model_variables_moving_average, strict=True
    ):
        np.testing.assert_array_equal(weight.numpy(), average.numpy())
    test, _ = data.load("digits", "test", batch_size=128, dequantize_seed=0)
    held_out = model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
    assert held_out == pytest.approx(metrics["held_out_bits_per_dim"], abs=1e-4)
    # The batch norm's running statistics are the average's, not the raw weights' (0.01
    # bits/dim apart here), in the last validation as in the saved model.
    train, _ = data.load("digits", "train", batch_size=128, shuffle=True, seed=1)
    assert statistics.refresh(model, train) > 0
    refreshed = model.evaluate(test, verbose=0, return_dict=True)["bits_per_dim"]
    assert refreshed == pytest.approx(held_out, abs=1e-3)
    assert validated[-1] == pytest.approx(held_out, abs=1e-3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
        ({"warmup_steps": -1}, "warmup_steps must be a whole number >= 0"),
        ({"lr_schedule": "cosine", "decay_fraction": 1.5}, r"decay_fraction must be in \(0, 1\]"),
        ({"lr_schedule": "cosine", "decay_fraction": 0.0}, "decay_fraction must be a finite"),
        ({"decay_fraction": 0.2}, "decay_fraction 0.2 needs lr_schedule 'cosine'"),
        ({"clip_norm": 0.0}, "clip_norm must be a finite number > 0"),
        ({"ema": 1.0}, r"ema must be a momentum in \(0, 1\)"),
        ({"ema": 0.9, "ema_every": 0}, "ema_every must be a whole number >= 1"),
        ({"ema_every": 10}, "ema_every 10 needs ema"),
    ],
)
def test_nonsense_aids_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        training.RunConfig(model="nice", **change).check()


def test_ema_on_a_model_with_two_optimizers_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "gan"
    with pytest.raises(ValueError, match="ema: dcgan trains with 2 optimizers"):
        training.run(training.RunConfig(model="dcgan", ema=0.99, out=str(out), epochs=1))
    assert not out.exists()


def test_a_run_resumes_only_with_the_same_aids():
    from zoo.training import resume

    plain = training.RunConfig(model="nice")
    assert not set(training.TRAINING_AIDS) & set(resume.fingerprint(plain))
    averaged = resume.fingerprint(
        dataclasses.replace(plain, ema=0.99, ema_every=5, lr_schedule="cosine", decay_fraction=0.2)
    )
    assert averaged["ema"] == 0.99 and averaged["lr_schedule"] == "cosine"
    assert averaged["decay_fraction"] == 0.2 and averaged["ema_every"] == 5
