"""Data-dependent initialization inside Keras: weights set from the first training batch.

A weight ``w`` initialized from data is held as a non-trainable ``initial_w`` plus a trainable
offset ``w`` that starts at zero; the bijector uses ``initial_w + w``. The first call with
``training=True`` (the first step of `fit`) sets ``initial_w`` from statistics of its batch and
the ``initialized`` flag to 1. Only non-trainable weights are assigned, so:

* under `tf.distribute` they average across replicas (as batch norm's running statistics do),
  and every replica and worker ends up with the same initial values;
* a skipped first step (non-finite loss, `tfflows.gradient_step.minimize`) puts them back, so
  the next batch initializes instead;
* `.keras` files and SavedModels keep them like any weight: a trained or reloaded bijector
  never re-initializes.

The gradient with respect to the offset is the gradient with respect to the weight, so the
optimizer sees the usual parametrization (shifted by a constant).
"""

import tensorflow as tf


def specs(shapes):
    """`BijectorWeights` specs for the data-initialized weights ``{name: shape}``."""
    out = {"initialized": {"shape": [], "initializer": "zeros", "trainable": False}}
    for name, shape in shapes.items():
        out[name] = {"shape": list(shape), "initializer": "zeros"}
        out[f"initial_{name}"] = {"shape": list(shape), "initializer": "zeros", "trainable": False}
    return out


def values(state, names, dtype, training, from_batch):
    """The weights ``names`` of ``state`` as this call uses them, ``initial + offset``, in
    ``dtype``. On a training call before initialization, ``from_batch()`` (a list of tensors,
    one per name) gives the initial values first."""
    initial = [getattr(state, f"initial_{name}") for name in names]
    if training:
        done = state.initialized >= 0.5

        def keep():
            return [tf.cast(tf.identity(v), dtype) for v in initial]

        def compute():
            return [tf.cast(tf.stop_gradient(v), dtype) for v in from_batch()]

        start = tf.cond(done, keep, compute)
        for variable, value in zip(initial, start, strict=True):
            variable.assign(tf.cast(value, variable.dtype))
        state.initialized.assign(tf.ones_like(state.initialized))
    else:
        start = [tf.cast(v, dtype) for v in initial]
    return [s + tf.cast(getattr(state, name), dtype) for s, name in zip(start, names, strict=True)]
