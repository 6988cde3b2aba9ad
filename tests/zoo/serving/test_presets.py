"""Every preset the package ships (zoo/presets/): small, float32, without optimizer state; `zoo
evaluate NAME` reproduces its card's figures (on its held-out data, or, where a fresh clone lacks
them (MNIST), on the examples shipped with it); `zoo export NAME` serves as TF Serving serves."""

import json
import os
import zipfile

import h5py
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.serving import Servable
from zoo import cli, data
from zoo.serving import export, presets

SHIPPED = sorted(
    name for name, folder in presets.list_presets().items() if folder.startswith(presets.SHIPPED)
)


def test_every_family_ships_a_preset_trained_on_the_60k_mnist_training_images():
    for family in ("glow", "nice", "realnvp", "dcgan", "vae", "conv_autoencoder", "classifier"):
        card = presets.card(f"{family}_mnist")
        assert (card["model"], card["train_split"], card["test_split"]) == (family, "train", "test")
        assert card["held_out"] and card["check"], card["name"]


@pytest.mark.parametrize("name", SHIPPED)
def test_preset_is_small_float32_and_without_optimizer_state(name):
    path = presets.model_file(name)
    assert os.path.getsize(path) < 8 * 2**20, "too large to ship"
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
        with archive.open("model.weights.h5") as f, h5py.File(f) as weights:
            assert "optimizer" not in weights, list(weights)
    assert "mixed_" not in config


@pytest.mark.parametrize("name", SHIPPED)
def test_zoo_evaluate_reproduces_the_card(name):
    card = presets.card(name)
    expected = card["check"] if "check" in card else card["held_out"]
    got = cli.run(["evaluate", name])  # the card's own held-out data, or its examples
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-3, abs=1e-4), (key, got, expected)
    assert zoo.from_preset(name).get_config() == card["config"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The realnvp_digits preset as `zoo export` writes it."""
    base = tmp_path_factory.mktemp("models")
    cli.run(["export", "realnvp_digits", "--base-dir", str(base), "--name", "realnvp_digits"])
    return str(base / "realnvp_digits" / "1")


def test_exported_preset_serves_like_tf_serving(served):
    """Loaded as TF Serving loads it (`tests.serving`): its warmup records run, its manifest
    declares what the SavedModel does, and a REST request gets the preset's log-probs."""
    servable = Servable(served)
    with open(os.path.join(served, "assets.extra", "signatures.json")) as f:
        declared = json.load(f)["signatures"]
    assert declared == export.signature_specs(served) and servable.warmed_up == len(declared)
    ds, _ = data.load("digits", "test[:3]", batch_size=3, dequantize_seed=0)
    images = next(iter(ds))
    answer = servable.rest({"signature_name": "log_prob", "instances": images.numpy().tolist()})
    expected = zoo.from_preset("realnvp_digits").log_prob(images)
    got = [row["log_prob"] for row in answer["predictions"]]
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4)
    z = tf.random.stateless_normal((4, 8, 8, 1), seed=[1, 2])
    images = tf.saved_model.load(served).signatures["sample"](z=z)["images"].numpy()
    assert np.all((images >= 0) & (images <= 1)) and images.std() > 0.05


def test_presets_by_name_on_the_command_line(tmp_path, capsys):
    listed = {row[0]: row for row in cli.run(["list", "--presets"])}
    assert set(SHIPPED) <= set(listed)
    assert listed["realnvp_digits"][3].startswith("bits_per_dim ")
    out = tmp_path / "samples.png"
    cli.run(["sample", "realnvp_digits", "-n", "4", "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = str(tmp_path / "transflow")
    metrics = cli.run(["transflow", "realnvp_digits", "--examples-per-class", "3", "--out", run])
    assert metrics["config"]["flow"] == presets.model_file("realnvp_digits")
    assert metrics["held_out_accuracy"] > 0.3  # 10 classes: chance is 0.1
    capsys.readouterr()
    assert cli.main(["sample", "realnvp_digit", "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "No preset 'realnvp_digit'" in err and "Did you mean 'realnvp_digits'?" in err
