import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_log_dets_match_autodiff, assert_round_trip, fresh, randomize
from tfflows import Flow, bijectors

SHAPES = [(6,), (4, 4, 2)]


def data(shape, n=32, seed=1):
    return 3.0 + 2.0 * tf.random.stateless_normal((n, *shape), seed=[seed, 0])


@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_and_log_dets_match_autodiff(shape):
    norm = bijectors.ActNorm(shape)
    randomize(norm.keras_layers, seed=2)
    x = data(shape, n=5)
    assert_round_trip(norm, x)
    assert_log_dets_match_autodiff(norm, x)


@pytest.mark.parametrize("shape", SHAPES)
def test_first_training_batch_normalizes_then_the_map_is_fixed(shape):
    norm = bijectors.ActNorm(shape)
    y = data(shape)
    np.testing.assert_array_equal(norm.inverse(y), y)  # identity before initialization
    assert not norm.initialized
    z, log_det = norm.inverse_and_log_det(fresh(y), len(shape), training=True)
    assert norm.initialized
    z = z.numpy()
    axes = tuple(range(z.ndim - 1))
    np.testing.assert_allclose(z.mean(axis=axes), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=axes), 1.0, atol=1e-4)
    # The log-det is that of the map applied, which inference now applies too.
    np.testing.assert_allclose(norm.inverse(fresh(y)), z, atol=1e-5)
    np.testing.assert_allclose(log_det, norm.inverse_log_det_jacobian(fresh(y), len(shape)))
    # Later training batches do not re-initialize.
    norm.inverse(data(shape, seed=7) * 5.0, training=True)
    np.testing.assert_allclose(norm.inverse(fresh(y)), z, atol=1e-5)


def test_sampling_never_initializes():
    norm = bijectors.ActNorm([3])
    norm.forward(data((3,)), training=True)
    assert not norm.initialized


def test_fit_initializes_then_trains_and_keras_file_keeps_it(tmp_path):
    keras.utils.set_random_seed(0)
    points = np.random.default_rng(0).normal([5.0, -3.0, 1.0], [4.0, 0.5, 2.0], (256, 3))
    norm = bijectors.ActNorm([3])
    flow = Flow([norm], event_shape=[3])
    flow.compile(optimizer=keras.optimizers.Adam(1e-2))
    flow.fit(points.astype(np.float32), batch_size=256, epochs=1, verbose=0, shuffle=False)
    state = norm.keras_layers[0]
    # The first step set the initial values from the batch, the maximum-likelihood values for
    # it, so one Adam step (at most the learning rate) barely moved the offsets.
    np.testing.assert_allclose(
        state.initial_log_scale, -np.log(points.std(0)), rtol=1e-3, atol=1e-3
    )
    assert np.all(np.abs(state.log_scale.numpy()) <= 1.01e-2)
    path = str(tmp_path / "flow.keras")
    flow.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.bijectors[0].initialized
    x = points[:8].astype(np.float32)
    np.testing.assert_array_equal(loaded.log_prob(x), flow.log_prob(x))
    # A Gaussian fitted by maximum likelihood: the optimum is the data's own mean and scale.
    flow.fit(points.astype(np.float32), batch_size=256, epochs=200, verbose=0)
    z = flow.encode(points.astype(np.float32)).numpy()
    np.testing.assert_allclose(z.mean(0), 0.0, atol=0.02)
    np.testing.assert_allclose(z.std(0), 1.0, atol=0.02)


def test_a_skipped_first_step_leaves_it_uninitialized():
    norm = bijectors.ActNorm([3])
    flow = Flow([norm], event_shape=[3])
    flow.compile(optimizer="adam")
    bad = np.ones((4, 3), np.float32)
    bad[1, 2] = np.nan
    history = flow.fit(bad, batch_size=4, epochs=1, verbose=0)
    assert history.history["skipped_steps"] == [1.0]
    assert not norm.initialized


def test_bad_event_shape_is_refused():
    with pytest.raises(ValueError, match=r"ActNorm needs an event shape.*\[4, 4\]"):
        bijectors.ActNorm((4, 4))
