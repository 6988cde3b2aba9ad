import numpy as np
import tensorflow as tf

from tests.checks import assert_log_dets_match_autodiff, assert_round_trip, randomize
from tfflows import bijectors


def test_scaling_round_trip_and_log_dets_flat_and_image():
    for shape in [(6,), (4, 4, 2)]:
        scaling = bijectors.Scaling(shape)
        randomize(scaling.keras_layers, seed=3)
        x = tf.random.stateless_normal((5, *shape), seed=[4, 0])
        assert_round_trip(scaling, x)
        assert_log_dets_match_autodiff(scaling, x)
        np.testing.assert_allclose(
            scaling.forward_log_det_jacobian(x, len(shape)),
            np.sum(scaling.log_scale.numpy()),
            rtol=1e-6,
        )


def test_scaling_multiplies_by_exp_log_scale():
    scaling = bijectors.Scaling([3])
    scaling.keras_layers[0].log_scale.assign([0.0, np.log(2.0), -np.log(4.0)])
    np.testing.assert_allclose(scaling.forward(tf.ones((1, 3))), [[1.0, 2.0, 0.25]], rtol=1e-6)


def test_data_init_starts_the_latents_at_unit_variance():
    scaling = bijectors.Scaling([6], data_init=True)
    spread = np.array([0.01, 0.1, 1.0, 3.0, 10.0, 0.5], np.float32)
    y = spread * tf.random.stateless_normal((512, 6), seed=[5, 0])
    np.testing.assert_array_equal(scaling.inverse(y), y)  # the identity until a training batch
    z, log_det = scaling.inverse_and_log_det(y, 1, training=True)
    np.testing.assert_allclose(np.std(z, axis=0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(log_det, -np.sum(np.log(np.std(y, axis=0))), rtol=1e-4)
    np.testing.assert_allclose(scaling.inverse(y), z, atol=1e-6)  # and it stays
    assert_round_trip(scaling, y[:5])
    assert_log_dets_match_autodiff(scaling, y[:5])
