import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import randomize
from tests.model_checks import ModelChecks
from zoo import data, registry
from zoo.models import autoencoders


def digits(split="test", n=None):
    """Digits images in [0, 1] (17 levels), one array."""
    ds, _ = data.load("digits", split, scaling="unit", batch_size=2000)
    x = next(iter(ds)).numpy()
    return x if n is None else x[:n]


def discretized_logistic_reference(x, mean, log_scale, num_levels):
    """log P(k) in float64 from the logistic CDF F: log(F(a) - F(b)) with the edge bins taking
    the tails; right of the mean from the survival function 1 - F, so that 1 - 1 does not
    cancel, and in logs, so that far tails do not underflow."""
    s = np.exp(np.maximum(log_scale, autoencoders.MIN_LOG_SCALE))
    h = 0.5 / (num_levels - 1)
    a, b = (x + h - mean) / s, (x - h - mean) / s
    log_cdf_a, log_cdf_b = -np.logaddexp(0.0, -a), -np.logaddexp(0.0, -b)
    log_sf_a, log_sf_b = -np.logaddexp(0.0, a), -np.logaddexp(0.0, b)
    with np.errstate(divide="ignore"):
        left = log_cdf_a + np.log1p(-np.exp(log_cdf_b - log_cdf_a))
        right = log_sf_b + np.log1p(-np.exp(log_sf_a - log_sf_b))
    middle = np.where(b > 0, right, left)
    return np.where(x < h, log_cdf_a, np.where(x > 1.0 - h, log_sf_b, middle))


def small_autoencoder(architecture="dense", **kw):
    if architecture == "conv":
        return autoencoders.Autoencoder(
            (8, 8, 1), architecture="conv", filters=4, hidden_units=(), latent_dim=4, **kw
        )
    return autoencoders.Autoencoder((8, 8, 1), hidden_units=(16,), latent_dim=4, **kw)


def small_vae(**kw):
    return autoencoders.VAE((8, 8, 1), 17, latent_dim=4, hidden_units=(16,), **kw)


@pytest.mark.parametrize("architecture", ["dense", "conv"])
def test_autoencoder_shared_model_checks(architecture, tmp_path):
    batch = digits(n=8)
    ModelChecks(
        make=lambda **kw: small_autoencoder(architecture, **kw),
        batch=batch,
        outputs=lambda model, x: {"reconstruction": model.reconstruct(x), "z": model.encode(x)},
        signature_inputs=lambda model, x: {
            "reconstruct": {"images": x},
            "encode": {"images": x},
            "decode": {"z": model.encode(x).numpy()},
        },
    ).run_all(tmp_path)


def test_vae_shared_model_checks(tmp_path):
    batch = digits(n=8)

    def outputs(model, x):
        mean, log_var = model.posterior(x)
        return {"z_mean": mean, "z_log_var": log_var, "reconstruction": model.reconstruct(x)}

    ModelChecks(
        make=small_vae,
        batch=batch,
        outputs=outputs,
        signature_inputs=lambda model, x: {
            "reconstruct": {"images": x},
            "encode": {"images": x},
            "decode": {"z": model.encode(x).numpy()},
            "sample": {"z": np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)},
            "elbo": {"images": x},
        },
        atol=1e-3,
    ).run_all(tmp_path)


def test_eight_three_eight_learns_a_binary_code():
    model = autoencoders.train_eight_three_eight(seed=0)
    x = autoencoders.one_hot_data()
    np.testing.assert_array_equal(x, np.eye(8))
    np.testing.assert_array_equal(np.argmax(model.reconstruct(x), axis=1), np.arange(8))
    codes = np.asarray(model.encode(x))
    assert codes.shape == (8, 3)
    words = {tuple(w) for w in (codes > 0.5).astype(int)}
    assert len(words) == 8, codes
    assert autoencoders.eight_three_eight_solved(model)
    config = model.get_config()
    assert (config["latent_dim"], config["latent_activation"]) == (3, "sigmoid")


def test_denoising_noise_is_applied_in_training_only():
    x = digits(n=64)
    model = small_autoencoder(noise_std=100.0)
    randomize([model.encoder, model.decoder], seed=1, scale=0.3)
    by_hand = tf.sigmoid(model.decoder(model.encoder(x))).numpy()
    np.testing.assert_array_equal(model.reconstruct(x), model.reconstruct(x))
    np.testing.assert_allclose(model.reconstruct(x), by_hand, atol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), by_hand, atol=1e-6)
    clean = np.mean((x - by_hand) ** 2)

    model.compile(optimizer=keras.optimizers.SGD(0.0))
    results = model.evaluate(x, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], clean, rtol=1e-5)
    np.testing.assert_allclose(results["mse"], clean, rtol=1e-5)
    noisy = model.fit(tf.data.Dataset.from_tensors(x), verbose=0, shuffle=False).history["loss"][0]
    assert abs(noisy - clean) > 0.05, (noisy, clean)
    np.testing.assert_allclose(model.reconstruct(x), by_hand, atol=1e-6)  # lr 0: unchanged

    quiet = small_autoencoder()
    quiet.set_weights(model.get_weights())
    quiet.compile(optimizer=keras.optimizers.SGD(0.0))
    same = quiet.fit(tf.data.Dataset.from_tensors(x), verbose=0, shuffle=False).history["loss"][0]
    np.testing.assert_allclose(same, clean, rtol=1e-5)


def test_fit_lowers_the_held_out_loss_and_psnr_is_per_example(tmp_path):
    keras.utils.set_random_seed(0)
    train, info = data.load("digits", "train[:512]", scaling="unit", batch_size=64)
    test, _ = data.load("digits", "test", scaling="unit", batch_size=297)
    model = autoencoders.Autoencoder.from_data(info, hidden_units=(64,), latent_dim=8)
    model.compile(**model.compile_defaults(2e-3))
    before = model.evaluate(test, verbose=0, return_dict=True)
    model.fit(train, epochs=4, verbose=0, shuffle=False)
    after = model.evaluate(test, verbose=0, return_dict=True)
    assert after["loss"] < 0.7 * before["loss"], (before, after)

    x = next(iter(test)).numpy()
    mse = np.mean((model.reconstruct(x).numpy() - x) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(after["mse"], mse.mean(), rtol=1e-5)
    np.testing.assert_allclose(after["psnr"], np.mean(10 * np.log10(1.0 / mse)), rtol=1e-5)
    assert after["psnr"] > 10 * np.log10(1.0 / mse.mean())  # Jensen: not the PSNR of the mean
    smaller = data.load("digits", "test", scaling="unit", batch_size=50)[0]
    again = model.evaluate(smaller, verbose=0, return_dict=True)
    for key in ("loss", "mse", "psnr"):
        np.testing.assert_allclose(again[key], after[key], rtol=1e-5)
    assert model.headline(after) == {
        "held_out_mse": round(after["mse"], 4),
        "held_out_psnr": round(after["psnr"], 4),
    }
    assert model.write_artifacts(str(tmp_path), test) == ["reconstructions.png"]
    assert (tmp_path / "reconstructions.png").stat().st_size > 1000


@pytest.mark.parametrize("num_levels", [17, 256])
def test_discretized_logistic_is_a_pmf_matching_the_logistic_cdf(num_levels):
    rng = np.random.default_rng(num_levels)
    levels = np.arange(num_levels)[:, None] / (num_levels - 1)
    mean = rng.uniform(-0.5, 1.5, size=(1, 40))
    log_scale = rng.uniform(-9.0, 1.0, size=(1, 40))
    mean[0, :3], log_scale[0, :3] = (0.0, 1.0, 0.5), (-7.0, -7.0, 4.0)
    x, m, s = (a.astype(np.float32) for a in np.broadcast_arrays(levels, mean, log_scale))
    log_p = autoencoders.discretized_logistic_log_prob(x, m, s, num_levels).numpy()
    assert log_p.dtype == np.float32 and np.all(np.isfinite(log_p))
    np.testing.assert_allclose(np.exp(log_p).sum(axis=0), 1.0, atol=2e-5)
    reference = discretized_logistic_reference(
        *(a.astype(np.float64) for a in (x, m, s)), num_levels
    )
    np.testing.assert_allclose(np.exp(log_p), np.exp(reference), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_p, reference, rtol=1e-4, atol=1e-4)


def test_gaussian_kl_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(3, 4))
    log_var = rng.normal(scale=0.7, size=(3, 4))
    eps = rng.normal(size=(200_000, 3, 4))
    z = mean + np.exp(0.5 * log_var) * eps
    log_ratio = np.sum(-0.5 * eps**2 - 0.5 * log_var + 0.5 * z**2, axis=-1)
    kl = autoencoders.gaussian_kl(mean.astype(np.float32), log_var.astype(np.float32)).numpy()
    standard_error = log_ratio.std(axis=0) / math.sqrt(len(eps))
    assert np.all(np.abs(kl - log_ratio.mean(axis=0)) < 4 * standard_error), (kl, log_ratio)


@pytest.mark.parametrize("likelihood", ["discretized_logistic", "bernoulli"])
def test_elbo_iw_bound_and_metrics_match_a_hand_computation(likelihood):
    levels = 5 if likelihood == "discretized_logistic" else 2
    model = autoencoders.VAE((4,), levels, latent_dim=2, hidden_units=(), likelihood=likelihood)
    randomize([model.encoder, model.decoder], seed=3, scale=0.8)
    w_enc, b_enc, w_dec, b_dec = (w.numpy().astype(np.float64) for w in model.weights)
    rng = np.random.default_rng(1)
    x = rng.integers(0, levels, size=(6, 4)) / (levels - 1)
    h = x @ w_enc + b_enc
    mu, log_var = h[:, :2], h[:, 2:]

    def log_likelihood(z):
        params = z @ w_dec + b_dec
        if likelihood == "discretized_logistic":
            log_p = discretized_logistic_reference(x, params[..., :4], params[..., 4:], levels)
        else:
            log_p = -np.logaddexp(0.0, np.where(x == 1.0, -params, params))
        return np.sum(log_p, axis=-1)

    def log_normal(z, mean, log_var):
        return np.sum(
            -0.5 * ((z - mean) ** 2 / np.exp(log_var) + log_var + math.log(2 * math.pi)), -1
        )

    eps = rng.normal(size=(6, 2))
    kl = 0.5 * np.sum(mu**2 + np.exp(log_var) - 1.0 - log_var, axis=1)
    got_ll, got_kl = model.elbo_terms(x.astype(np.float32), eps.astype(np.float32))
    np.testing.assert_allclose(got_ll, log_likelihood(mu + np.exp(0.5 * log_var) * eps), rtol=1e-4)
    np.testing.assert_allclose(got_kl, kl, rtol=1e-4)

    # The bound's draws are those of its stateless seed, eps [k, batch, latent_dim].
    eps = tf.random.stateless_normal([7, 6, 2], seed=[7, 8]).numpy().astype(np.float64)
    z = mu + np.exp(0.5 * log_var) * eps
    log_w = log_likelihood(z) + log_normal(z, 0.0, 0.0) - log_normal(z, mu, log_var)
    bound = np.log(np.mean(np.exp(log_w - log_w.max(0)), axis=0)) + log_w.max(0)
    got = model.iw_log_likelihood(x.astype(np.float32), num_samples=7, seed=[7, 8])
    np.testing.assert_allclose(got, bound, rtol=1e-4)

    model.compile(optimizer="adam")
    results = model.evaluate(x.astype(np.float32), verbose=0, return_dict=True, batch_size=4)
    np.testing.assert_allclose(results["kl"], kl.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        results["loss"], results["reconstruction"] + results["kl"], rtol=1e-6
    )
    np.testing.assert_allclose(
        results["bits_per_dim"], results["loss"] / (4 * math.log(2)), rtol=1e-6
    )


def test_bits_per_dim_only_for_a_proper_likelihood():
    assert "bits_per_dim" not in [
        m.name for m in autoencoders.VAE((4,), 17, likelihood="bernoulli").metrics
    ]
    assert "bits_per_dim" in [
        m.name for m in autoencoders.VAE((4,), 2, likelihood="bernoulli").metrics
    ]


def test_importance_weighted_bound():
    keras.utils.set_random_seed(0)
    model = small_vae()
    x = digits(n=4)
    draws = 400
    repeated = np.tile(x, (draws, 1, 1, 1))
    elbo = model.elbo(repeated, seed=[1, 2]).numpy().reshape(draws, 4)
    iw_1 = model.iw_log_likelihood(repeated, num_samples=1, seed=[3, 4]).numpy()
    iw_1 = iw_1.reshape(draws, 4)
    iw_50 = model.iw_log_likelihood(np.tile(x, (20, 1, 1, 1)), num_samples=50, seed=[5, 6])
    iw_50 = iw_50.numpy().reshape(20, 4)
    error = np.sqrt(elbo.var(axis=0) + iw_1.var(axis=0)) / math.sqrt(draws)
    assert np.all(np.abs(iw_1.mean(axis=0) - elbo.mean(axis=0)) < 4 * error)
    assert np.all(iw_50.mean(axis=0) > iw_1.mean(axis=0) + 4 * error), (iw_50, iw_1)
    assert np.all(iw_1 <= 0.0) and np.all(iw_50 <= 0.0)
    np.testing.assert_allclose(
        model.iw_bits_per_dim(x, 50, seed=[5, 6]),
        -model.iw_log_likelihood(x, 50, seed=[5, 6]) / (64 * math.log(2)),
        rtol=1e-6,
    )


def test_iwae_objective_is_the_importance_weighted_bound():
    """With ``iw_samples = k`` the loss of each example is ``-L_k`` of the step's ``k`` draws
    (the same as `iw_log_likelihood` for the same draws), and on average no more than the
    ELBO's: ``L_k >= L_1``."""
    keras.utils.set_random_seed(0)
    model = small_vae(iw_samples=5)
    x = tf.constant(digits(n=6))
    eps = tf.random.stateless_normal([5, 6, 4], seed=[3, 4])
    loss, (_, log_likelihood, kl) = model._objective(x, eps)
    np.testing.assert_allclose(loss, -model.iw_log_likelihood(x, 5, seed=[3, 4]), rtol=1e-5)
    mean, log_var = model.posterior(x)
    np.testing.assert_allclose(kl, autoencoders.gaussian_kl(mean, log_var), rtol=1e-6)
    per_draw = [model.elbo_terms(x, eps[i])[0] for i in range(5)]
    np.testing.assert_allclose(log_likelihood, np.mean(per_draw, 0), rtol=1e-5)
    elbo = np.mean([model.elbo(x, seed=[9, i]) for i in range(200)], axis=0)
    bound = np.mean([model.iw_log_likelihood(x, 5, seed=[9, i]) for i in range(40)], axis=0)
    assert np.all(bound > elbo), (bound, elbo)
    again = autoencoders.VAE.from_config(model.get_config())
    assert again.iw_samples == 5


def test_iwae_fit_lowers_its_bound(tmp_path):
    keras.utils.set_random_seed(0)
    train, info = data.load("digits", "train[:512]", scaling="unit", batch_size=64)
    test, _ = data.load("digits", "test", scaling="unit", batch_size=297)
    model = autoencoders.VAE.from_data(info, latent_dim=8, hidden_units=(64,), iw_samples=4)
    model.compile(**model.compile_defaults(2e-3))
    before = model.evaluate(test, verbose=0, return_dict=True)
    model.fit(train, epochs=3, verbose=0, shuffle=False)
    after = model.evaluate(test, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] - 20.0, (before, after)
    assert after["loss"] < after["reconstruction"] + after["kl"]  # L_4 above the ELBO


def test_vae_fit_lowers_the_held_out_loss(tmp_path):
    keras.utils.set_random_seed(0)
    train, info = data.load("digits", "train[:512]", scaling="unit", batch_size=64)
    test, _ = data.load("digits", "test", scaling="unit", batch_size=297)
    model = autoencoders.VAE.from_data(info, latent_dim=8, hidden_units=(64,))
    model.compile(**model.compile_defaults(2e-3))
    before = model.evaluate(test, verbose=0, return_dict=True)
    model.fit(train, epochs=4, verbose=0, shuffle=False)
    after = model.evaluate(test, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] - 20.0, (before, after)
    headline = model.headline(after)
    assert headline["held_out_bits_per_dim"] == round(after["bits_per_dim"], 4)
    assert headline["held_out_kl"] == round(after["kl"], 4)
    samples = model.sample(6, seed=[1, 2])
    np.testing.assert_array_equal(samples, model.sample(6, seed=[1, 2]))
    assert 0.0 <= float(tf.reduce_min(samples)) and float(tf.reduce_max(samples)) <= 1.0
    files = model.write_artifacts(str(tmp_path), test)
    assert files == ["samples.png", "reconstructions.png"]
    assert all((tmp_path / f).stat().st_size > 1000 for f in files)


def test_registry_and_data_checks():
    _, info = data.load("digits", "test[:8]", scaling="unit")
    conv = registry.create_model("conv_autoencoder", info, latent_dim=4, filters=4)
    assert conv.architecture == "conv" and conv.image_shape == (8, 8, 1)
    assert registry.entry("autoencoder").task == "representation"
    vae = registry.create_model("vae", info, latent_dim=4, hidden_units=(8,))
    assert registry.entry("vae").task == "density" and vae.num_levels == 17
    vae.check_data(info)
    with pytest.raises(ValueError, match="256 levels; digits has 17"):
        autoencoders.VAE((8, 8, 1), 256, latent_dim=2, hidden_units=()).check_data(info)
    with pytest.raises(ValueError, match=r"expects images \[4, 4, 1\]"):
        autoencoders.Autoencoder((4, 4, 1), hidden_units=()).check_data(info)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: autoencoders.Autoencoder((8,), latent_dim=0),
            "latent_dim must be a whole number >= 1, got 0",
        ),
        (lambda: autoencoders.Autoencoder((8,), architecture="mlp"), "architecture must be"),
        (lambda: autoencoders.Autoencoder((8,), architecture="conv"), "needs image_shape"),
        (lambda: autoencoders.Autoencoder((0, 8, 1)), "image_shape must be positive"),
        (lambda: autoencoders.Autoencoder((8,), hidden_units=(0,)), "hidden_units must be"),
        (lambda: autoencoders.Autoencoder((8,), noise_std=-1.0), "noise_std must be non-neg"),
        (lambda: autoencoders.Autoencoder((8,), reconstruction_loss="l1"), "reconstruction_loss"),
        (
            lambda: autoencoders.Autoencoder(
                (8,), output_activation=None, reconstruction_loss="bce"
            ),
            "needs outputs in",
        ),
        (lambda: autoencoders.Autoencoder((8,), activation="nope"), "'nope' is not a Keras"),
        (lambda: autoencoders.VAE((8,), 17, likelihood="gaussian"), "likelihood must be one of"),
        (lambda: autoencoders.VAE((8,), 1), "num_levels must be at least 2"),
        (
            lambda: autoencoders.VAE((8,), 17, latent_dim=0),
            "latent_dim must be a whole number >= 1, got 0",
        ),
        (
            lambda: autoencoders.VAE((8,), 17, iw_samples=0),
            "iw_samples must be a whole number >= 1, got 0",
        ),
        (
            lambda: autoencoders.VAE((8,), 17, hidden_units=()).iw_log_likelihood(
                np.zeros((1, 8), np.float32), num_samples=0
            ),
            "num_samples must be a whole number >= 1, got 0",
        ),
    ],
)
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
