"""Checks shared by the tests: config round trips, bijector round trips and log-dets against
autodiff Jacobians."""

import json

import numpy as np
import tensorflow as tf


def count_traces(model):
    """A list that gets one entry each time ``model``'s ``train_step`` is traced (or, run
    eagerly, called); ``del model.train_step`` puts the class's back."""
    traces, train_step = [], model.train_step

    def counted(data):
        traces.append(data)
        return train_step(data)

    model.train_step = counted
    return traces


def assert_config_round_trip(obj, size):
    """``obj.get_config()`` goes through JSON (as in a `.keras` file), and ``type(obj)``'s
    ``from_config`` of that builds an object with the same config and ``size`` (e.g. its number
    of weights); returns the clone."""
    config = json.loads(json.dumps(obj.get_config()))
    clone = type(obj).from_config(config)
    assert json.loads(json.dumps(clone.get_config())) == config
    assert size(clone) == size(obj)
    return clone


def fresh(t):
    """A new tensor with ``t``'s values, so no cache keyed on ``t`` can answer for it."""
    return tf.constant(np.asarray(t))


def randomize(layers, seed=0, scale=0.3):
    """Gives every trainable weight of ``layers`` random values (zero-init nets are the
    identity), and running statistics (``moving_*``) values in ``[0.5, 0.5 + ...)`` so that
    running variances stay positive. Other non-trainable weights (a 1x1 convolution's fixed
    permutation, data-initialization flags) keep their values. MADE layers' masked kernel
    entries stay zero (`tfflows.nets.MaskedDense.enforce_mask`).
    """
    rng = np.random.default_rng(seed)
    for layer in layers:
        for w in layer.weights:
            value = rng.normal(scale=scale, size=w.shape)
            if not w.trainable:
                if not w.name.startswith("moving_"):
                    continue
                value = np.abs(value) + 0.5
            w.assign(value.astype(w.dtype))
        for sublayer in layer._flatten_layers():
            if hasattr(sublayer, "enforce_mask"):
                sublayer.enforce_mask()


def assert_round_trip(bijector, x, atol=1e-5, **kwargs):
    y = bijector.forward(x, **kwargs)
    np.testing.assert_allclose(bijector.inverse(fresh(y), **kwargs), x, atol=atol)
    x_back = bijector.forward(fresh(bijector.inverse(fresh(x), **kwargs)), **kwargs)
    np.testing.assert_allclose(x_back, x, atol=atol)
    # Not trivially the identity (that would make a round trip pass for any code).
    assert np.max(np.abs(np.asarray(y) - np.asarray(x))) > 1e-3


def autodiff_log_det(fn, x):
    """``log|det d fn(x_i) / d x_i|`` per example, from a ``tf.GradientTape`` Jacobian."""
    x = tf.convert_to_tensor(x)
    n = x.shape[0]
    flat = tf.reshape(x, [n, -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        y = tf.reshape(fn(tf.reshape(flat, x.shape)), [n, -1])
    jacobian = tape.batch_jacobian(y, flat)
    return tf.linalg.slogdet(tf.cast(jacobian, tf.float64))[1].numpy()


def assert_log_dets_match_autodiff(bijector, x, atol=1e-4, **kwargs):
    """Checks forward and inverse log-dets at ``x`` (and at ``forward(x)``) against autodiff.

    ``x`` is a batch ``[N, *event]``; the whole event is one Jacobian block.
    """
    x = tf.convert_to_tensor(x)
    event_ndims = x.shape.rank - 1
    fldj = np.broadcast_to(
        bijector.forward_log_det_jacobian(fresh(x), event_ndims, **kwargs), x.shape[:1]
    )
    np.testing.assert_allclose(
        fldj, autodiff_log_det(lambda t: bijector.forward(t, **kwargs), x), atol=atol
    )
    y = fresh(bijector.forward(x, **kwargs))
    ildj = np.broadcast_to(
        bijector.inverse_log_det_jacobian(fresh(y), event_ndims, **kwargs), x.shape[:1]
    )
    np.testing.assert_allclose(
        ildj, autodiff_log_det(lambda t: bijector.inverse(t, **kwargs), y), atol=atol
    )
    np.testing.assert_allclose(fldj, -ildj, atol=atol)
