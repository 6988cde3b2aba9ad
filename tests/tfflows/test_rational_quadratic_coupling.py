"""The neural spline coupling (tfflows/bijectors/rational_quadratic_coupling.py) and its spline
(tfflows/bijectors/_spline.py): TFP's spline inside, the identity beyond the tails, inverses
and gradients everywhere, a density that integrates to 1, mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.checks import assert_config_round_trip, assert_round_trip, fresh, randomize
from tests.tfflows.coupling_cases import make_coupling
from tfflows import bijectors, masks, nets
from tfflows.bijectors import _spline

tfb = tfp.bijectors
BINS, BOUND = 5, 2.0


def _params(n, units=3, seed=0, scale=1.5):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=scale, size=(n, units, _spline.num_parameters(BINS))).astype("float32")


def _tfp_spline(params):
    """TFP's spline with our normalized bins and slopes."""
    params = tf.constant(params)
    _, widths = _spline._knots(params[..., :BINS], BOUND)
    _, heights = _spline._knots(params[..., BINS : 2 * BINS], BOUND)
    slopes = _spline._slopes(params[..., 2 * BINS :])[..., 1:-1]
    return tfb.RationalQuadraticSpline(widths, heights, slopes, range_min=-BOUND)


def test_the_spline_is_tfps_inside_the_interval():
    params = _params(64)
    x = tf.random.stateless_uniform((64, 3), [1, 2], -BOUND, BOUND)
    reference = _tfp_spline(params)
    y, log_det = _spline.rational_quadratic(x, params, BOUND)
    np.testing.assert_allclose(y, reference.forward(x), atol=2e-5)
    np.testing.assert_allclose(log_det, reference.forward_log_det_jacobian(x, 0), atol=1e-4)
    back, inverse_log_det = _spline.rational_quadratic(y, params, BOUND, inverse=True)
    np.testing.assert_allclose(back, reference.inverse(fresh(y)), atol=2e-5)
    _assert_inverts(back, x, log_det)
    np.testing.assert_allclose(inverse_log_det, -log_det, rtol=1e-4, atol=1e-4)


def _assert_inverts(back, x, log_det):
    """``back`` is ``x`` up to float32's rounding of ``y``, magnified by ``dx/dy`` where the
    spline is flat."""
    error = np.abs(np.asarray(back) - np.asarray(x)) * np.exp(np.asarray(log_det))
    assert np.max(error) < 2e-6 * max(1.0, np.max(np.abs(x))), np.max(error)


def test_the_derivative_is_the_autodiff_one_and_the_spline_is_monotone():
    params = _params(1, units=1, seed=3)[0, 0]
    x = tf.linspace(-1.5 * BOUND, 1.5 * BOUND, 2001)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, log_det = _spline.rational_quadratic(x, params, BOUND)
    slope = tape.gradient(y, x)
    np.testing.assert_allclose(np.log(slope), log_det, atol=1e-4)
    assert np.all(np.diff(y.numpy()) > 0)
    assert y[0] == x[0] and y[-1] == x[-1]  # the identity beyond the tails


def test_knots_map_onto_knots_and_the_ends_stay_put():
    params = _params(1, units=1, seed=4)[0, 0]
    x_knots, _ = _spline._knots(tf.constant(params[:BINS]), BOUND)
    y_knots, _ = _spline._knots(tf.constant(params[BINS : 2 * BINS]), BOUND)
    y, _ = _spline.rational_quadratic(x_knots, params, BOUND)
    np.testing.assert_allclose(y, y_knots, atol=1e-6)
    assert x_knots[0] == -BOUND and x_knots[-1] == BOUND
    x, _ = _spline.rational_quadratic(y_knots, params, BOUND, inverse=True)
    np.testing.assert_allclose(x, x_knots, atol=1e-5)


def test_inside_at_and_beyond_the_tails_everything_inverts_with_finite_gradients():
    params = tf.constant(_params(1, units=9, seed=5, scale=2.0)[0])
    edge = np.nextafter(np.float32(BOUND), np.float32(0))
    x = tf.constant([[-1e6, -BOUND * 1.01, -BOUND, -edge, 0.0, 0.3, edge, BOUND, 1e6]], tf.float32)
    for inverse in (False, True):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, params])
            y, log_det = _spline.rational_quadratic(x, params, BOUND, inverse=inverse)
            total = tf.reduce_sum(y) + tf.reduce_sum(log_det)
        for grad in tape.gradient(total, [x, params]):
            assert np.all(np.isfinite(grad)), grad
        back, back_log_det = _spline.rational_quadratic(y, params, BOUND, inverse=not inverse)
        inside = np.abs(x.numpy()) <= BOUND
        _assert_inverts(back.numpy()[inside], x.numpy()[inside], log_det.numpy()[inside])
        np.testing.assert_array_equal(back.numpy()[~inside], x.numpy()[~inside])
        np.testing.assert_allclose(back_log_det, -log_det, rtol=1e-4, atol=1e-4)
        outside = np.abs(x.numpy()) > BOUND
        np.testing.assert_array_equal(y.numpy()[outside], x.numpy()[outside])
        np.testing.assert_array_equal(log_det.numpy()[outside], 0.0)
        # Continuous at the ends: the slope there is 1.
        np.testing.assert_allclose(
            y.numpy()[0, [2, 3, 6, 7]], x.numpy()[0, [2, 3, 6, 7]], atol=1e-5
        )
        np.testing.assert_allclose(log_det.numpy()[0, [2, 7]], 0.0, atol=1e-3)


def test_a_spline_density_integrates_to_one():
    params = _params(1, units=1, seed=6, scale=3.0)[0, 0]
    y = np.linspace(-12.0, 12.0, 200_001).astype(np.float32)
    z, log_det = _spline.rational_quadratic(y, params, BOUND, inverse=True)
    density = np.exp(-0.5 * z.numpy() ** 2 - 0.5 * np.log(2 * np.pi) + log_det.numpy())
    assert np.trapezoid(density, y) == pytest.approx(1.0, abs=1e-4)
    # ... and it is not the base density.
    assert np.max(np.abs(density - np.exp(-0.5 * y**2) / np.sqrt(2 * np.pi))) > 0.05


def test_all_zero_parameters_give_the_identity():
    x = tf.linspace(-3.0, 3.0, 101)
    y, log_det = _spline.rational_quadratic(x, tf.zeros([_spline.num_parameters(BINS)]), BOUND)
    np.testing.assert_allclose(y, x, atol=1e-6)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_the_spline_arithmetic_in_float32(policy):
    mask = masks.checkerboard((4, 4, 2))
    x = 2.0 * tf.random.stateless_normal((4, 4, 4, 2), [0, 7])
    reference = make_coupling(bijectors.RationalQuadraticCoupling, mask, seed=2)
    expected = reference.forward_and_log_det(x, 3)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        coupling = make_coupling(bijectors.RationalQuadraticCoupling, mask, seed=2)
    finally:
        keras.config.set_dtype_policy(previous)
    y, log_det = coupling.forward_and_log_det(x, 3)
    assert y.dtype == log_det.dtype == tf.float32
    # The conditioner alone is in low precision; the spline's errors would be far larger.
    np.testing.assert_allclose(y, expected[0], atol=0.05)
    np.testing.assert_allclose(log_det, expected[1], rtol=0.05, atol=0.2)
    back, inverse_log_det = coupling.inverse_and_log_det(fresh(y), 3)
    np.testing.assert_allclose(back, x, atol=1e-4)
    np.testing.assert_allclose(inverse_log_det, -log_det, atol=1e-3)
    huge = 1e4 * x  # saturating conditioner outputs, far beyond the tails
    with tf.GradientTape() as tape:
        y, log_det = coupling.forward_and_log_det(huge, 3)
        total = tf.reduce_sum(log_det) + tf.reduce_sum(y)
    grads = tape.gradient(total, coupling.conditioner.trainable_weights)
    assert all(np.all(np.isfinite(tf.cast(g, tf.float32))) for g in grads)


def test_the_coupling_round_trips_and_saves_its_bins():
    mask = masks.alternating(6)
    coupling = bijectors.RationalQuadraticCoupling(
        mask, nets.MLP([8], 3 * _spline.num_parameters(4)), bins=4, bound=5.0
    )
    clone = assert_config_round_trip(coupling, lambda c: c.conditioner.count_params())
    assert (clone.bins, clone.bound) == (4, 5.0)
    make = make_coupling(bijectors.RationalQuadraticCoupling, mask, seed=9)
    assert_round_trip(make, 4.0 * tf.random.stateless_normal((6, 6), [0, 9]), atol=1e-4)


def test_nonsense_options_are_refused():
    net = nets.MLP([4], 3 * _spline.num_parameters(8))
    with pytest.raises(ValueError, match="bins must be an integer >= 2, got 1"):
        bijectors.RationalQuadraticCoupling(masks.half(6), net, bins=1)
    with pytest.raises(ValueError, match="bound must be positive, got 0"):
        bijectors.RationalQuadraticCoupling(masks.half(6), net, bound=0)
    with pytest.raises(ValueError, match=r"maps .* \[3\] to shape \[3\].*needs \[69\]"):
        bijectors.RationalQuadraticCoupling(masks.half(6), nets.MLP([4], 3))


def test_it_traces_with_an_unknown_batch_size_as_a_serving_signature_does():
    coupling = bijectors.RationalQuadraticCoupling(
        masks.alternating(6), nets.MLP([8], 3 * _spline.num_parameters(4)), bins=4
    )
    randomize([coupling.conditioner], seed=2)
    x = 2.0 * tf.random.stateless_normal((5, 6), [0, 4])
    spec = [tf.TensorSpec([None, 6], tf.float32)]
    for direction in ("forward", "inverse"):
        method = getattr(coupling, f"{direction}_and_log_det")
        traced = tf.function(lambda t, method=method: method(t, 1), input_signature=spec)
        for got, want in zip(traced(x), method(x, 1), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
