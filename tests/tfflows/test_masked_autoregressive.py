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
    repeated per parameter), and a traced training step builds them from the degrees: no
    constant in its graph is mask-sized (an MNIST MAF's SavedModel held 190 MB of masks)."""
    made = nets.MADE(D, 2, [16, 12], context_size=3, order=ORDERS[2])
    made.build((None, D + 3))
    masks, out = nets.made_masks(made.degrees, [16, 12], context=True)
    masks[0] = np.concatenate([masks[0], np.ones((3, 16), np.float32)])
    expected = [*masks, np.repeat(out, 2, axis=1)]
    for layer, mask in zip([*made.hidden, made.out], expected, strict=True):
        np.testing.assert_array_equal(layer.mask, mask)

    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(made(x) ** 2)
        return tape.gradient(loss, made.trainable_variables)

    graph = tf.function(step).get_concrete_function(tf.TensorSpec([None, D + 3])).graph
    values = [
        tf.make_ndarray(op.get_attr("value")) for op in graph.get_operations() if op.type == "Const"
    ]
    # A mask has ones; small graphs hold the custom gradient's unused zeros as constants.
    sizes = [value.size for value in values if np.any(value)]
    assert max(sizes) <= 16, max(sizes)  # a degree vector; the smallest mask has 120 entries


def _dense():
    layer = nets.MaskedDense(6, [1, 2, 3, 2], [0, 1, 2, 3, 3, 1], activation="tanh")
    layer.build((None, 4))
    return layer


def test_masked_dense_stores_its_kernel_masked_however_weights_arrive():
    layer = _dense()
    masked_out = layer.mask == 0
    assert masked_out.sum() == 11 and np.all(layer.kernel.numpy()[masked_out] == 0.0)
    full = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    bias = np.ones(6, np.float32)
    for arrive in (
        lambda: layer.set_weights([full, bias]),
        lambda: layer.load_own_variables({"0": full, "1": bias}),
    ):
        layer.kernel.assign(np.zeros((4, 6), np.float32))
        arrive()
        np.testing.assert_array_equal(layer.kernel.numpy(), full * layer.mask)
        np.testing.assert_array_equal(layer.bias.numpy(), bias)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)], ids=["2d", "3d"])
def test_masked_dense_gradients_match_the_multiplied_kernels(shape):
    """The call is ``x @ kernel`` with a masked custom gradient; brute force: autodiff through
    ``x @ (kernel * mask)`` and the same activation."""
    layer = _dense()
    randomize([layer], seed=3, scale=1.0)
    x = tf.random.stateless_normal(shape, [0, 6])
    upstream = tf.random.stateless_normal((*shape[:-1], 6), [0, 7])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        got = layer(x)
        want = tf.tanh(tf.matmul(x, layer.kernel * layer.mask) + layer.bias)
        got_loss, want_loss = tf.reduce_sum(got * upstream), tf.reduce_sum(want * upstream)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    for source in (x, layer.kernel, layer.bias):
        g_got, g_want = tape.gradient(got_loss, source), tape.gradient(want_loss, source)
        np.testing.assert_allclose(g_got, g_want, rtol=1e-5, atol=1e-6)
    assert np.all(tape.gradient(got_loss, layer.kernel).numpy()[layer.mask == 0] == 0.0)


def test_training_keeps_the_made_autoregressive():
    """Adam steps (whose update of a weight with zero gradients is zero) leave the masked
    entries at exactly zero, so the trained MADE keeps its triangular structure."""
    made = nets.MADE(D, 2, [16], activation="tanh")
    made.build((None, D))
    randomize([made], seed=8, scale=0.5)
    optimizer = keras.optimizers.Adam(0.05)
    x = tf.random.stateless_normal((32, D), [0, 8])
    for _ in range(3):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((made(x) - 1.0) ** 2)
        optimizer.apply_gradients(
            zip(
                tape.gradient(loss, made.trainable_variables), made.trainable_variables, strict=True
            )
        )
    for layer in [*made.hidden, made.out]:
        kernel = layer.kernel.numpy()
        assert np.all(kernel[layer.mask == 0] == 0.0)
        assert np.mean(kernel[layer.mask == 1] != 0.0) > 0.9  # trained, not all zero


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
