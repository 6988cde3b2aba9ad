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


@pytest.mark.parametrize("k", [17, 256, 4096])
def test_noise_at_the_top_of_a_cell_stays_in_the_cell(k):
    """u one float32 ulp below 1: in float32, x + u rounds up to x + 1 for most levels, and
    floor(K y) would read back the next level; `in_cells` keeps every value in its own cell."""
    levels = np.arange(k, dtype=np.float32)
    u = np.nextafter(np.float32(1), np.float32(0))
    raw = (levels + u) / np.float32(k)
    assert (np.floor(raw * np.float32(k)) > levels).sum() > k / 2  # the rounding is real
    kept = tfflows.dequantization.in_cells(tf.constant(raw), tf.constant(levels), k).numpy()
    np.testing.assert_array_equal(np.floor(kept * np.float32(k)), levels)
    np.testing.assert_allclose(kept, raw, atol=1e-6)  # moved by an ulp, no more
    bottom = tfflows.dequantization.in_cells(tf.constant(levels / k), tf.constant(levels), k)
    np.testing.assert_array_equal(np.floor(bottom.numpy() * np.float32(k)), levels)


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


def _dequantizer(shape=(2, 2, 1), levels=4, randomized=True, seed=0):
    from tests.checks import randomize

    q = tfflows.VariationalDequantizer(shape, levels, filters=8, seed=seed)
    if randomized:  # off uniform, not so far that 1 / q is too heavy-tailed to average
        randomize([q], seed=seed, scale=0.1)
    return q


def test_variational_noise_starts_exactly_uniform():
    q = _dequantizer(randomized=False)
    levels = tf.constant(np.random.default_rng(0).integers(0, 4, (4000, 2, 2, 1)), tf.float32)
    u, log_q = q(levels)
    np.testing.assert_allclose(log_q, 0.0, atol=1e-5)
    u = u.numpy()
    assert np.all((u >= 0) & (u < 1))
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.003


def test_variational_density_normalizes_and_depends_on_the_image():
    """``E_{u ~ q}[1 / q(u | x)] = volume of [0, 1)^D = 1`` holds for a normalized q only: a
    wrong log-det makes it drift."""
    q = _dequantizer()
    for level in (0.0, 3.0):
        _, log_q = q(tf.fill((40000, 2, 2, 1), level))
        assert np.std(log_q) > 0.1  # off uniform
        mean = np.mean(np.exp(-log_q.numpy().astype(np.float64)))
        np.testing.assert_allclose(mean, 1.0, atol=3e-3)  # 6 standard errors
    # The same noise draws (a twin with the same weights and seed) for two images.
    first, second = _dequantizer(), _dequantizer()
    u0, _ = first(tf.zeros((100, 2, 2, 1)))
    u3, _ = second(tf.fill((100, 2, 2, 1), 3.0))
    assert np.max(np.abs(u0 - u3)) > 1e-3


def test_variational_dequantizer_config_round_trip():
    from tests.checks import assert_config_round_trip

    q = _dequantizer()
    clone = assert_config_round_trip(q, lambda layer: len(layer.weights))
    clone.set_weights(q.get_weights())
    levels = tf.fill((3, 2, 2, 1), 2.0)
    for (a, la), (b, lb) in [(q(levels), clone(levels))]:
        np.testing.assert_allclose(la, lb, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
