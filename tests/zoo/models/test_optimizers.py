import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.models.optimizers import FusedAdam


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


@pytest.mark.parametrize("every", [1, 3])
def test_the_weight_average_every_kth_step_has_the_same_time_constant(every):
    """Keras' average at ``ema_every=1`` (the weights after step 0, then ``m a + (1 - m) w``
    each step); at ``k``, an average of every ``k``-th weight with momentum ``m ** k``."""
    momentum, steps = 0.8, 8
    rng = np.random.default_rng(1)
    variable = keras.Variable(rng.normal(size=(5, 4)).astype("float32"))
    optimizer = FusedAdam(0.1, use_ema=True, ema_momentum=momentum, ema_every=every)
    apply = tf.function(lambda grads: optimizer.apply(grads, [variable]))
    weights = []
    for _ in range(steps):
        apply([tf.constant(rng.normal(size=(5, 4)).astype("float32"))])
        weights.append(variable.numpy())
    expected = weights[0]
    for t in range(every, steps, every):
        expected = momentum**every * expected + (1 - momentum**every) * weights[t]
    average = optimizer._model_variables_moving_average[0].numpy()
    np.testing.assert_allclose(average, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(average, weights[-1], atol=1e-3)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert again.ema_every == every and again.get_config() == optimizer.get_config()


@pytest.mark.parametrize("every", [0, 2.0, True])
def test_a_nonsense_ema_every_is_refused(every):
    with pytest.raises(ValueError, match="ema_every must be a whole number >= 1"):
        FusedAdam(0.1, use_ema=True, ema_every=every)
