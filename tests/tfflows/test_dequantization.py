import math

import numpy as np
import pytest
import tensorflow as tf

import tfflows


def test_dequantized_values_fill_each_level_cell():
    x = tf.constant(np.repeat(np.arange(17), 200), tf.int32)
    y = tfflows.uniform_dequantize(x, 17, seed=[0, 1]).numpy()
    assert y.dtype == np.float32
    levels = np.repeat(np.arange(17), 200)
    assert np.all(y >= levels / 17) and np.all(y < (levels + 1) / 17)
    # Uniform within the cell: the offsets' mean is near 1/2.
    assert abs(np.mean(y * 17 - levels) - 0.5) < 0.03


def test_bits_per_dim_of_the_uniform_density_is_log2_levels():
    # The uniform density on [0, 1)^D has log p = 0 and assigns every cell 1 / K^D.
    np.testing.assert_allclose(tfflows.bits_per_dim(0.0, 64, 17), math.log2(17), rtol=1e-6)
    np.testing.assert_allclose(tfflows.bits_per_dim(0.0, 784, 256), 8.0, rtol=1e-6)
    # Each nat of log-density per dimension is 1/ln 2 bits.
    np.testing.assert_allclose(
        tfflows.bits_per_dim(64.0, 64, 256), 8.0 - 1.0 / math.log(2.0), rtol=1e-6
    )


def test_dequantize_refuses_values_outside_the_levels():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"integer levels in \[0, 16\]"):
        tfflows.uniform_dequantize(tf.constant([3, 17]), 17)
    with pytest.raises(tf.errors.InvalidArgumentError, match="integer levels"):
        tfflows.uniform_dequantize(tf.constant([0.5]), 17)
