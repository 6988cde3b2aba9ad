"""Run-time value checks shared by bijectors, flows and dequantization."""

import numpy as np
import tensorflow as tf


def in_range(x, low, high, message):
    """``x``, computed only after every value is checked to lie in ``[low, high]``.

    Raises ``InvalidArgumentError`` with ``message`` (and the offending values) otherwise; a
    NaN fails too (no comparison holds for it), and so does an infinity (outside any finite
    range).
    """
    checks = [
        tf.debugging.assert_greater_equal(x, tf.cast(low, x.dtype), message=message),
        tf.debugging.assert_less_equal(x, tf.cast(high, x.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(x)


def sampling_arguments(num_samples, temperature):
    """``(num_samples, temperature)`` checked: a whole number >= 1 and a finite number >= 0
    (0: the mode); tensors pass unchecked (a graph checks its own). Raises ValueError."""
    if not tf.is_tensor(num_samples):
        if isinstance(num_samples, bool) or not isinstance(num_samples, int | np.integer):
            raise ValueError(f"num_samples must be a whole number >= 1, got {num_samples!r}.")
        if num_samples < 1:
            raise ValueError(f"num_samples must be a whole number >= 1, got {num_samples!r}.")
        num_samples = int(num_samples)
    if not tf.is_tensor(temperature):
        if not isinstance(temperature, int | float | np.number) or not 0 <= temperature < np.inf:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}.")
        temperature = float(temperature)
    return num_samples, temperature
