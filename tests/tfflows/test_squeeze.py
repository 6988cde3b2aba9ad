import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_log_dets_match_autodiff, fresh
from tfflows import bijectors


def test_squeeze_is_space_to_depth_and_inverts():
    squeeze = bijectors.Squeeze()
    x = tf.reshape(tf.range(2 * 4 * 6 * 3, dtype=tf.float32), (2, 4, 6, 3))
    z = squeeze.inverse(x)
    assert z.shape == (2, 2, 3, 12)
    np.testing.assert_array_equal(z, tf.nn.space_to_depth(x, 2))
    np.testing.assert_array_equal(squeeze.forward(fresh(z)), x)
    assert squeeze.inverse_event_shape([4, 6, 3]) == [2, 3, 12]
    assert squeeze.forward_event_shape([2, 3, 12]) == [4, 6, 3]
    np.testing.assert_array_equal(squeeze.inverse_event_shape_tensor([4, 6, 3]), [2, 3, 12])


def test_squeeze_log_det_is_zero_and_matches_autodiff():
    squeeze = bijectors.Squeeze()
    z = tf.random.normal((3, 2, 2, 8))
    assert_log_dets_match_autodiff(squeeze, z)


def test_squeeze_batch_dims_of_any_rank():
    x = tf.random.normal((2, 3, 4, 4, 1))
    np.testing.assert_array_equal(
        tf.reshape(bijectors.Squeeze().inverse(x), (6, 2, 2, 4)),
        tf.nn.space_to_depth(tf.reshape(x, (6, 4, 4, 1)), 2),
    )


def test_squeeze_bad_shapes_are_named():
    squeeze = bijectors.Squeeze()
    with pytest.raises(ValueError, match=r"even height and width.*5x4"):
        squeeze.inverse(tf.zeros((1, 5, 4, 1)))
    with pytest.raises(ValueError, match="divisible by 4; got 6"):
        squeeze.forward(tf.zeros((1, 2, 2, 6)))
    with pytest.raises(ValueError, match=r"image events \[H, W, C\]"):
        squeeze.inverse(tf.zeros((4, 4)))


def test_unsqueeze_mirrors_squeeze():
    unsqueeze = bijectors.Unsqueeze()
    z = tf.random.normal((3, 2, 2, 8))
    x = unsqueeze.inverse(z)
    np.testing.assert_array_equal(x, tf.nn.depth_to_space(z, 2))
    np.testing.assert_array_equal(unsqueeze.forward(fresh(x)), z)
    assert unsqueeze.inverse_event_shape([2, 2, 8]) == [4, 4, 2]
    assert unsqueeze.forward_event_shape([4, 4, 2]) == [2, 2, 8]
    with pytest.raises(ValueError, match="divisible by 4; got 6"):
        unsqueeze.inverse(tf.zeros((1, 2, 2, 6)))
