"""MADE (tfflows/nets.py) and MAF / IAF (tfflows/bijectors/masked_autoregressive.py): the
autoregressive property from autodiff Jacobians, inverses, log-dets, which direction takes one
pass, a fitted density."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import (
    assert_config_round_trip,
    assert_log_dets_match_autodiff,
    assert_round_trip,
    randomize,
)
from tfflows import Flow, bijectors, nets
from tfflows.bijectors import _spline

D = 5
ORDERS = ["natural", "reversed", [3, 1, 5, 2, 4]]


def _jacobian(fn, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return tape.batch_jacobian(y, x).numpy()


@pytest.mark.parametrize("order", ORDERS, ids=str)
def test_made_outputs_depend_on_the_units_before_them_only(order):
    made = nets.MADE(D, 3, [16, 16], order=order, activation="tanh")
    made.build((None, D))
    randomize([made], seed=1, scale=1.0)
    degrees = nets.autoregressive_degrees(D, order)
    x = tf.random.stateless_normal((4, D), [0, 1])
    jacobian = np.abs(_jacobian(lambda t: made(t), x)).max(axis=0).reshape(D, 3, D)
    allowed = degrees[None, :] < degrees[:, None]  # [output unit, input unit]
    assert np.all(jacobian[~np.broadcast_to(allowed[:, None, :], jacobian.shape)] == 0.0)
    # ... and with enough hidden units every allowed connection is used.
    assert np.all(jacobian.max(axis=1)[allowed] > 0.0)


def test_made_builds_its_masks_from_degrees_in_the_graph():
    """The layers' masks are `made_masks`' (context rows all ones, each unit's output column
    repeated per parameter), and a traced call builds them from the degrees: no constant in
    its graph is mask-sized (an MNIST MAF's SavedModel held 190 MB of masks)."""
    made = nets.MADE(D, 2, [16, 12], context_size=3, order=ORDERS[2])
    made.build((None, D + 3))
    masks, out = nets.made_masks(made.degrees, [16, 12], context=True)
    masks[0] = np.concatenate([masks[0], np.ones((3, 16), np.float32)])
    expected = [*masks, np.repeat(out, 2, axis=1)]
    for layer, mask in zip([*made.hidden, made.out], expected, strict=True):
        np.testing.assert_array_equal(layer.mask, mask)
    graph = tf.function(made).get_concrete_function(tf.TensorSpec([None, D + 3])).graph
    sizes = [
        tf.make_ndarray(op.get_attr("value")).size
        for op in graph.get_operations()
        if op.type == "Const"
    ]
    assert max(sizes) <= 16, max(sizes)  # a degree vector; the smallest mask has 120 entries


def test_made_context_feeds_every_output():
    made = nets.MADE(D, 2, [32], context_size=3)
    made.build((None, D + 3))
    randomize([made], seed=2, scale=1.0)
    x = tf.random.stateless_normal((2, D + 3), [0, 2])
    jacobian = np.abs(_jacobian(lambda t: made(t), x)).max(axis=0)
    assert np.all(jacobian[:, D:] > 0.0)


def _bijector(transform, fast, order="natural", seed=0):
    params = 2 if transform == "affine" else _spline.num_parameters(4)
    made = nets.MADE(D, params, [24, 24], order=order, activation="tanh")
    bijector = bijectors.MaskedAutoregressive(made, transform, fast, bins=4, bound=2.5)
    randomize(bijector.keras_layers, seed, scale=0.5)
    return bijector


CASES = [(t, f) for t in ("affine", "spline") for f in ("inverse", "forward")]


@pytest.mark.parametrize("transform, fast", CASES)
def test_round_trip_and_log_dets_against_autodiff(transform, fast):
    bijector = _bijector(transform, fast)
    x = 1.5 * tf.random.stateless_normal((6, D), [0, 3])
    assert_round_trip(bijector, x, atol=1e-4)
    assert_log_dets_match_autodiff(bijector, x, atol=1e-4)


@pytest.mark.parametrize("transform, fast", CASES)
def test_it_traces_with_an_unknown_batch_size_as_a_serving_signature_does(transform, fast):
    bijector = _bijector(transform, fast)
    x = 1.5 * tf.random.stateless_normal((6, D), [0, 5])
    spec = [tf.TensorSpec([None, D], tf.float32)]
    for direction in ("forward", "inverse"):
        method = getattr(bijector, f"{direction}_and_log_det")
        traced = tf.function(lambda t, method=method: method(t, 1), input_signature=spec)
        for got, want in zip(traced(x), method(x, 1), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("transform, fast", CASES)
def test_the_jacobian_is_triangular_in_the_made_order(transform, fast):
    order = [3, 1, 5, 2, 4]
    bijector = _bijector(transform, fast, order=order, seed=4)
    x = tf.random.stateless_normal((3, D), [0, 4])
    position = np.argsort(np.asarray(order))  # units by order
    for fn in (bijector.forward, bijector.inverse):
        jacobian = np.abs(_jacobian(fn, x)).max(axis=0)[np.ix_(position, position)]
        assert np.all(np.triu(jacobian, k=1) == 0.0)
        assert np.any(np.tril(jacobian, k=-1) > 1e-3)


def test_maf_scores_and_iaf_samples_in_one_made_pass():
    for fast, one_pass in (("inverse", "inverse"), ("forward", "forward")):
        bijector = _bijector("affine", fast)
        calls = []
        original = bijector.made.call
        bijector.made.call = lambda x, calls=calls, original=original: (
            calls.append(1) or original(x)
        )
        x = tf.random.stateless_normal((2, D), [0, 5])
        for direction in ("forward", "inverse"):
            calls.clear()
            getattr(bijector, direction)(x)
            assert len(calls) == (1 if direction == one_pass else D), (fast, direction)


def test_a_maf_fits_a_correlated_gaussian_to_its_entropy():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.9], [0.9, 1.0]])
    points = rng.multivariate_normal([0.0, 0.0], cov, 8000).astype(np.float32)
    layers = [
        bijectors.MaskedAutoregressive(nets.MADE(2, 2, [32], order=order), "affine")
        for order in ("natural", "reversed")
    ]
    flow = Flow(layers, event_shape=[2])
    flow.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = flow.fit(points[:6000], batch_size=500, epochs=30, verbose=0)
    held_out = -float(np.mean(flow.log_prob(points[6000:])))
    entropy = 0.5 * np.log((2 * np.pi * np.e) ** 2 * np.linalg.det(cov))  # 1.99 nats
    assert held_out == pytest.approx(entropy, abs=0.05)
    assert history.history["loss"][-1] < history.history["loss"][0] - 0.3


def test_config_round_trip_and_nonsense_options():
    bijector = _bijector("spline", "forward", order=[2, 1, 3, 5, 4])
    clone = assert_config_round_trip(bijector, lambda b: b.made.count_params())
    np.testing.assert_array_equal(clone.made.degrees, bijector.made.degrees)
    with pytest.raises(ValueError, match="params_per_unit=2, got 3"):
        bijectors.MaskedAutoregressive(nets.MADE(D, 3, [8]))
    with pytest.raises(ValueError, match="fast must be one of"):
        bijectors.MaskedAutoregressive(nets.MADE(D, 2, [8]), fast="both")
    with pytest.raises(ValueError, match=r"permutation of 1..5"):
        nets.MADE(D, 2, [8], order=[1, 2, 3, 4, 4])
