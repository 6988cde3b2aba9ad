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
        gan.DCGAN((8, 8, 1), loss="wasserstein")
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


def test_float16_wraps_both_optimizers():
    model = gan.DCGAN((8, 8, 1), filters=4, dtype="mixed_float16")
    model.compile()
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
