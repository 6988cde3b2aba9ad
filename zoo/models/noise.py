"""Normal noise for the models, under one seed convention (TensorFlow's and TFP's).

``seed`` None draws afresh; an int is an op seed (stateful: a new draw each call, the sequence
fixed by the global seed); a shape-[2] tensor is a stateless seed (the same draw every call).
TFP's ``sample(seed=...)`` reads seeds the same way.
"""

import tensorflow as tf

from tfflows import noise


def standard_normal(shape, seed=None):
    """``N(0, I)`` noise of ``shape`` for ``seed`` (see the module docstring; which kind of
    seed it is, is read off its static shape, so a seed tensor in a graph works too)."""
    if seed is None or tf.convert_to_tensor(seed).shape.rank == 0:
        return tf.random.normal(shape, seed=seed)
    return tf.random.stateless_normal(shape, seed=seed)


def tfp_seed(seed):
    """``seed`` as TFP's ``sample(seed=...)`` reads it: None or an int as it is (stateful), a
    shape-[2] seed as int32, TFP's stateless dtype (a serving signature's may be int64)."""
    if seed is None or tf.convert_to_tensor(seed).shape.rank == 0:
        return seed
    return tf.cast(seed, tf.int32)


def training_noise(generator, shape):
    """``N(0, I)`` noise of ``shape`` for a train or test step, drawn from ``generator`` (a
    `keras.random.SeedGenerator` the model owns): resumable, different on each replica
    (`tfflows.noise.step_seed`)."""
    return tf.random.stateless_normal(shape, seed=noise.step_seed(generator))
