"""Dequantization of discrete data and the matching bits/dim.

A flow has a density on continuous data, while images are discrete with ``K`` levels per value
(256 for 8-bit images, 17 for scikit-learn's 8x8 digits). Uniform dequantization adds
``u ~ U[0, 1)`` and rescales, ``y = (x + u) / K`` in ``[0, 1)``. For any density ``p_y`` on
``[0, 1)^D`` the model ``P(x) = integral of p_y over the cell of x`` satisfies

```none
log P(x) >= E_u[log p_y((x + u) / K)] - D log K,
```

so ``-(log p_y(y) - D log K) / (D log 2)`` averaged over data is an upper bound on the discrete
model's bits/dim, comparable with the papers' figures. The number of levels belongs to the data:
pass it, never assume 256.
"""

import math

import tensorflow as tf

from tfflows import checks


def uniform_dequantize(x, num_levels, seed=None):
    """Returns ``(x + u) / num_levels`` with ``u ~ U[0, 1)``, as float32 in ``[0, 1)``.

    Args:
      x: integer-valued tensor with values in ``{0, ..., num_levels - 1}`` (any numeric dtype).
      num_levels: number of discrete levels ``K`` of the data.
      seed: optional stateless seed, a shape-[2] int tensor, for reproducible noise.

    Raises:
      InvalidArgumentError: when a value lies outside ``[0, num_levels - 1]`` or is not an
        integer.
    """
    if int(num_levels) < 2:
        raise ValueError(f"num_levels must be at least 2, got {num_levels}.")
    message = f"uniform_dequantize expects integer levels in [0, {int(num_levels) - 1}]"
    x = checks.in_range(tf.cast(x, tf.float32), 0, num_levels - 1, message)
    with tf.control_dependencies([tf.debugging.assert_equal(x, tf.round(x), message=message)]):
        if seed is None:
            noise = tf.random.uniform(tf.shape(x))
        else:
            noise = tf.random.stateless_uniform(tf.shape(x), seed=seed)
        return (x + noise) / float(num_levels)


def bits_per_dim(log_prob, num_dims, num_levels):
    """Bits/dim of discrete data from the log-density of its dequantized values in ``[0, 1)``.

    Args:
      log_prob: log-density (nats) of ``y = (x + u) / num_levels`` under the model.
      num_dims: number of values ``D`` per example (e.g. 784 for MNIST).
      num_levels: number of discrete levels ``K`` per value.
    """
    log_prob = tf.convert_to_tensor(log_prob)
    return -(log_prob - num_dims * math.log(num_levels)) / (num_dims * math.log(2.0))
