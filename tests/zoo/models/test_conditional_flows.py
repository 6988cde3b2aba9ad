"""Class-conditional image flows: p(x | c) through the shared path, and the generative
classifier p(c | x) by Bayes' rule."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.checks import autodiff_log_det, fresh, randomize
from tests.model_checks import ModelChecks
from zoo import cli, registry, training
from zoo.models import flows
from zoo.models.transflow import Transflow

SMALL = {
    "glow_spline": lambda shape, k, **kw: flows.Glow(
        shape, k, num_scales=2, steps_per_scale=1, filters=8, coupling="spline", bins=4, **kw
    ),
    "realnvp": lambda shape, k, **kw: flows.RealNVP(
        shape, k, num_scales=2, filters=8, num_blocks=1, **kw
    ),
    "maf": lambda shape, k, **kw: flows.MAF(shape, k, num_layers=2, hidden_units=(32,), **kw),
}


def batch(shape=(8, 8, 1), n=8, seed=0):
    x = tf.random.stateless_uniform((n, *shape), seed=[seed, 0], minval=0.02, maxval=0.98)
    return x, tf.constant(np.arange(n) % 3, tf.int64)


def randomized(model, seed=0):
    randomize(model.bijector_layers, seed=seed, scale=0.05)
    randomize([model.base_layer], seed=seed + 1, scale=0.1)
    return model


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_the_class_changes_the_density_by_the_conditional_base_and_couplings(kind):
    model = randomized(SMALL[kind]((4, 4, 1), 256, num_classes=3))
    x, _ = batch((4, 4, 1), n=4)
    for c in range(3):
        z = model.encode(x, context=[c] * 4)
        log_det = autodiff_log_det(lambda t, c=c: model.encode(t, context=[c] * 4), x)
        loc, log_scale = np.split(model.base_layer(tf.one_hot([c], 3)).numpy()[0], 2)
        normal = -0.5 * (((z.numpy().reshape(4, -1) - loc) / np.exp(log_scale)) ** 2)
        base = np.sum(normal - log_scale - 0.5 * np.log(2 * np.pi), axis=1)
        np.testing.assert_allclose(
            model.log_prob(fresh(x), [c] * 4), base + log_det, rtol=2e-6, atol=2e-3
        )
        np.testing.assert_allclose(model.decode(z, context=[c] * 4), x, atol=1e-4)
    # The couplings see the class too, not only the base.
    assert not np.allclose(model.encode(x, context=[0] * 4), model.encode(x, context=[1] * 4))
    per_class = model.class_log_likelihoods(x).numpy()
    for c in range(3):
        np.testing.assert_allclose(per_class[:, c], model.log_prob(x, [c] * 4), rtol=1e-5)
    assert np.ptp(per_class, axis=1).min() > 1e-3  # the class matters
    class_ids, log_probs = model.classify(x)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(class_ids, per_class.argmax(axis=1))


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_a_class_prior_alone_leaves_one_map_and_classifies_in_one_pass(kind):
    """``conditioning="prior"``: x -> z is the same for every class (and needs none); the
    density is the class's base at z plus the one log-det; the one-pass Bayes rule equals
    the per-class log-probs."""
    model = randomized(SMALL[kind]((4, 4, 1), 256, num_classes=3, conditioning="prior"))
    assert not model.maps_with_context
    x, _ = batch((4, 4, 1), n=4)
    z = model.encode(x)
    for c in range(3):
        np.testing.assert_allclose(model.encode(x, context=[c] * 4), z, atol=1e-6)
    np.testing.assert_allclose(model.decode(z), x, atol=1e-4)
    log_det = autodiff_log_det(model.encode, x)
    per_class = model.class_log_likelihoods(x).numpy()
    for c in range(3):
        loc, log_scale = np.split(model.base_layer(tf.one_hot([c], 3)).numpy()[0], 2)
        normal = -0.5 * (((z.numpy().reshape(4, -1) - loc) / np.exp(log_scale)) ** 2)
        base = np.sum(normal - log_scale - 0.5 * np.log(2 * np.pi), axis=1)
        np.testing.assert_allclose(per_class[:, c], base + log_det, rtol=2e-6, atol=2e-3)
        np.testing.assert_allclose(per_class[:, c], model.log_prob(x, [c] * 4), rtol=1e-5)
    assert np.ptp(per_class, axis=1).min() > 1e-3  # the class matters, through the base
    with pytest.raises(ValueError, match="conditioning must be one of"):
        SMALL[kind]((4, 4, 1), 256, num_classes=3, conditioning="couplings")


def _conditional_inputs(model, data):
    x, y = data
    z = model.encode(x, context=y).numpy()
    return {
        "log_prob": {"images": x.numpy(), "labels": y.numpy()},
        "encode": {"images": x.numpy(), "labels": y.numpy()},
        "decode": {"z": z, "labels": y.numpy()},
        "sample": {
            "labels": y.numpy(),
            "temperature": np.float32(0.7),
            "seed": np.array([3, 4], np.int64),
        },
        "classify": {"images": x.numpy()},
    }


# The spline Glow with variational dequantization (the conditional bound), and MAF: between
# them every new bijector and the conditional signatures are saved, exported and served; the
# conditional RealNVP / Glow differ only in their (affine) couplings, checked unconditional in
# tests/zoo/models/test_flows.py. A class prior alone's signatures (``class_prior``) are
# exported and read back in tests/zoo/models/test_transflow.py.
OPTIONS = {"glow_spline": {"dequantization": "variational"}, "maf": {}}


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_shared_model_checks(kind, tmp_path):
    ModelChecks(
        make=lambda **kw: SMALL[kind]((8, 8, 1), 17, num_classes=3, **OPTIONS[kind], **kw),
        batch=batch(),
        outputs=lambda model, data: {
            "log_prob": model.log_prob(fresh(data[0]), data[1]),
            "z": model.encode(data[0], context=data[1]),
        },
        signature_inputs=_conditional_inputs,
        atol=1e-3,
    ).run_all(tmp_path)


def test_evaluate_reports_the_bayes_classifier_accuracy():
    model = randomized(SMALL["realnvp"]((8, 8, 1), 17, num_classes=3), seed=2)
    model.compile(optimizer="adam")
    x, y = batch(n=12)
    results = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    per_class = model.class_log_likelihoods(x).numpy()
    own = per_class[np.arange(12), y.numpy()]
    np.testing.assert_allclose(results["loss"], -own.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        results["accuracy"], np.mean(per_class.argmax(axis=1) == y.numpy()), atol=1e-6
    )
    one_hot = model.evaluate(x, tf.one_hot(y, 3), batch_size=5, verbose=0, return_dict=True)
    np.testing.assert_allclose(one_hot["accuracy"], results["accuracy"], atol=1e-6)
    with pytest.raises(ValueError, match="conditional: give fit / evaluate / predict"):
        model.evaluate(x, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="class labels must be < 3"):
        model.evaluate(x, y + 3, verbose=0)


def test_sampling_draws_the_class_asked_for():
    model = randomized(SMALL["maf"]((4, 4, 1), 256, num_classes=3))
    eps = model.base(context=tf.one_hot([2] * 3, 3))
    z = eps.sample(seed=[5, 6])
    expected = tf.clip_by_value(model.decode(z, context=[2] * 3), 0.0, 1.0)
    np.testing.assert_allclose(model.sample(3, seed=[5, 6], class_id=2), expected, atol=1e-5)
    default = model.sample(4, seed=[5, 6])  # the classes in turn: 0, 1, 2, 0
    turn = model.sample(4, seed=[5, 6], class_id=[0, 1, 2, 0])
    np.testing.assert_array_equal(default, turn)
    with pytest.raises(ValueError, match=r"class_id must be in 0 \.\. 2, got 3"):
        model.sample(2, class_id=3)
    with pytest.raises(ValueError, match="class_id gives 2 classes for 3 samples"):
        model.sample(3, class_id=[0, 1])
    with pytest.raises(ValueError, match="not class-conditional"):
        SMALL["maf"]((4, 4, 1), 256).sample(2, class_id=1)
    with pytest.raises(ValueError, match="not class-conditional"):
        SMALL["maf"]((4, 4, 1), 256).class_log_likelihoods(batch((4, 4, 1))[0])


def test_a_conditional_run_trains_on_labels_classifies_and_samples_each_class(tmp_path):
    """`glow_conditional` through `zoo.training.run` on the digits: batches carry labels, the
    held-out figures include the generative classifier's accuracy, well above chance; the
    picture has a row per class, and `zoo sample --class` draws samples that the model itself
    classifies as that class."""
    out = str(tmp_path / "run")
    metrics = training.run(
        training.RunConfig(
            model="glow_conditional",
            epochs=6,
            batch_size=64,
            learning_rate=3e-3,
            options={"num_scales": 1, "steps_per_scale": 2, "filters": 16},
            out=out,
            export=False,
        )
    )
    assert metrics["held_out_accuracy"] > 0.5, metrics  # chance: 0.1
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f)["held_out_accuracy"] == metrics["held_out_accuracy"]
    with open(os.path.join(out, "history.csv")) as f:  # no training accuracy that reads 0
        columns = f.readline().strip().split(",")
    assert "val_accuracy" in columns and "accuracy" not in columns, columns
    assert os.path.exists(os.path.join(out, "samples.png"))
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    assert model.num_classes == 10 and model.data_spec.labels
    png = str(tmp_path / "threes.png")
    cli.main(["sample", os.path.join(out, "model.keras"), "-n", "16", "--class", "3", "--out", png])
    assert os.path.getsize(png) > 0
    samples = model.sample(16, temperature=0.7, seed=[0, 0], class_id=3)
    class_ids, _ = model.classify(samples)
    assert np.mean(class_ids.numpy() == 3) >= 0.75, class_ids


def test_conditional_options_are_checked_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="num_classes must be a whole number >= 0"):
        flows.Glow((8, 8, 1), 17, num_classes=-1)
    with pytest.raises(ValueError, match="coupling must be one of"):
        flows.Glow((8, 8, 1), 17, coupling="cubic")
    with pytest.raises(ValueError, match="transform must be one of"):
        flows.MAF((8, 8, 1), 17, transform="cubic")
    with pytest.raises(ValueError, match=r"glow_conditional's option.*conditional are read with"):
        registry.create_model("glow_conditional")
    conditional = SMALL["maf"]((4, 4, 1), 256, num_classes=3)
    with pytest.raises(ValueError, match="with the class in its couplings: Transflow builds"):
        Transflow(conditional)
    out = tmp_path / "run"
    with pytest.raises(SystemExit):
        cli.main(["sample", "nowhere.keras", "--class", "x", "--out", str(out)])
    assert not out.exists()
