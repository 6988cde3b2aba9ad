import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_log_dets_match_autodiff, assert_round_trip, fresh, randomize
from tfflows import bijectors, masks, nets


def scale(event_shape=(4, 4, 2)):
    """A RealNVP scale on the kept half [4, 4, 1]: checkerboard, squeeze, channel, unsqueeze."""
    h, w, c = event_shape
    kept = (h, w, c - c // 2)
    squeezed = (h // 2, w // 2, 4 * kept[-1])
    inner = [
        bijectors.AffineCoupling(masks.checkerboard(kept), nets.ResNet(4, 1, 2 * kept[-1])),
        bijectors.BatchNorm(kept, momentum=0.5),
        bijectors.Squeeze(),
        bijectors.AffineCoupling(masks.channel(squeezed), nets.ResNet(4, 1, squeezed[-1])),
        bijectors.Unsqueeze(),
    ]
    factor = bijectors.FactorOut(inner, event_shape)
    randomize(factor.keras_layers, seed=2, scale=0.2)
    return factor


def test_factor_out_round_trip_and_log_dets():
    factor = scale()
    x = tf.random.stateless_normal((5, 4, 4, 2), seed=[1, 1])
    assert_round_trip(factor, x, training=False)
    assert_log_dets_match_autodiff(factor, x, training=False)


def test_factored_out_channels_pass_straight_to_the_latent():
    factor = scale()
    x = tf.random.stateless_normal((5, 4, 4, 2), seed=[1, 2])
    z = factor.inverse(x, training=False)
    np.testing.assert_array_equal(z[..., 1:], x[..., 1:])
    assert np.max(np.abs(z[..., :1] - x[..., :1])) > 1e-3


def test_training_reaches_inner_batch_norm():
    factor = scale()
    bn = factor.bijectors[1]
    before = bn.moving_mean.numpy().copy()
    x = 2.0 + tf.random.stateless_normal((8, 4, 4, 2), seed=[1, 3])
    factor.inverse(x, training=False)
    np.testing.assert_array_equal(bn.moving_mean, before)
    factor.inverse(fresh(x), training=True)
    assert np.all(bn.moving_mean.numpy() != before)


def test_inner_bijectors_must_keep_the_shape():
    with pytest.raises(ValueError, match=r"map the kept part \[4, 4, 1\] to itself.*\[2, 2, 4\]"):
        bijectors.FactorOut([bijectors.Squeeze()], (4, 4, 2))
    with pytest.raises(ValueError, match="C >= 2"):
        bijectors.FactorOut([], (4, 4, 1))


def test_flow_with_factor_out_round_trips_through_keras_file(tmp_path):
    import keras

    from tfflows import Flow

    flow = Flow([scale()], event_shape=(4, 4, 2))
    path = str(tmp_path / "f.keras")
    flow.save(path)
    loaded = keras.saving.load_model(path)
    (inner,) = loaded.bijectors
    assert [type(b) for b in inner.bijectors] == [type(b) for b in flow.bijectors[0].bijectors]
    x = tf.random.stateless_normal((3, 4, 4, 2), seed=[2, 2])
    np.testing.assert_array_equal(loaded.log_prob(x), flow.log_prob(fresh(x)))
