import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_log_dets_match_autodiff, fresh
from tfflows import bijectors


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_logit_maps_data_to_logits_and_back(alpha):
    logit = bijectors.Logit(alpha)
    u = tf.random.stateless_uniform((5, 6), seed=[1, 2], minval=0.01, maxval=0.99)
    y = logit.inverse(u)
    p = alpha + (1 - 2 * alpha) * u.numpy()
    np.testing.assert_allclose(y, np.log(p / (1 - p)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logit.forward(fresh(y)), u, atol=1e-6)


def test_logit_log_dets_match_autodiff():
    logit = bijectors.Logit(0.05)
    y = tf.random.stateless_normal((5, 6), seed=[3, 4])
    assert_log_dets_match_autodiff(logit, y)
    # forward_min_event_ndims is 0: per element; summed over an event of 6 values.
    assert logit.forward_log_det_jacobian(y, 0).shape == (5, 6)


def test_logit_is_finite_at_the_ends_of_the_pixel_range():
    logit = bijectors.Logit(0.05)
    u = tf.constant([[0.0, 1.0]])
    assert np.all(np.isfinite(logit.inverse(u)))
    assert np.all(np.isfinite(logit.inverse_log_det_jacobian(u, 1)))


def test_logit_validates_range_and_alpha():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expects data in \[0, 1\]"):
        bijectors.Logit(0.05, validate_args=True).inverse(tf.constant([0.5, 1.5]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        bijectors.Logit(0.05, validate_args=True).inverse(tf.constant([0.5, np.nan]))
    with pytest.raises(ValueError, match="alpha"):
        bijectors.Logit(0.5)
