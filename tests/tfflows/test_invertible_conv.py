import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_log_dets_match_autodiff, assert_round_trip, fresh
from tfflows import bijectors

SHAPE = (4, 4, 3)


def images(n=5, seed=1):
    return tf.random.stateless_normal((n, *SHAPE), seed=[seed, 0])


def trained_like(conv, seed=0):
    """Moves every trainable weight off its initial rotation (a rotation has log-det 0)."""
    rng = np.random.default_rng(seed)
    for w in conv.keras_layers[0].trainable_weights:
        w.assign(w.numpy() + rng.normal(scale=0.3, size=w.shape).astype(np.float32))
    return conv


@pytest.mark.parametrize("lu", [False, True], ids=["plain", "lu"])
@pytest.mark.parametrize("shape", [SHAPE, (5,)], ids=["image", "vector"])
def test_round_trip_and_log_dets_match_autodiff(lu, shape):
    conv = trained_like(bijectors.InvertibleConv1x1(shape, lu_decomposed=lu, seed=1))
    x = tf.random.stateless_normal((5, *shape), seed=[2, 0])
    assert_round_trip(conv, x)
    assert_log_dets_match_autodiff(conv, x)
    assert np.all(np.abs(conv.forward_log_det_jacobian(x, len(shape))) > 1e-2)
    assert conv.name.startswith("invertible_conv1x1")


@pytest.mark.parametrize("lu", [False, True], ids=["plain", "lu"])
def test_starts_as_a_rotation(lu):
    conv = bijectors.InvertibleConv1x1(SHAPE, lu_decomposed=lu, seed=3)
    w = conv.matrix().numpy()
    np.testing.assert_allclose(w @ w.T, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(conv.inverse_log_det_jacobian(images(), 3), 0.0, atol=1e-5)


def test_plain_and_lu_compute_the_same_function():
    lu = trained_like(bijectors.InvertibleConv1x1(SHAPE, lu_decomposed=True, seed=4))
    plain = bijectors.InvertibleConv1x1(SHAPE, seed=4)
    plain.keras_layers[0].kernel.assign(lu.matrix())
    y = images()
    pairs = zip(lu.inverse_and_log_det(y, 3), plain.inverse_and_log_det(fresh(y), 3), strict=True)
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lu.forward(y), plain.forward(fresh(y)), rtol=1e-4, atol=1e-4)
    # Each position's channels are mixed by W alone: a 1x1 convolution.
    conv = tf.nn.conv2d(y, lu.matrix()[None, None], strides=1, padding="VALID")
    np.testing.assert_allclose(lu.inverse(fresh(y)), conv, rtol=1e-5, atol=1e-5)


def test_initial_rotation_follows_keras_seed():
    keras.utils.set_random_seed(5)
    first = bijectors.InvertibleConv1x1(SHAPE).matrix()
    keras.utils.set_random_seed(5)
    again = bijectors.InvertibleConv1x1(SHAPE).matrix()
    np.testing.assert_array_equal(first, again)
    assert np.max(np.abs(first - bijectors.InvertibleConv1x1(SHAPE).matrix())) > 1e-3


def test_bad_event_shape_is_refused():
    with pytest.raises(ValueError, match=r"InvertibleConv1x1 needs an event shape.*\[4, 4\]"):
        bijectors.InvertibleConv1x1((4, 4))


def test_the_lu_convolution_compiles_with_xla():
    """Glow's and the spline flows' exports compile with XLA (``zoo export --jit-compile``):
    the LU form's log-det is the sum of its log-diagonal (``|det P| = 1``), with no
    ``LogMatrixDeterminant``, which XLA has no kernel for."""
    conv = trained_like(bijectors.InvertibleConv1x1(SHAPE, lu_decomposed=True, seed=4))
    x = images(seed=5)
    for method in (conv.inverse_and_log_det, conv.forward_and_log_det):
        compiled = tf.function(lambda t, method=method: method(t, 3), jit_compile=True)
        for got, want in zip(compiled(x), method(x, 3), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
