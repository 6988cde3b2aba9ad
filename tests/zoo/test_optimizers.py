import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.optimizers import FusedAdam


def _train(optimizer, steps=4, loss_scaled=False):
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=shape).astype("float32")) for shape in (
        (30, 20), (20,))]  # fmt: skip
    if loss_scaled:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    apply = tf.function(lambda grads: optimizer.apply(grads, variables))
    for _ in range(steps):
        apply([tf.constant(rng.normal(size=v.shape).astype("float32")) for v in variables])
    return [v.numpy() for v in variables], optimizer


@pytest.mark.parametrize(
    "options",
    [
        {"learning_rate": 0.01},
        {"learning_rate": 0.01, "beta_1": 0.5, "epsilon": 1e-4},
        {"learning_rate": keras.optimizers.schedules.ExponentialDecay(0.05, 1, 0.5)},
        {"learning_rate": 0.01, "weight_decay": 0.1, "clipnorm": 1.0},
        {"learning_rate": 0.01, "amsgrad": True},
    ],
    ids=["default", "gan", "schedule", "decay_clip", "amsgrad"],
)
def test_fused_adam_takes_keras_adams_steps(options):
    expected, _ = _train(keras.optimizers.Adam(**options))
    got, optimizer = _train(FusedAdam(**options))
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got[0], _train(keras.optimizers.SGD(0.0))[0][0])  # it moved
    assert int(optimizer.iterations.numpy()) == 4


def test_fused_adam_under_loss_scaling_and_round_trip():
    expected, _ = _train(keras.optimizers.Adam(0.01), loss_scaled=True)
    got, optimizer = _train(FusedAdam(0.01), loss_scaled=True)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    inner = optimizer.inner_optimizer
    again = keras.optimizers.deserialize(keras.optimizers.serialize(inner))
    assert isinstance(again, FusedAdam) and again.get_config() == inner.get_config()
