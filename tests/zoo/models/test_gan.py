import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.model_checks import ModelChecks
from zoo import data
from zoo.models import gan


def mlp(inputs, hidden, outputs, name, activation="relu"):
    layers = [keras.Input((inputs,))]
    layers += [keras.layers.Dense(h, activation=activation) for h in hidden]
    layers += [keras.layers.Dense(outputs, dtype="float32")]
    return keras.Sequential(layers, name=name)


def constant_generator(value):
    """``G(z) = value`` for every z: a Dense layer with zero kernel and bias ``value``."""
    layer = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")
    model = keras.Sequential([keras.Input((1,)), layer], name="generator")
    layer.bias.assign([value])
    return model


def test_losses_match_hand_computed_values():
    real = np.array([2.0, -0.5, 0.3], np.float32)
    fake = np.array([-1.0, 0.7], np.float32)

    def log_sigmoid(t):
        return -np.log1p(np.exp(-t))

    for s in (0.0, 0.1):
        expected = -np.mean((1 - s) * log_sigmoid(real) + s * log_sigmoid(-real)) - np.mean(
            log_sigmoid(-fake)
        )
        np.testing.assert_allclose(gan.discriminator_loss(real, fake, s), expected, rtol=1e-6)
    np.testing.assert_allclose(
        gan.generator_loss(fake, "non_saturating"), -np.mean(log_sigmoid(fake)), rtol=1e-6
    )
    np.testing.assert_allclose(
        gan.generator_loss(fake, "minimax"), np.mean(np.log1p(-1 / (1 + np.exp(-fake)))), rtol=1e-6
    )


def test_wasserstein_losses_and_the_penalty_at_interpolates_match_brute_force():
    """WGAN-GP's critic loss E[D(fake)] - E[D(real)] plus lambda E[(||grad D(x_hat)|| - 1)^2]
    with x_hat = eps x + (1 - eps) fake, one eps per pack, the gradient by central differences
    at those points (a critic whose slope varies, so that the place matters)."""
    real = np.array([2.0, -0.5, 0.3], np.float32)
    fake = np.array([-1.0, 0.7, 0.1], np.float32)
    np.testing.assert_allclose(gan.critic_loss(real, fake), fake.mean() - real.mean(), rtol=1e-6)
    np.testing.assert_allclose(gan.generator_loss(fake, "wasserstein"), -fake.mean(), rtol=1e-6)
    keras.utils.set_random_seed(3)
    model = gan.GAN(
        mlp(2, [8], 3, "generator"),
        mlp(3 * 2, [16], 1, "critic", activation="tanh"),
        latent_dim=2,
        pack=2,
        loss="wasserstein",
        gradient_penalty=7.0,
    )
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    eps = np.array([0.25, 0.8], np.float32)
    loss, real_scores, fake_scores = model.discriminator_objective(x, g, eps=eps)
    x_hat = np.repeat(eps, 2)[:, None] * x + (1 - np.repeat(eps, 2)[:, None]) * g
    np.testing.assert_allclose(model.interpolates(x, g, eps), x_hat, rtol=1e-6)

    def critic(points):  # packs of 2 points, float64 arithmetic on the critic's weights
        (w1, b1), (w2, b2) = [model.discriminator.layers[i].get_weights() for i in (0, 1)]
        h = np.tanh(points.reshape(-1, 6).astype(np.float64) @ w1 + b1)
        return (h @ w2 + b2)[:, 0]

    norms = []
    for p in range(2):
        pack = x_hat[2 * p : 2 * p + 2]
        grad = np.zeros(6)
        for i in range(6):
            step = np.zeros(6)
            step[i] = 1e-4
            up, down = ((pack.reshape(6) + d).reshape(1, 6) for d in (step, -step))
            grad[i] = (critic(up)[0] - critic(down)[0]) / 2e-4
        norms.append(np.linalg.norm(grad))
    _, got = model.penalty(x_hat)
    np.testing.assert_allclose(got, norms, rtol=1e-4)
    expected = critic(g).mean() - critic(x).mean() + 7.0 * np.mean((np.array(norms) - 1) ** 2)
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    np.testing.assert_allclose(real_scores, critic(x), rtol=1e-5)
    np.testing.assert_allclose(fake_scores, critic(g), rtol=1e-5)


def test_a_wgan_gp_critic_reaches_the_wasserstein_distance_with_unit_slope():
    """p_data = N(0, I) in 2-D against a fixed G(z) = z + (2, 0): a translation, whose
    Wasserstein-1 distance is its length, 2, attained by the critic u . x (u the unit shift).
    The penalty is soft: among the critics a u . x the penalized objective 2a - lambda (a - 1)^2
    peaks at a = 1 + 1/lambda = 1.1, so the trained critic's E[D(x)] - E[D(G(z))] lies between
    2 and 2.2 and its gradient norm at the interpolates near 1.1, from the untrained critic's
    0.1. (In 2-D the critic's gradient can turn round; in 1-D a critic sloped the wrong way would
    have to pass slope 0, which the penalty forbids.)"""
    keras.utils.set_random_seed(2)
    generator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)], name="generator")
    generator.set_weights([np.eye(2, dtype=np.float32), np.array([2.0, 0.0], np.float32)])
    model = gan.GAN(
        generator, mlp(2, [64, 64], 1, "critic", activation="tanh"), 2, loss="wasserstein"
    )
    model.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.9),
        g_optimizer=keras.optimizers.SGD(0.0),
    )
    x = tf.random.stateless_normal([4096, 2], [0, 1])
    fake = model.generate(tf.random.stateless_normal([4096, 2], [0, 2]))
    eps = tf.random.stateless_uniform([4096], [0, 3])

    def slope():
        _, norms = model.penalty(model.interpolates(x, fake, eps))
        return float(tf.reduce_mean(norms))

    before = slope()
    real = (
        tf.data.Dataset.from_tensors(tf.zeros([512, 2]))
        .repeat()
        .map(lambda _: tf.random.normal([512, 2]))
    )
    model.fit(real, steps_per_epoch=1200, epochs=1, verbose=0)
    scores = [tf.reduce_mean(model.discriminate(t)) for t in (x, fake)]
    estimate = float(scores[0] - scores[1])
    assert 1.95 < estimate < 2.3, estimate
    after = slope()
    assert abs(before - 1.0) > 0.5 and abs(after - 1.1) < 0.08, (before, after)


@pytest.mark.parametrize("loss", ["non_saturating", "minimax"])
def test_train_step_reports_the_losses_of_its_batch(loss):
    """A linear discriminator, a constant generator and zero learning rates: the step's logged
    losses and scores are the hand-computed ones."""
    keras.utils.set_random_seed(0)
    discriminator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    discriminator.set_weights([np.array([[1.5]], np.float32), np.array([-0.2], np.float32)])
    model = gan.GAN(
        constant_generator(0.4), discriminator, latent_dim=1, loss=loss, label_smoothing=0.1
    )
    model.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.0))
    x = np.array([[0.5], [-1.0], [2.0], [0.0]], np.float32)
    logs = model.train_on_batch(x, return_dict=True)
    real_logits, fake_logit = 1.5 * x[:, 0] - 0.2, 1.5 * 0.4 - 0.2
    fake_logits = np.full(4, fake_logit, np.float32)
    np.testing.assert_allclose(
        logs["d_loss"], gan.discriminator_loss(real_logits, fake_logits, 0.1), rtol=1e-5
    )
    np.testing.assert_allclose(logs["g_loss"], gan.generator_loss(fake_logits, loss), rtol=1e-5)
    sigmoid = 1 / (1 + np.exp(-real_logits))
    np.testing.assert_allclose(logs["real_score"], sigmoid.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["fake_score"], 1 / (1 + math.exp(-fake_logit)), rtol=1e-5)


def normal_pdf(x, mean, std):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def test_discriminator_converges_to_the_optimum_for_a_fixed_generator():
    """p_data = N(0, 1), G(z) = 0.5 z + 1 so p_g = N(1, 0.25): D*(x) = p_data / (p_data + p_g)."""
    keras.utils.set_random_seed(1)
    generator = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)], name="generator")
    generator.set_weights([np.array([[0.5]], np.float32), np.array([1.0], np.float32)])
    model = gan.GAN(generator, mlp(1, [32, 32], 1, "discriminator"), latent_dim=1)
    model.compile(d_optimizer=keras.optimizers.Adam(3e-3), g_optimizer=keras.optimizers.SGD(0.0))
    real = (
        tf.data.Dataset.from_tensors(tf.zeros([1024, 1]))
        .repeat()
        .map(lambda x: tf.random.normal([1024, 1]))
    )
    model.fit(real, steps_per_epoch=1500, epochs=1, verbose=0)
    np.testing.assert_array_equal(generator.get_weights()[0], [[0.5]])
    x = np.linspace(-1.5, 2.5, 81, dtype=np.float32)
    d_model = tf.sigmoid(model.discriminate(x[:, None])).numpy()
    p_data, p_g = normal_pdf(x, 0.0, 1.0), normal_pdf(x, 1.0, 0.5)
    optimum = p_data / (p_data + p_g)
    assert np.max(np.abs(d_model - optimum)) < 0.06, np.max(np.abs(d_model - optimum))


def ring_of_gaussians(n, modes=8, radius=2.0, std=0.05, seed=0):
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * rng.integers(0, modes, n) / modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    return (centers + std * rng.normal(size=(n, 2))).astype(np.float32)


def test_a_short_run_covers_the_eight_modes_of_a_ring():
    keras.utils.set_random_seed(0)
    latent = 8
    model = gan.GAN(
        mlp(latent, [128, 128], 2, "generator"),
        mlp(2 * 2, [128, 128], 1, "discriminator", activation="leaky_relu"),
        latent_dim=latent,
        pack=2,
    )
    model.compile(
        d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
    )
    points = ring_of_gaussians(256 * 1500)
    model.fit(points, batch_size=256, epochs=1, verbose=0, shuffle=False)
    samples = model.generate(tf.random.normal([2000, latent])).numpy()
    centers = 2.0 * np.stack(
        [np.cos(2 * np.pi * np.arange(8) / 8), np.sin(2 * np.pi * np.arange(8) / 8)], 1
    )
    distance = np.linalg.norm(samples[:, None, :] - centers[None], axis=-1)
    nearest, close = distance.argmin(1), distance.min(1) < 0.3
    counts = np.bincount(nearest[close], minlength=8)
    assert np.all(counts >= 40), counts  # each of 8 modes holds >= 2% of the samples
    assert close.mean() > 0.6, close.mean()  # and most samples sit on a mode


def test_packing_stacks_consecutive_samples_along_channels():
    model = gan.DCGAN((8, 8, 2), filters=4, pack=3)
    x = tf.random.normal([6, 8, 8, 2])
    packed = model._packed(x).numpy()
    assert packed.shape == (2, 8, 8, 6)
    np.testing.assert_array_equal(packed[1], np.concatenate([x[3], x[4], x[5]], axis=-1))


@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (28, 28, 3), (32, 32, 3)])
def test_dcgan_is_sized_from_the_image_shape(shape):
    model = gan.DCGAN(shape, latent_dim=16, filters=8, pack=2)
    images = model.generate(tf.random.normal([4, 16]))
    assert images.shape == (4, *shape)
    assert float(tf.reduce_max(tf.abs(images))) <= 1.0
    assert model.discriminate(images).shape == (2,)  # two packs of two


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="loss must be one of"):
        gan.DCGAN((8, 8, 1), loss="hinge")
    with pytest.raises(ValueError, match="gradient_penalty must be >= 0"):
        gan.DCGAN((8, 8, 1), loss="wasserstein", gradient_penalty=-1.0)
    with pytest.raises(ValueError, match="label_smoothing is for the cross-entropy losses"):
        gan.DCGAN((8, 8, 1), loss="wasserstein", label_smoothing=0.1)
    with pytest.raises(ValueError, match="pack must be a whole number >= 1, got 0"):
        gan.DCGAN((8, 8, 1), pack=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        gan.DCGAN((8, 8, 1), label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W, C\)"):
        gan.DCGAN((8, 8))


@pytest.fixture(scope="module")
def digits_batch():
    ds, _ = data.load("digits", "train[:32]", batch_size=32, scaling="symmetric", with_labels=True)
    return next(iter(ds))


def test_dcgan_shared_model_checks(digits_batch, tmp_path):
    z = tf.random.stateless_normal([5, 16], seed=[1, 2])

    def outputs(model, batch):
        return {"generated": model.generate(z), "logits": model.discriminate(batch[0])}

    def signature_inputs(model, batch):
        return {
            "generate": {"z": z.numpy()},
            "discriminate": {"images": ((batch[0].numpy() + 1) / 2)},
        }

    ModelChecks(
        make=lambda **kw: gan.DCGAN((8, 8, 1), latent_dim=16, filters=8, pack=2, **kw),
        batch=digits_batch,
        outputs=outputs,
        signature_inputs=signature_inputs,
        atol=1e-4,
    ).run_all(tmp_path)


def test_wgan_gp_shared_model_checks(digits_batch, tmp_path):
    """`wgan_gp` (the DCGAN players, loss wasserstein): saved, exported, served, and under
    mixed precision with its critic in float32."""
    z = tf.random.stateless_normal([5, 16], seed=[1, 2])
    low = gan.DCGAN((8, 8, 1), filters=8, loss="wasserstein", dtype="mixed_bfloat16")
    assert all(layer.compute_dtype == "float32" for layer in low.discriminator.layers)
    assert low.generator.layers[0].compute_dtype == "bfloat16"

    def outputs(model, batch):
        return {"generated": model.generate(z), "scores": model.discriminate(batch[0])}

    ModelChecks(
        make=lambda **kw: gan.DCGAN(
            (8, 8, 1), latent_dim=16, filters=8, loss="wasserstein", d_steps=2, dropout=0.0, **kw
        ),
        batch=digits_batch,
        outputs=outputs,
        signature_inputs=lambda model, batch: {
            "generate": {"z": z.numpy()},
            "discriminate": {"images": ((batch[0].numpy() + 1) / 2)},
        },
        atol=1e-4,
    ).run_all(tmp_path)


def test_float16_wraps_both_optimizers():
    model = gan.DCGAN((8, 8, 1), filters=4, dtype="mixed_float16")
    model.compile()
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
