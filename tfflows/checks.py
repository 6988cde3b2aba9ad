"""Run-time value checks shared by bijectors, flows and dequantization."""

import tensorflow as tf


def in_range(x, low, high, message):
    """``x``, computed only after every value is checked to lie in ``[low, high]``.

    Raises ``InvalidArgumentError`` with ``message`` (and the offending values) otherwise.
    """
    checks = [
        tf.debugging.assert_greater_equal(x, tf.cast(low, x.dtype), message=message),
        tf.debugging.assert_less_equal(x, tf.cast(high, x.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(x)
