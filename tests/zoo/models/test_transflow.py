import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from tests.checks import randomize
from tests.model_checks import ModelChecks
from zoo import cli, data
from zoo.models import flows
from zoo.models.transflow import Transflow
from zoo.serving import export, presets

tfd = tfp.distributions


class Identity:
    """A "flow" whose latent is its input, for checking the posterior's math exactly."""

    def __init__(self, dims, base_distribution="normal"):
        self.image_shape = self.latent_shape = (dims,)
        self.base_distribution = base_distribution

    def encode(self, x):
        return x

    def decode(self, z):
        return z


class IdentityWithClassPrior(Identity):
    """`Identity` with a class-conditional base, as a flow with ``conditioning="prior"`` has:
    class ``c``'s latents ``N(loc[c], diag(scale[c]^2))``."""

    context_size = 3
    conditional_base = True
    maps_with_context = False
    loc = np.array([[0.0, 2.0], [1.0, 2.0], [2.0, 2.0]])  # dimension 1: no class differs
    scale = np.array([[1.0, 0.5], [1.5, 0.5], [0.5, 0.5]])

    def __init__(self):
        super().__init__(2)

    def base(self, context):
        c = tf.argmax(context, axis=-1)
        return tfd.Independent(tfd.Normal(tf.gather(self.loc, c), tf.gather(self.scale, c)), 1)


def posterior_of(z, **kw):
    model = Transflow(Identity(z.shape[1], kw.pop("base", "normal")), **kw)
    model.observe(z)
    return model, {k: v.numpy()[0] for k, v in model.posterior().items()}


def test_the_fixed_variance_posterior_is_the_brute_force_one():
    z = np.array([[0.7, -1.2], [1.9, -0.4], [1.1, 0.3]])
    _, post = posterior_of(z, strength=2.0)
    grid = np.linspace(-6, 6, 24001)
    for d in range(2):
        # p(mu | z) on a grid: prior N(0, 1 / 2) times the likelihood of each z_i ~ N(mu, 1).
        log_p = stats.norm.logpdf(grid, 0, math.sqrt(1 / 2.0))
        log_p += stats.norm.logpdf(z[:, d][:, None], grid, 1.0).sum(axis=0)
        p = np.exp(log_p - log_p.max())
        p /= p.sum()
        mean = np.sum(grid * p)
        np.testing.assert_allclose(post["mean"][d], mean, atol=1e-6)
        np.testing.assert_allclose(
            post["mean_variance"][d], np.sum((grid - mean) ** 2 * p), atol=1e-6
        )
        # The predictive: N(mu, 1) averaged over the posterior of mu.
        for x in (-1.0, 0.5, 3.0):
            brute = np.sum(stats.norm.pdf(x, grid, 1.0) * p)
            exact = stats.norm.pdf(x, post["mean"][d], post["scale"][d])
            np.testing.assert_allclose(exact, brute, rtol=1e-5)


def test_the_estimated_variance_predictive_is_the_brute_force_one():
    z = np.array([[0.7], [1.9], [1.1], [1.4]])
    strength, s2 = 1.5, 1.0
    model, post = posterior_of(z, strength=strength, variance="estimate")
    # p(mu, sigma^2 | z) on a grid: N(mu; 0, sigma^2 / k0) IG(sigma^2; k0 / 2 + 1, k0 s2 / 2)
    # times the likelihood; the predictive integrates N(x; mu, sigma^2) over it.
    mu = np.linspace(-4, 6, 1201)[:, None]
    var = np.linspace(0.01, 12, 1600)[None, :]
    log_p = stats.norm.logpdf(mu, 0, np.sqrt(var / strength))
    log_p += stats.invgamma.logpdf(var, strength / 2 + 1, scale=strength * s2 / 2)
    log_p += stats.norm.logpdf(z[:, 0][:, None, None], mu, np.sqrt(var)).sum(axis=0)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    for x in (-1.0, 1.2, 4.0):
        brute = np.sum(stats.norm.pdf(x, mu, np.sqrt(var)) * p)
        log_prob = model.class_log_probs(np.array([[x]])).numpy()[0, 0]
        np.testing.assert_allclose(np.exp(log_prob), brute, rtol=2e-3)
    np.testing.assert_allclose(post["mean"], np.sum(mu * p), atol=1e-4)


def test_a_flows_class_prior_gives_the_brute_force_posterior():
    """The empirical-Bayes prior of a flow with a class prior: mu ~ N(m_0, b / strength),
    z ~ N(mu, w), with m_0, b, w the mean and variance of the classes' base means and the mean
    of their base variances; a dimension where no class differs keeps the prior."""
    flow, strength = IdentityWithClassPrior(), 2.0
    m0, b = flow.loc.mean(axis=0), flow.loc.var(axis=0)
    w = np.mean(flow.scale**2, axis=0)
    z = np.array([[0.7, -1.2], [1.9, -0.4], [1.1, 0.3]])
    model = Transflow(flow, strength=strength)
    model.observe(z)
    post = {k: v.numpy()[0] for k, v in model.posterior().items()}
    grid = np.linspace(-6, 8, 28001)
    log_p = stats.norm.logpdf(grid, m0[0], math.sqrt(b[0] / strength))
    log_p += stats.norm.logpdf(z[:, 0][:, None], grid, math.sqrt(w[0])).sum(axis=0)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    mean = np.sum(grid * p)
    np.testing.assert_allclose(post["mean"][0], mean, atol=1e-6)
    np.testing.assert_allclose(post["mean_variance"][0], np.sum((grid - mean) ** 2 * p), atol=1e-6)
    for x in (-1.0, 0.5, 3.0):
        brute = np.sum(stats.norm.pdf(x, grid, math.sqrt(w[0])) * p)
        np.testing.assert_allclose(
            stats.norm.pdf(x, post["mean"][0], post["scale"][0]), brute, rtol=1e-5
        )
    np.testing.assert_allclose(post["mean"][1], m0[1], atol=1e-9)  # the examples move it not
    np.testing.assert_allclose(post["scale"][1] ** 2, w[1], rtol=1e-9)
    # So that dimension does not tell classes apart: the classes' log-probs differ by the same
    # amount whatever a query's value in it.
    classes = Transflow(flow, num_classes=2, strength=strength)
    classes.observe(np.array([[0.0, 5.0], [2.0, -3.0]]), np.array([0, 1]))
    queries = np.array([[1.3, -4.0], [1.3, 2.0], [1.3, 9.0]])
    log_probs = classes.class_log_probs(queries).numpy()
    np.testing.assert_allclose(np.ptp(log_probs[:, 0] - log_probs[:, 1]), 0.0, atol=1e-9)


def test_a_flows_class_prior_gives_the_brute_force_estimated_variance_predictive():
    flow, strength = IdentityWithClassPrior(), 1.5
    m0, b = flow.loc.mean(axis=0)[0], flow.loc.var(axis=0)[0]
    w = np.mean(flow.scale**2, axis=0)[0]
    kappa0 = strength * w / b
    z = np.array([[0.7, 2.0], [1.9, 2.0], [1.1, 2.0], [1.4, 2.0]])
    model = Transflow(flow, strength=strength, variance="estimate")
    model.observe(z)
    # N(mu; m_0, sigma^2 / kappa_0) IG(sigma^2; strength / 2 + 1, strength w / 2) times the
    # likelihood, on a grid; the predictive integrates N(x; mu, sigma^2) over it.
    mu = np.linspace(-4, 6, 1201)[:, None]
    var = np.linspace(0.01, 12, 1600)[None, :]
    log_p = stats.norm.logpdf(mu, m0, np.sqrt(var / kappa0))
    log_p += stats.invgamma.logpdf(var, strength / 2 + 1, scale=strength * w / 2)
    log_p += stats.norm.logpdf(z[:, 0][:, None, None], mu, np.sqrt(var)).sum(axis=0)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    post = model._predictive({k: v[0] for k, v in model.posterior().items()})
    for x in (-1.0, 1.2, 4.0):
        brute = np.sum(stats.norm.pdf(x, mu, np.sqrt(var)) * p)
        exact = np.exp(post.log_prob([x, 2.0]).numpy()[0])
        np.testing.assert_allclose(exact, brute, rtol=2e-3)
    np.testing.assert_allclose(model.posterior()["mean"][0, 0], np.sum(mu * p), atol=1e-4)


def test_no_examples_give_the_prior_and_many_give_their_mean():
    _, prior = posterior_of(np.zeros((0, 3)), strength=2.0)
    np.testing.assert_array_equal(prior["mean"], 0.0)
    np.testing.assert_allclose(prior["mean_variance"], 1.0 / 2.0)
    # NICE's logistic base: the rule moment-matches it, variance pi^2 / 3.
    _, logistic = posterior_of(np.zeros((0, 3)), base="logistic")
    np.testing.assert_allclose(logistic["mean_variance"], math.pi**2 / 3)
    z = np.random.default_rng(0).normal(3.0, 0.5, size=(20000, 3))
    for variance in ("fixed", "estimate"):
        _, post = posterior_of(z, variance=variance)
        np.testing.assert_allclose(post["mean"], z.mean(axis=0), atol=1e-3)
        assert np.all(post["mean_variance"] < 1e-4)
    _, estimated = posterior_of(z, variance="estimate")
    np.testing.assert_allclose(estimated["scale"] ** 2, 0.25, rtol=0.03)  # the examples' spread


@pytest.mark.parametrize("variance", ["fixed", "estimate"])
def test_samples_have_the_posterior_predictive_statistics(variance):
    z = np.random.default_rng(1).normal([2.0, -1.0], [0.3, 2.0], size=(6, 2))
    model, post = posterior_of(z, strength=1.0, variance=variance)
    draws = model.sample_latents(40000, temperature=0.7, seed=[3, 4]).numpy()
    np.testing.assert_allclose(draws.mean(axis=0), post["mean"], atol=0.03)
    sd = 0.7 * post["scale"]
    if variance == "estimate":
        sd = sd * np.sqrt(post["df"] / (post["df"] - 2))
    np.testing.assert_allclose(draws.std(axis=0), sd, rtol=0.03)
    # Images are those latents decoded (here the identity), clipped to [0, 1].
    images = model.sample(5, temperature=0.7, seed=[3, 4]).numpy()
    np.testing.assert_allclose(images, np.clip(draws[:5], 0, 1), atol=1e-6)


def test_fit_is_one_pass_whatever_the_epochs_and_batches():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    model = Transflow(Identity(4), num_classes=3)
    model.compile()
    model.fit(x, y, batch_size=7, epochs=3, verbose=0)
    reference = Transflow(Identity(4), num_classes=3)
    reference.observe(x, y)
    for a, b in zip(model.posterior().values(), reference.posterior().values(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_array_equal(model.count.numpy(), np.bincount(y, minlength=3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be < 3"):
        model.observe(x[:2], np.array([0, 3]))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="variance must be one of"):
        Transflow(Identity(2), variance="learned")
    with pytest.raises(ValueError, match="strength must be positive"):
        Transflow(Identity(2), strength=0)
    with pytest.raises(FileNotFoundError, match="No flow at"):
        Transflow("no/such/flow.keras")
    with pytest.raises(TypeError, match="not a flow"):
        Transflow(object())


@pytest.fixture(scope="module")
def digits():
    spec = dict(scaling=Transflow.data_spec.scaling, with_labels=True)
    train, info = data.load("digits", "train", batch_size=256, per_class=5, seed=0, **spec)
    test, _ = data.load("digits", "test", batch_size=512, **spec)
    return train, test, info


@pytest.fixture(scope="module")
def digits_savedmodel(tmp_path_factory):
    """The shipped realnvp_digits preset as the SavedModel `zoo export` writes."""
    base = str(tmp_path_factory.mktemp("export"))
    return export.export(presets.load_model("realnvp_digits"), base, model_name="realnvp_digits")


@pytest.mark.parametrize("preset", ["realnvp_digits", "nice_digits", "realnvp_flat_digits"])
def test_few_shot_digits_from_the_shipped_flows(preset, digits, digits_savedmodel):
    """From each preset's .keras file, and from realnvp_digits' SavedModel."""
    train, test, info = digits
    flow = digits_savedmodel if preset == "realnvp_digits" else presets.model_file(preset)
    model = Transflow.from_data(info, flow=flow, variance="estimate")
    assert model.base_variance == (math.pi**2 / 3 if "nice" in preset else 1.0)
    model.compile()
    model.fit(train, verbose=0)
    assert model.count.numpy().tolist() == [5.0] * 10
    accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    # 5 examples per class; chance is 0.1. The flows' latents are no feature space: nearest
    # neighbour in them scores 0.34 (pixels: 0.88); see bench/mnist_transflow.py.
    assert accuracy > 0.35, accuracy
    images = model.sample(4, 0.8, seed=[0, 1], class_id=3).numpy()
    assert images.shape == (4, 8, 8, 1) and np.all((images >= 0) & (images <= 1))


def test_keras_citizen_round_trips_and_export(digits, tmp_path):
    train, test, info = digits
    keras.utils.set_random_seed(0)
    flow = flows.RealNVP(info.image_shape, info.num_levels, num_scales=1, filters=4, num_blocks=1)
    flow.save(str(tmp_path / "flow.keras"))

    def make(variance="estimate", **kw):  # the Student-t predictive's sampling path
        return Transflow(flows.RealNVP.from_config(flow.get_config()), 10, variance=variance, **kw)

    model = make()
    model.flow.set_weights(flow.get_weights())
    model.compile()
    model.fit(train, verbose=0)
    x, y = next(iter(test))
    checks = ModelChecks(
        make=make,
        batch=(x, y),
        outputs=lambda m, batch: m.classify(batch[0]),
        signature_inputs=lambda m, batch: {
            "classify": {"images": batch[0].numpy()},
            "sample": {
                "class_ids": np.array([0, 3, 9], np.int64),
                "temperature": np.float32(0.7),
                "seed": np.array([1, 2], np.int64),
            },
        },
    )
    checks.check_config_round_trip()
    checks.check_keras_reload(tmp_path, model)
    checks.check_export_in_fresh_process(tmp_path)
    # From the .keras file by path: the path is kept in the config, the posterior in the file.
    by_path = Transflow(str(tmp_path / "flow.keras"), 10)
    assert by_path.get_config()["flow"] == os.path.abspath(tmp_path / "flow.keras")
    same = make()
    same.flow.set_weights(flow.get_weights())
    for m in (by_path, same):
        m.observe(x, y)
    np.testing.assert_allclose(by_path.posterior()["mean"], same.posterior()["mean"], rtol=1e-6)
    # Samples are scored in the forward pass: the class predictive at f(x) plus the flow's
    # log-det; so are a SavedModel flow's (its decode signature gives the log-det).
    exported = export.export(flow, str(tmp_path / "flow"), model_name="flow")
    saved = Transflow(exported, 10, variance="estimate")
    for name in ("count", "total", "total_squares"):
        getattr(saved, name).assign(getattr(model, name))
    predictive = model._predictive({k: v[3] for k, v in model.posterior().items()})
    # Unclipped draws may leave [0, 1] by a little; score them with the range check off.
    unchecked = flows.RealNVP.from_config({**flow.get_config(), "validate_args": False})
    unchecked.set_weights(flow.get_weights())
    for scored in (model, saved):
        images, log_prob = scored.sample_and_log_prob(3, 0.8, seed=[0, 1], class_id=3)
        z, log_det = unchecked.encode_with_log_det(images)
        latent = predictive.log_prob(tf.cast(tf.reshape(z, [3, -1]), tf.float64))
        want = tf.reduce_sum(latent, axis=-1).numpy() + log_det.numpy()
        np.testing.assert_allclose(log_prob, want, rtol=1e-4, atol=0.05)
    # On a flow computing in bfloat16 the statistics stay float64 and close to float32's.
    low = Transflow(flows.RealNVP.from_config({**flow.get_config(), "dtype": "mixed_bfloat16"}), 10)
    low.flow.set_weights(flow.get_weights())
    low.observe(x, y)
    assert low.total.dtype == "float64"
    agree = np.mean(low.classify(x)["class_ids"].numpy() == same.classify(x)["class_ids"].numpy())
    assert agree > 0.8, agree


def test_zoo_transflow_command_on_a_shipped_savedmodel(tmp_path, digits_savedmodel):
    out = str(tmp_path / "run")
    command = ["transflow", digits_savedmodel, "--examples-per-class", "5", "--out", out]
    metrics = cli.run(command)
    assert metrics["held_out_accuracy"] > 0.35 and metrics["train_examples"] == 50
    assert metrics["train_examples_per_second"] is None  # one batch: no steady state to time
    for picture in ["samples.png", "interpolation.png", "confusion_matrix.png"]:
        with open(os.path.join(out, picture), "rb") as f:
            assert f.read(4) == b"\x89PNG", picture
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f)["config"]["flow"] == os.path.abspath(digits_savedmodel)
    # The export carries the SavedModel flow's functions along with the posterior.
    loaded = tf.saved_model.load(metrics["export"])
    test, _ = data.load("digits", "test", batch_size=64, scaling="centered")
    x = next(iter(test))
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    got = loaded.signatures["classify"](images=x)
    np.testing.assert_array_equal(got["class_ids"], model.classify(x)["class_ids"])
    images = loaded.signatures["sample"](
        class_ids=tf.constant([1, 2], tf.int64),
        temperature=tf.constant(0.5),
        seed=tf.constant([0, 1], tf.int64),
    )["images"]
    assert images.shape == (2, 8, 8, 1)


def test_a_class_prior_flow_gives_the_same_posterior_from_keras_and_its_savedmodel(tmp_path):
    """A RealNVP with the class in its prior alone: Transflow reads its class prior (the
    base's ``loc`` and ``scale`` per class) from the model and from the exported
    ``class_prior`` signature alike; a flow with the class in its couplings is refused."""
    keras.utils.set_random_seed(0)
    flow = flows.RealNVP(
        (8, 8, 1), 17, num_scales=2, filters=4, num_blocks=1, num_classes=3, conditioning="prior"
    )
    randomize([flow.base_layer], seed=1, scale=0.3)
    exported = export.export(flow, str(tmp_path / "flow"), model_name="flow")
    x = tf.random.stateless_uniform((6, 8, 8, 1), [0, 1], minval=0.02, maxval=0.98)
    y = np.array([0, 0, 1, 1, 2, 2])
    models = [Transflow(f, num_classes=3, variance="estimate") for f in (flow, exported)]
    base = flow.base(context=tf.eye(3)).distribution
    loc, scale = (v.numpy().reshape(3, -1) for v in (base.loc, base.scale))
    for model in models:
        m0, w, b = model.flow_prior()
        np.testing.assert_allclose(m0, loc.mean(axis=0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(b, loc.var(axis=0), rtol=1e-4, atol=1e-12)
        np.testing.assert_allclose(w, np.mean(scale**2, axis=0), rtol=1e-5)
        model.observe(x, y)
    want = models[0].class_log_probs(x)
    np.testing.assert_allclose(models[1].class_log_probs(x), want, rtol=1e-5)
    # A saved Transflow reads the prior from its flow's loaded weights.
    models[0].save(str(tmp_path / "transflow.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "transflow.keras"))
    np.testing.assert_allclose(loaded.class_log_probs(x), want, rtol=1e-5)
    with pytest.raises(ValueError, match="with the class in its couplings"):
        Transflow(flows.RealNVP((8, 8, 1), 17, num_scales=1, filters=4, num_classes=3))


def test_interpolation_moves_from_the_prior_to_the_posterior_and_between_classes():
    z = np.random.default_rng(3).uniform(0.2, 0.8, size=(8, 3))
    model = Transflow(Identity(3), num_classes=2)
    model.observe(z, np.array([0, 1] * 4))
    means = model.posterior()["mean"].numpy()
    strip = model.interpolate("prior", 0, steps=5).numpy()
    np.testing.assert_allclose(strip, np.linspace(0, 1, 5)[:, None] * means[0], atol=1e-6)
    between = model.interpolate(0, 1, steps=3).numpy()
    np.testing.assert_allclose(between, [means[0], means.mean(axis=0), means[1]], atol=1e-6)


def test_the_prior_end_of_a_path_is_the_prior_predictive():
    for variance in ("fixed", "estimate"):
        model = Transflow(Identity(2), num_classes=2, variance=variance, strength=3.0)
        model.observe(np.array([[0.5, 0.5]]), np.array([0]))
        prior, empty = model.prior(), model.posterior()
        for key in ("mean", "scale", "df"):
            np.testing.assert_allclose(prior[key][0], empty[key][1])  # class 1 saw nothing
        # A path from the prior to a class with no examples stays where it is.
        path = model.interpolate("prior", 1, steps=4, temperature=0.1, seed=[0, 0]).numpy()
        np.testing.assert_allclose(path, np.repeat(path[:1], 4, axis=0), atol=1e-7)


def test_a_batch_with_a_non_finite_latent_is_skipped_and_counted():
    clean = np.array([[0.7, -1.2], [1.9, -0.4]])
    model = Transflow(Identity(2), num_classes=1)
    model.compile()
    batches = tf.data.Dataset.from_tensor_slices(
        [clean, np.array([[0.1, np.nan], [0.5, 0.5]]), clean]
    )
    history = model.fit(batches, verbose=0)
    assert history.history["skipped_steps"] == [1.0]
    reference, _ = posterior_of(np.concatenate([clean, clean]))
    np.testing.assert_array_equal(model.total.numpy(), reference.total.numpy())
    np.testing.assert_array_equal(model.count.numpy(), [4.0])
