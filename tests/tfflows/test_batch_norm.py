import numpy as np
import pytest
import tensorflow as tf

from tests.checks import (
    assert_log_dets_match_autodiff,
    assert_round_trip,
    autodiff_log_det,
    fresh,
)
from tfflows import bijectors

SHAPES = [(6,), (4, 4, 2)]


def make(shape, momentum=0.9, seed=0):
    bn = bijectors.BatchNorm(shape, momentum=momentum)
    rng = np.random.default_rng(seed)
    state = bn.keras_layers[0]
    n = state.log_gamma.shape
    state.log_gamma.assign(rng.normal(scale=0.5, size=n).astype(np.float32))
    state.beta.assign(rng.normal(size=n).astype(np.float32))
    state.moving_mean.assign(rng.normal(size=n).astype(np.float32))
    state.moving_variance.assign(rng.uniform(0.5, 2.0, size=n).astype(np.float32))
    return bn


def data(shape, n=64, seed=1):
    return 3.0 + 2.0 * tf.random.stateless_normal((n, *shape), seed=[seed, 0])


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_mode_round_trip_and_log_dets(shape):
    bn = make(shape)
    x = data(shape, n=5)
    assert_round_trip(bn, x, training=False)
    assert_log_dets_match_autodiff(bn, x, training=False)


@pytest.mark.parametrize("shape", SHAPES)
def test_training_mode_normalizes_with_batch_statistics(shape):
    bn = bijectors.BatchNorm(shape)
    z = bn.inverse(data(shape), training=True).numpy()
    axes = tuple(range(z.ndim - 1))
    np.testing.assert_allclose(z.mean(axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.var(axis=axes), 1.0, atol=1e-3)  # var / (var + eps)


@pytest.mark.parametrize("shape", SHAPES)
def test_training_log_det_is_exact_for_the_statistics_used(shape):
    # With momentum 0 the running averages become exactly the batch statistics of the
    # training call, so the inference-mode map is the map that call applied.
    bn = make(shape, momentum=0.0)
    y = data(shape, n=16)
    z_train, ildj_train = bn.inverse_and_log_det(y, len(shape), training=True)
    z_infer = bn.inverse(fresh(y), training=False)
    np.testing.assert_allclose(z_train, z_infer, atol=1e-5)
    np.testing.assert_allclose(
        np.broadcast_to(ildj_train, [16]),
        autodiff_log_det(lambda t: bn.inverse(t, training=False), y),
        atol=1e-4,
    )
    np.testing.assert_allclose(
        ildj_train, bn.inverse_log_det_jacobian(fresh(y), len(shape), training=True), atol=1e-5
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_moving_statistics_move_only_in_training(shape):
    bn = make(shape, momentum=0.9)
    state = bn.keras_layers[0]
    before = [state.moving_mean.numpy(), state.moving_variance.numpy()]
    y = data(shape)
    bn.inverse(y, training=False)
    bn.inverse_log_det_jacobian(y, len(shape), training=True)
    bn.forward(y, training=True)
    np.testing.assert_array_equal(state.moving_mean, before[0])
    np.testing.assert_array_equal(state.moving_variance, before[1])
    bn.inverse(fresh(y), training=True)
    axes = tuple(range(len(y.shape) - 1))
    mean, var = y.numpy().mean(axis=axes), y.numpy().var(axis=axes)
    np.testing.assert_allclose(state.moving_mean, 0.9 * before[0] + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(state.moving_variance, 0.9 * before[1] + 0.1 * var, rtol=1e-5)


def test_forward_uses_running_averages_in_both_modes():
    bn = make((6,))
    z = data((6,), n=4)
    np.testing.assert_array_equal(
        bn.forward(z, training=True), bn.forward(fresh(z), training=False)
    )


def test_constructor_validates_its_arguments():
    with pytest.raises(ValueError, match="momentum"):
        bijectors.BatchNorm([3], momentum=1.0)
    with pytest.raises(ValueError, match=r"\[D\] or \[H, W, C\]"):
        bijectors.BatchNorm([3, 3])
