import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import count_traces
from tfflows import Flow, bijectors, masks, minimize, nets
from tfflows.gradient_step import all_finite


def _problem(loss_scaled=False):
    """A least-squares step on ``w``, with a state variable the forward pass assigns."""
    w = keras.Variable(np.ones(3, np.float32), name="w")
    moving = keras.Variable(np.zeros(3, np.float32), name="moving", trainable=False)
    optimizer = keras.optimizers.Adam(0.1)
    if loss_scaled:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=2.0**10)
    optimizer.build([w])

    @tf.function
    def step(x, when=True):
        def loss_fn():
            moving.assign(moving + x)
            return tf.reduce_sum(tf.square(w * x - 2.0)), x

        return minimize(optimizer, [w], loss_fn, state=[moving], when=when)[2]

    return w, moving, optimizer, step


def _scale(optimizer):
    return float(optimizer.dynamic_scale.numpy())


@pytest.mark.parametrize("loss_scaled", [False, True])
def test_a_finite_step_is_applied_and_a_non_finite_one_changes_nothing(loss_scaled):
    w, moving, optimizer, step = _problem(loss_scaled)
    iterations = optimizer.iterations.numpy()
    assert bool(step(tf.constant([1.0, 2.0, 3.0])))
    assert not np.allclose(w.numpy(), 1.0) and optimizer.iterations.numpy() == iterations + 1
    np.testing.assert_array_equal(moving.numpy(), [1.0, 2.0, 3.0])
    before = [v.numpy().copy() for v in (w, moving, *optimizer.variables)]
    for bad in (np.nan, np.inf):
        assert not bool(step(tf.constant([1.0, bad, 3.0])))
    after = [v.numpy() for v in (w, moving, *optimizer.variables)]
    changed = [
        v.path
        for v, b, a in zip((w, moving, *optimizer.variables), before, after, strict=True)
        if not np.array_equal(a, b) and "scale" not in v.path
    ]
    assert not changed
    if loss_scaled:  # each overflow halves the scale, as Keras' LossScaleOptimizer does
        assert _scale(optimizer) == 2.0**8


def test_a_step_not_wanted_leaves_the_loss_scale_alone():
    """A GAN's generator step skipped because its discriminator step was: the gradients are
    finite, so the loss scale must not be lowered as for an overflow."""
    w, moving, optimizer, step = _problem(loss_scaled=True)
    x = tf.constant([1.0, 2.0, 3.0])
    assert not bool(step(x, when=tf.constant(False)))
    np.testing.assert_array_equal(w.numpy(), 1.0)
    np.testing.assert_array_equal(moving.numpy(), 0.0)
    assert _scale(optimizer) == 2.0**10 and optimizer.iterations.numpy() == 0
    assert bool(step(x, when=tf.constant(True)))
    assert not np.allclose(w.numpy(), 1.0)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_all_finite_sees_every_nan_and_inf_and_no_overflowing_sum(dtype):
    big = float(np.finfo(np.float16).max if dtype == "float16" else np.finfo(np.float32).max)
    finite = tf.constant(np.full(8, big / 2), dtype)  # its sum overflows
    assert bool(all_finite([finite, None, tf.ones([3], dtype)]))
    for bad in (np.nan, np.inf, -np.inf):
        values = np.ones(8)
        values[5] = bad
        assert not bool(all_finite([tf.ones([2], dtype), tf.constant(values, dtype)]))
    assert not bool(tf.function(all_finite)([finite, tf.constant([1.0, np.nan], dtype)]))
    assert bool(all_finite([]))


def test_fit_builds_the_optimizer_before_tracing_the_step_once():
    """`Flow.fit` builds its optimizer eagerly (`build_optimizer`): the step is traced once;
    built inside the first trace it would be traced twice. A layer frozen after ``compile``
    is left out of the optimizer, which still steps the rest."""
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    flow = Flow(
        [
            bijectors.AffineCoupling(masks.half(2, parity=0), nets.MLP([8], 2)),
            bijectors.Scaling([2]),
        ],
        event_shape=[2],
    )
    flow.compile(optimizer=keras.optimizers.Adam(1e-2))
    frozen = flow.bijector_layers[0]
    frozen.trainable = False
    before = [w.numpy().copy() for w in flow.weights]
    traces = count_traces(flow)
    flow.fit(x, batch_size=32, epochs=2, verbose=0)
    assert len(traces) == 1 and flow.optimizer.built
    assert {id(v) for v in flow.optimizer._trainable_variables} == {
        id(v) for v in flow.trainable_variables
    }
    changed = {w.path for w, b in zip(flow.weights, before, strict=True) if not np.allclose(w, b)}
    assert changed and not changed & {w.path for w in frozen.weights}, changed
