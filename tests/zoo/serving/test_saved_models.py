"""Every model shipped in saved_models/, as a SavedModel and as a preset (`zoo.from_preset`),
reproduces its model card's held-out bits/dim: on its dataset, or, where a fresh clone lacks it
(MNIST), on the examples shipped with it."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.serving import Servable
from zoo import cli, data
from zoo.serving import export, presets

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "saved_models")
CARDS = sorted(glob.glob(os.path.join(ROOT, "*", "card.json")))


def test_models_are_shipped():
    assert len(CARDS) >= 2, f"no model cards under {ROOT}"


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_shipped_model_reproduces_its_card(card_path):
    with open(card_path) as f:
        card = json.load(f)
    folder = os.path.dirname(card_path)
    loaded = tf.saved_model.load(os.path.join(folder, "1"))
    assert {"log_prob", "sample", "encode", "decode", "serving_default"} <= set(loaded.signatures)
    if "check_dataset" in card:
        dataset, split = os.path.join(folder, card["check_dataset"]), card["check_split"]
        expected = card["check_bits_per_dim"]
    else:
        dataset, split, expected = (
            card["dataset"],
            card["test_split"],
            card["held_out_bits_per_dim"],
        )
    ds, info = data.load(dataset, split, batch_size=512, dequantize_seed=card["dequantize_seed"])
    assert info.num_levels == card["num_levels"]
    bits = np.concatenate(
        [loaded.signatures["log_prob"](images=batch)["bits_per_dim"].numpy() for batch in ds]
    )
    assert abs(bits.mean() - expected) < 0.02, (bits.mean(), card)
    z = tf.random.stateless_normal(
        (4, *card["image_shape"])
        if card["model"] == "realnvp"
        else (4, int(np.prod(card["image_shape"]))),
        seed=[1, 2],
    )
    images = loaded.signatures["sample"](z=z)["images"].numpy()
    assert images.shape == (4, *card["image_shape"])
    assert np.all((images >= 0) & (images <= 1))


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_shipped_model_serves_like_tf_serving(card_path):
    """Loaded as TF Serving loads it (`tests.serving`): its warmup records run, its manifest
    declares what the SavedModel does, and a REST request gets the in-process log-probs."""
    path = os.path.join(os.path.dirname(card_path), "1")
    servable = Servable(path)
    with open(os.path.join(path, "assets.extra", "signatures.json")) as f:
        declared = json.load(f)["signatures"]
    assert declared == export.signature_specs(path) and servable.warmed_up == len(declared)
    shape = declared["log_prob"]["inputs"]["images"]["shape"][1:]
    images = tf.random.stateless_uniform((3, *shape), seed=[7, 8], minval=0.05, maxval=0.95)
    answer = servable.rest({"signature_name": "log_prob", "instances": images.numpy().tolist()})
    expected = tf.saved_model.load(path).signatures["log_prob"](images=images)["log_prob"]
    got = [row["log_prob"] for row in answer["predictions"]]
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)


@pytest.mark.parametrize("card_path", CARDS, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_preset_is_a_keras_model_that_reproduces_its_card_and_its_savedmodel(card_path):
    name = os.path.basename(os.path.dirname(card_path))
    assert os.path.getsize(presets.model_file(name)) < 8 * 2**20  # small enough to ship
    model = zoo.from_preset(name)
    card = model.preset_card
    assert model.get_config() == card["config"] and card["name"] == name
    dataset, split = presets.held_out_data(name)
    ds, _ = data.load(dataset, split, batch_size=512, dequantize_seed=card["dequantize_seed"])
    result = model.evaluate(ds, verbose=0, return_dict=True)
    expected = card.get("check_bits_per_dim", card["held_out_bits_per_dim"])
    assert abs(result["bits_per_dim"] - expected) < 1e-3, (result, expected)
    batch = next(iter(ds))
    served = tf.saved_model.load(os.path.join(os.path.dirname(card_path), "1"))
    np.testing.assert_allclose(
        model.log_prob(batch).numpy(),
        served.signatures["log_prob"](images=batch)["log_prob"].numpy(),
        rtol=1e-4,
    )


def test_presets_by_name_on_the_command_line(tmp_path, capsys):
    listed = {row[0]: row for row in cli.run(["list", "--presets"])}
    assert set(listed) == {os.path.basename(os.path.dirname(p)) for p in CARDS}
    card = presets.card("realnvp_digits")
    result = cli.run(["evaluate", "realnvp_digits"])  # the card's own held-out data
    assert abs(result["bits_per_dim"] - card["held_out_bits_per_dim"]) < 1e-3
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
