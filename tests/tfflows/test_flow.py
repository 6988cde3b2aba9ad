import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.checks import fresh, randomize
from tfflows import Flow, bijectors, masks, nets

tfb = tfp.bijectors
tfd = tfp.distributions

IMAGE = (4, 4, 2)


def image_flow(validate_args=False):
    """Every bijector family in one small image flow: [4, 4, 2] -> latent [2, 2, 8]."""
    cb, ch = masks.checkerboard(IMAGE), masks.channel((2, 2, 8))
    return Flow(
        [
            bijectors.Logit(0.05, validate_args=validate_args),
            bijectors.AffineCoupling(cb, nets.ResNet(8, 1, 4)),
            bijectors.BatchNorm(IMAGE),
            bijectors.AdditiveCoupling(cb.complement(), nets.ResNet(8, 1, 2)),
            bijectors.Squeeze(),
            bijectors.AffineCoupling(ch, nets.ResNet(8, 1, 8)),
            bijectors.Scaling((2, 2, 8)),
        ],
        event_shape=IMAGE,
        validate_args=validate_args,
    )


def pixels(n=8, seed=0):
    return tf.random.stateless_uniform((n, *IMAGE), seed=[seed, 1])


def randomized(flow, seed=0):
    randomize(flow.bijector_layers, seed=seed, scale=0.1)
    return flow


def test_flow_tracks_every_weight_of_every_bijector():
    flow = image_flow()
    expected = {id(w) for layer in flow.bijector_layers for w in layer.weights}
    assert {id(w) for w in flow.weights} == expected
    assert len(flow.non_trainable_weights) == 2  # BatchNorm's running mean and variance
    randomized(flow)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(flow.log_prob(pixels(), training=True))
    grads = tape.gradient(loss, flow.trainable_weights)
    for w, g in zip(flow.trainable_weights, grads, strict=True):
        assert g is not None and np.any(g.numpy() != 0), w.path


def test_log_prob_is_the_change_of_variables_formula():
    flow = randomized(image_flow())
    x = pixels()
    z = flow.encode(x)
    ldj = 0.0
    y = fresh(x)
    for b in flow.bijectors:
        kwargs = {"training": False} if isinstance(b, bijectors.BatchNorm) else {}
        ldj += b.inverse_log_det_jacobian(y, 3, **kwargs)
        y = fresh(b.inverse(y, **kwargs))
    base = tfd.Normal(0.0, 1.0).log_prob(z).numpy().reshape(8, -1).sum(1)
    np.testing.assert_allclose(flow.log_prob(fresh(x)), base + ldj, atol=1e-4)
    np.testing.assert_allclose(flow.decode(z), x, atol=1e-4)


def test_sample_and_log_prob_scores_the_draws_without_the_inverse():
    flow = randomized(image_flow())
    x, log_prob = flow.sample_and_log_prob(6, temperature=0.7, seed=[1, 2])
    np.testing.assert_array_equal(x, flow.sample(6, temperature=0.7, seed=[1, 2]))
    np.testing.assert_allclose(log_prob, flow.log_prob(fresh(x)), rtol=1e-5, atol=1e-3)
    z = flow.encode(fresh(x))
    x_again, log_det = flow.decode_with_log_det(z)
    np.testing.assert_allclose(x_again, x, atol=1e-4)
    np.testing.assert_allclose(log_det, -flow.encode_with_log_det(fresh(x))[1], atol=1e-3)
    with pytest.raises(ValueError, match="num_samples"):
        flow.sample_and_log_prob(0)


def test_flow_equals_tfp_transformed_distribution_over_its_chain():
    flow = randomized(image_flow())
    chain = tfb.Chain(flow.bijectors)
    base = tfd.Sample(tfd.Normal(0.0, 1.0), flow.latent_shape)
    dist = tfd.TransformedDistribution(base, chain)
    bn = flow.bijectors[2]
    x = pixels()
    np.testing.assert_allclose(
        dist.log_prob(x, bijector_kwargs={bn.name: {"training": False}}),
        flow.log_prob(fresh(x)),
        atol=1e-4,
    )


def test_keras_file_round_trip_gives_identical_log_probs(tmp_path):
    flow = randomized(image_flow())
    flow.compile(optimizer="adam")
    flow.fit(pixels(16), batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "flow.keras")
    flow.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(b) for b in loaded.bijectors] == [type(b) for b in flow.bijectors]
    x = pixels(seed=5)
    np.testing.assert_array_equal(loaded.log_prob(x), flow.log_prob(fresh(x)))
    np.testing.assert_array_equal(loaded.sample(3, seed=[7, 7]), flow.sample(3, seed=[7, 7]))


def test_fit_trains_every_weight_and_running_statistics_move_only_in_training():
    flow = image_flow()
    flow.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [w.numpy().copy() for w in flow.weights]
    history = flow.fit(pixels(64), batch_size=16, epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for w, old in zip(flow.weights, before, strict=True):
        assert np.any(w.numpy() != old), f"{w.path} did not change in fit"
    frozen = [w.numpy().copy() for w in flow.non_trainable_weights]
    flow.evaluate(pixels(16), verbose=0)
    flow.predict(pixels(16), verbose=0)
    flow.log_prob(pixels(16))
    flow.sample(4)
    for w, old in zip(flow.non_trainable_weights, frozen, strict=True):
        np.testing.assert_array_equal(w.numpy(), old)


@pytest.mark.parametrize("policy, atol", [("mixed_float16", 1e-4), ("mixed_bfloat16", 1e-4)])
def test_mixed_precision_keeps_density_math_in_float32(dtype_policy, policy, atol):
    dtype_policy(policy)
    flow = randomized(image_flow())
    coupling = flow.bijectors[1]
    low = policy.split("_")[1]
    assert coupling.conditioner.compute_dtype == low
    assert coupling.conditioner(tf.zeros((1, *IMAGE))).dtype == low
    x = pixels()
    log_prob = flow.log_prob(x)
    z, log_det = flow.encode_with_log_det(fresh(x))
    assert log_prob.dtype == z.dtype == log_det.dtype == tf.float32
    assert coupling.forward_log_det_jacobian(tf.zeros((2, *IMAGE)), 3).dtype == tf.float32
    assert np.all(np.isfinite(log_prob))
    np.testing.assert_allclose(flow.decode(z), x, atol=atol)
    flow.compile(optimizer="adam")
    if policy == "mixed_float16":
        assert isinstance(flow.optimizer, keras.optimizers.LossScaleOptimizer)
    history = flow.fit(pixels(32), batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_flow_bad_input_errors_name_the_problem():
    flow = image_flow(validate_args=True)
    with pytest.raises(ValueError, match=r"shape \[4, 4, 2\].*got shape \[8, 4, 4\]"):
        flow.log_prob(tf.zeros((8, 4, 4)))
    with pytest.raises(TypeError, match=r"floating-point data.*uint8.*dequantize"):
        flow.log_prob(tf.zeros((2, *IMAGE), tf.uint8))
    bad = np.full((2, *IMAGE), 0.5, np.float32)
    bad[0, 1, 1, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        flow.log_prob(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"in \[0, 1\]"):
        flow.log_prob(tf.fill((2, *IMAGE), 1.5))
    with pytest.raises(ValueError, match="base_distribution"):
        Flow([], event_shape=[2], base_distribution="cauchy")


def test_logistic_base_distribution():
    flow = Flow([bijectors.Scaling([3])], event_shape=[3], base_distribution="logistic")
    x = tf.constant([[0.0, 1.0, -2.0]])
    np.testing.assert_allclose(
        flow.log_prob(x), tf.reduce_sum(tfd.Logistic(0.0, 1.0).log_prob(x), -1), rtol=1e-6
    )


def test_two_moons_flow_beats_a_full_covariance_gaussian(moons_flow):
    flow, train, test = moons_flow
    flow_ll = float(np.mean(flow.log_prob(test)))
    covariance = np.cov(train, rowvar=False, bias=True).astype(np.float32)
    gaussian = tfd.MultivariateNormalTriL(train.mean(0), np.linalg.cholesky(covariance))
    gauss_ll = float(np.mean(gaussian.log_prob(test)))
    assert flow_ll > gauss_ll + 0.5, (flow_ll, gauss_ll)


def test_trained_density_integrates_to_one(moons_flow):
    flow = moons_flow[0]
    grid = np.linspace(-6.0, 6.0, 601, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    density = np.exp(flow.predict(points, batch_size=65536, verbose=0))
    cell = (grid[1] - grid[0]) ** 2
    assert abs(density.sum() * cell - 1.0) < 0.01
