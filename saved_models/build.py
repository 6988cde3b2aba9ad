"""Rebuilds the presets shipped in saved_models/: Keras models, SavedModels and model cards.

    python saved_models/build.py [NAME ...]
    python saved_models/build.py --cards [NAME ...]    # only MODEL_CARD.md from card.json
    python saved_models/build.py --assets [NAME ...]   # only assets.extra, from the SavedModel

Each entry trains with the `zoo` command (on the embedded digits; `realnvp_mnist` on the real
MNIST images in ../shared/data/mnist, which a fresh clone does not have), then copies the exported
SavedModel to saved_models/NAME/1/ (the layout `tensorflow_model_server
--model_base_path=saved_models/NAME` serves) and the run's model.keras to saved_models/NAME/
(what `zoo.from_preset(NAME)` loads), and writes saved_models/NAME/card.json and MODEL_CARD.md from
the run's metrics.json. tests/zoo/serving/test_saved_models.py reloads each, as a SavedModel and
as a preset, and checks its card's held-out bits/dim. Every preset trains in float32, the policy
that runs anywhere.
"""

import json
import math
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

FLOAT32 = ["--mixed-precision", "off", "--no-tensorboard"]
SHIPPED = {
    "realnvp_digits": ["train", "realnvp", "--epochs", "30", *FLOAT32],
    "realnvp_flat_digits": ["train", "realnvp_flat", "--epochs", "30", *FLOAT32],
    # NICE's scaling starts at the identity and Adam moves it ~lr per step: it needs more steps.
    "nice_digits": [
        "train",
        "nice",
        "--epochs",
        "150",
        "--learning-rate",
        "3e-3",
        "--set",
        "hidden_units=(256, 256, 256)",
        *FLOAT32,
    ],
    # A real 28x28 flow for Transflow learning: the first 9,000 MNIST test images, 10 minutes.
    "realnvp_mnist": [
        "train",
        "realnvp",
        "--dataset",
        os.path.join(HERE, "..", "..", "shared", "data", "mnist"),
        "--train-split",
        "test[:9000]",
        "--test-split",
        "test[9000:]",
        "--set",
        "num_scales=3",
        "--epochs",
        "100",
        "--time-budget",
        "600",
        *FLOAT32,
    ],
}

DATA = {
    "digits": (
        "the embedded scikit-learn 8x8 digits (17 levels per pixel)",
        "digits `train` split (1,500 images), dequantized `(x + u) / 17`",
        "digits `test` split (297 images)",
        "the uniform density scores log2 17 = 4.0875",
        "scikit-learn's copy of the UCI optical digits, CC BY 4.0",
    ),
    "mnist": (
        "the real MNIST images (28x28, 256 levels per pixel)",
        "MNIST test images 0-8,999 (`test[:9000]`), dequantized `(x + u) / 256`",
        "MNIST test images 9,000-9,999 (`test[9000:]`)",
        "the uniform density scores 8",
        "MNIST, Yann LeCun and Corinna Cortes, a derivative of NIST's data, made available under "
        "the Creative Commons Attribution-Share Alike 3.0 licence (as Keras' `mnist.load_data` "
        "states)",
    ),
}

CARD = """# {name}

{model} trained on {data}: a Keras model (`model.keras`; `zoo.from_preset("{name}")`) and a TF
Serving SavedModel (`1/`).

| | |
|---|---|
| command | `{command}` |
| training data | {train} |
| held-out data | {test}, dequantization noise seeded with {seed} |
| held-out bits/dim | {bits:.4f} ({uniform}) |
| data licence | {licence} |
| held-out log-likelihood | {nats:.2f} nats per image of the dequantized data in [0, 1)^{dims} |
| weights | {weights:,} |
| training | {epochs} epochs, {seconds} s on {cores} CPU cores |
| versions | TensorFlow {tf}, Keras {keras}, TFP {tfp} |

Signatures (`saved_model_cli show --dir 1 --all`): `log_prob` and `serving_default`
(`images` [batch, {shape}] float32 in [0, 1] -> `log_prob`, `bits_per_dim`), `sample` (`z` ->
`images`, clipped to [0, 1]; draw `z` from the prior, times a temperature), `encode` (`images` ->
`z`), `decode` (`z` -> `images`). Latent shape: {latent}; prior: standard {prior}.
"""


def build(name, argv):
    from zoo import cli

    with tempfile.TemporaryDirectory() as out:
        metrics = cli.run([*argv, "--out", out])
        target = os.path.join(HERE, name)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        shutil.copytree(metrics["export"], os.path.join(target, "1"))
        preset_file(os.path.join(out, "model.keras"), os.path.join(target, "model.keras"))
        config = metrics["config"]
        card = {
            "name": name,
            "model": metrics["model"],
            "command": "zoo " + " ".join(argv).replace(os.path.join(HERE, "..", ".."), ".."),
            "dataset": os.path.relpath(metrics["dataset"], os.path.join(HERE, ".."))
            if os.path.isabs(metrics["dataset"])
            else metrics["dataset"],
            "test_split": metrics["test_split"],
            "dequantize_seed": 0,
            "num_levels": metrics["num_levels"],
            "image_shape": metrics["image_shape"],
            "held_out_bits_per_dim": metrics["held_out_bits_per_dim"],
            "held_out_log_likelihood_nats": metrics["held_out_log_likelihood_nats"],
            "weights": metrics["weights"],
            "epochs": metrics["epochs_run"],
            "train_seconds": metrics["train_seconds"],
            "config": config,
            "versions": metrics["versions"],
        }
        if "mnist" in name:
            card.update(shipped_examples(argv, target))
    with open(os.path.join(target, "card.json"), "w") as f:
        json.dump(card, f, indent=2)
    write_card(target, card)
    print(f"{name}: held-out {card['held_out_bits_per_dim']} bits/dim -> {target}")


def preset_file(trained, path):
    """The run's model, without its optimizer state (a third of the file; `zoo.from_preset`
    compiles the model's own recipe afresh), as ``path``."""
    import keras

    keras.saving.load_model(trained, compile=False).save(path)


def write_card(target, card):
    """MODEL_CARD.md from card.json's entries (``python saved_models/build.py --cards``)."""
    name, config = card["name"], card["config"]
    data, train, test, uniform, licence = DATA["mnist" if "mnist" in name else "digits"]
    examples = ""
    if "check_dataset" in card:
        examples = (
            f"\n`{card['check_dataset']}` ships {card['check_examples']} (Keras mnist.npz keys "
            f"`x_test`, `y_test`), for Transflow and for checking the model without the MNIST "
            f"files: {card['check_bits_per_dim']:.4f} bits/dim on them.\n"
        )
    with open(os.path.join(target, "MODEL_CARD.md"), "w") as f:
        f.write(
            CARD.format(
                name=name,
                data=data,
                train=train,
                test=test,
                uniform=uniform,
                licence=licence,
                shape=", ".join(str(n) for n in card["image_shape"]),
                dims=math.prod(card["image_shape"]),
                model=card["model"],
                command=card["command"],
                seed=card["dequantize_seed"],
                bits=card["held_out_bits_per_dim"],
                nats=card["held_out_log_likelihood_nats"],
                weights=card["weights"],
                epochs=card["epochs"],
                seconds=card["train_seconds"],
                cores=os.cpu_count(),
                tf=card["versions"]["tensorflow"],
                keras=card["versions"]["keras"],
                tfp=card["versions"]["tensorflow_probability"],
                latent="same as the image" if card["model"] == "realnvp" else "[64]",
                prior=config.get("prior") or config.get("base_distribution") or "normal",
            )
            + examples
        )


def shipped_examples(argv, target, count=100):
    """Writes ``examples.npz``: the first ``count`` held-out images with labels (``x_test``,
    ``y_test``, as Keras' mnist.npz), so that a fresh clone, without the MNIST files, can check
    the model and try Transflow; returns the card entries that describe them."""
    import numpy as np
    import tensorflow as tf

    from zoo import data

    folder = argv[argv.index("--dataset") + 1]
    images = data.read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz"))[9000 : 9000 + count]
    labels = data.read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"))[9000 : 9000 + count]
    path = os.path.join(target, "examples.npz")
    np.savez_compressed(path, x_test=images, y_test=labels)
    ds, _ = data.load(path, "test", batch_size=count, dequantize_seed=0)
    log_prob = tf.saved_model.load(os.path.join(target, "1")).signatures["log_prob"]
    bits = np.concatenate([log_prob(images=x)["bits_per_dim"].numpy() for x in ds])
    return {
        "check_dataset": "examples.npz",
        "check_split": "test",
        "check_bits_per_dim": round(float(bits.mean()), 4),
        "check_examples": f"MNIST test images 9,000-{9000 + count - 1} with labels",
    }


def refresh_assets(target, name):
    """Rewrites ``1/assets.extra`` (``signatures.json`` with every signature's input and output
    specs, and TF Serving's warmup records) from the SavedModel itself, keeping the manifest's
    model and metadata: for exports made before `zoo.serving.export` wrote them."""
    from zoo.serving import export, warmup

    version = os.path.join(target, "1")
    path = os.path.join(version, "assets.extra", "signatures.json")
    with open(path) as f:
        old = json.load(f)
    signatures = export.signature_specs(version)
    manifest = {"model": old["model"], "signatures": signatures}
    manifest["metadata"] = old.get("metadata", {})
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
    warmup.write_warmup(os.path.join(version, "assets.extra", warmup.WARMUP), name, signatures)


def main(names):
    if names[:1] == ["--assets"]:
        for name in names[1:] or SHIPPED:
            refresh_assets(os.path.join(HERE, name), name)
        return
    if names[:1] == ["--cards"]:
        for name in names[1:] or SHIPPED:
            with open(os.path.join(HERE, name, "card.json")) as f:
                write_card(os.path.join(HERE, name), json.load(f))
        return
    for name in names or SHIPPED:
        build(name, SHIPPED[name])


if __name__ == "__main__":
    main(sys.argv[1:])
