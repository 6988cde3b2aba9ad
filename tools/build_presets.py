"""Builds the presets the package ships in zoo/presets/: trained Keras models and their cards.

    python tools/build_presets.py [NAME ...]             # train, measure, write
    python tools/build_presets.py --remeasure [NAME ...] # measure the shipped models again
    python tools/build_presets.py --cards [NAME ...]     # only MODEL_CARD.md from card.json
    python tools/build_presets.py --configs [NAME ...]   # card.json's config from the model

Each entry trains with the `zoo train` command (the digits presets on the embedded digits; the
MNIST ones on the 60,000 training images of the idx files in ../shared/data/mnist, which a fresh
clone does not have; the glyphs one on data/glyphs.npz, which it writes first with
bench/_symbols.py), then writes zoo/presets/NAME/:

* ``model.keras``: the trained model in the float32 policy (whatever policy trained it: a preset
  must run anywhere) and without optimizer state (`zoo.from_preset` compiles the model's own
  recipe afresh);
* ``card.json`` and ``MODEL_CARD.md``: data, command, the held-out figures that
  ``zoo evaluate`` gives for the float32 model on the whole held-out split, training images and
  time, the CPU, versions, licence;
* for MNIST and the glyphs, ``examples.npz``: the first 100 test images with labels (Keras
  mnist.npz keys), and in the card the figures ``zoo evaluate NAME`` gives on them (``check``),
  which tests/zoo/serving/test_presets.py reproduces where the data files are not.

A SavedModel for TF Serving is one command away: ``zoo export NAME --base-dir models``.
"""

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = os.path.normpath(os.path.join(HERE, "..", "zoo", "presets"))
MNIST = os.path.join(HERE, "..", "..", "shared", "data", "mnist")
GLYPHS = os.path.join(HERE, "..", "data", "glyphs.npz")
CHECK_EXAMPLES = 100

_DIGITS = ["--mixed-precision", "off", "--no-tensorboard", "--no-export"]
_MNIST = ["--dataset", MNIST, "--no-tensorboard", "--no-export"]
# A multi-scale RealNVP with the class in its prior alone, for Transflow.
_CLASS_PRIOR = [
    "realnvp",
    *("--set", "num_scales=3", "dequantization=variational", "conditional=true"),
    *("conditioning=prior", "--batch-size", "128", "--learning-rate", "2e-3"),
    *("--ema", "0.99", "--lr-schedule", "cosine", "--warmup-steps", "100"),
    *("--decay-fraction", "0.2", "--epochs", "5"),
]
RECIPES = {
    "realnvp_digits": ["realnvp", "--epochs", "30", *_DIGITS],
    "realnvp_flat_digits": ["realnvp_flat", "--epochs", "30", *_DIGITS],
    # NICE's scaling starts at the identity and Adam moves it ~lr per step: it needs more steps.
    "nice_digits": [
        "nice",
        *("--epochs", "150", "--learning-rate", "3e-3"),
        *("--set", "hidden_units=(256, 256, 256)", *_DIGITS),
    ],
    # bench/mnist_flows.py's best Glow recipe: 4 epochs, 240,128 training images.
    "glow_mnist": [
        "glow",
        *("--set", "num_scales=2", "steps_per_scale=8", "filters=64", "num_blocks=1"),
        *("dequantization=variational", "--learning-rate", "2e-3", "--ema", "0.99"),
        *("--lr-schedule", "cosine", "--warmup-steps", "100", "--decay-fraction", "0.2"),
        *("--clip-norm", "40000", "--epochs", "4", "--seed", "1", *_MNIST),
    ],
    "realnvp_mnist": [
        "realnvp",
        *("--set", "num_scales=3", "dequantization=variational", "--batch-size", "128"),
        *("--learning-rate", "2e-3", "--ema", "0.99", "--lr-schedule", "cosine"),
        *("--warmup-steps", "100", "--decay-fraction", "0.2", "--epochs", "5", *_MNIST),
    ],
    # The same with the class in its prior alone: a flow for Transflow (bench/mnist_transflow.py).
    "realnvp_class_prior_mnist": [*_CLASS_PRIOR, *_MNIST],
    # The same on 75 kinds of glyphs, none of them a letter of bench/_symbols.LETTERS: the flow
    # for Transflow on those letters (bench/mnist_transflow.py --symbols letters).
    "realnvp_class_prior_glyphs": [*_CLASS_PRIOR, "--dataset", GLYPHS, *_MNIST[2:]],
    "nice_mnist": [
        "nice",
        *("--set", "hidden_units=(300, 300, 300)", "--ema", "0.999", "--ema-every", "10"),
        *("--epochs", "20", *_MNIST),
    ],
    "dcgan_mnist": ["dcgan", "--set", "pack=2", "--epochs", "5", *_MNIST],
    # bench/binarized_vae.py's VAE: dynamically binarized MNIST, Bernoulli decoder.
    "vae_mnist": [
        "vae",
        "--binarize",
        *("--set", "likelihood=bernoulli", "hidden_units=(512, 256)", "latent_dim=50"),
        *("activation=tanh", "--batch-size", "100", "--lr-schedule", "cosine"),
        *("--epochs", "30", "--mixed-precision", "off", *_MNIST),
    ],
    "conv_autoencoder_mnist": ["conv_autoencoder", "--epochs", "5", *_MNIST],
    # A backbone for `zoo train transfer --set backbone=classifier_mnist`.
    "classifier_mnist": ["classifier", "--epochs", "5", *_MNIST],
}

DATA = {
    "digits": {
        "data": "the embedded scikit-learn 8x8 digits (17 levels per pixel)",
        "train": "digits `train` split (1,500 images)",
        "test": "digits `test` split (297 images)",
        "licence": "scikit-learn's copy of the UCI optical digits, CC BY 4.0",
    },
    "mnist": {
        "data": "MNIST (28x28, 256 levels per pixel)",
        "train": "MNIST `{train_split}` (`train`: the 60,000 training images)",
        "test": "MNIST `{test_split}` (`test`: the 10,000 test images)",
        "licence": "MNIST, Yann LeCun and Corinna Cortes, a derivative of NIST's data, made "
        "available under the Creative Commons Attribution-Share Alike 3.0 licence (as Keras' "
        "`mnist.load_data` states)",
    },
    "glyphs": {
        "data": "75 kinds of glyphs in MNIST's format (28x28, 256 levels per pixel: digits, "
        "Latin, Greek letters and signs drawn in matplotlib's fonts, distorted; "
        "`python bench/_symbols.py --write data/glyphs.npz`)",
        "train": "glyphs `{train_split}` (`train`: 800 images of each kind, 60,000)",
        "test": "glyphs `{test_split}` (`test`: 100 of each kind, 7,500, drawn apart)",
        "licence": "drawn here from the fonts matplotlib ships: DejaVu (Bitstream Vera "
        "licence), STIX (SIL Open Font License 1.1), BaKoMa Computer Modern (BaKoMa licence)",
    },
}


def kind(dataset):
    """The `DATA` entry of a card's ``dataset``."""
    if dataset == "digits":
        return "digits"
    return "glyphs" if dataset.endswith("glyphs.npz") else "mnist"


def build(name):
    from zoo import cli

    argv = ["train", *RECIPES[name]]
    if GLYPHS in argv and not os.path.exists(GLYPHS):
        sys.path.insert(0, os.path.join(HERE, "..", "bench"))
        import _symbols

        os.makedirs(os.path.dirname(GLYPHS), exist_ok=True)
        _symbols.write(GLYPHS, _symbols.GLYPHS)
    with tempfile.TemporaryDirectory() as out:
        metrics = cli.run([*argv, "--out", out])
        staging = tempfile.mkdtemp(prefix=f".{name}-", dir=PRESETS)
        float32_copy(os.path.join(out, "model.keras"), os.path.join(staging, "model.keras"))
    card = {
        "name": name,
        "model": metrics["model"],
        "command": command_line(name),
        "dataset": (
            "digits"
            if metrics["dataset"] == "digits"
            else os.path.relpath(metrics["dataset"], os.path.join(HERE, ".."))
        ),
        "train_split": metrics["train_split"],
        "test_split": metrics["test_split"],
        "num_levels": metrics["num_levels"],
        "image_shape": metrics["image_shape"],
        "weights": metrics["weights"],
        "epochs": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"],
        "trained_policy": metrics["dtype_policy"],
        "cpu": metrics["cpu"],
        "config": None,
        "versions": metrics["versions"],
    }
    publish(staging, name, card)


def command_line(name):
    """The `zoo train` command of recipe ``name`` as a shell reads it from the repository,
    MNIST at its usual path."""
    argv = ["train", *RECIPES[name]]
    command = "zoo " + shlex.join(argv).replace(os.path.join(HERE, "..", "data"), "data")
    return command.replace(os.path.join(HERE, "..", ".."), "..")


def float32_copy(trained, path):
    """The ``.keras`` file ``trained`` as ``path`` in the float32 dtype policy and without
    optimizer state. A mixed policy keeps float32 variables, so only the config changes: the
    archive's ``config.json`` gets every DTypePolicy named float32, then Keras re-saves the
    model uncompiled."""
    import keras

    def to_float32(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {k: to_float32(v) for k, v in node.items()}
        if isinstance(node, list):
            return [to_float32(v) for v in node]
        return node

    rewritten = path + ".rewritten.keras"
    with zipfile.ZipFile(trained) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "config.json":
                content = json.dumps(to_float32(json.loads(content))).encode()
            target.writestr(item, content)
    keras.saving.load_model(rewritten, compile=False).save(path)
    os.remove(rewritten)


def publish(staging, name, card):
    """Measures the model in ``staging`` (`measure`), writes its card, and swaps ``staging``
    in as zoo/presets/NAME."""
    os.chmod(staging, 0o755)  # mkdtemp's folder is private
    card = measure(staging, card)
    with open(os.path.join(staging, "card.json"), "w") as f:
        json.dump(card, f, indent=2)
    write_card(staging, card)
    target = os.path.join(PRESETS, name)
    old = target + ".old"
    if os.path.exists(target):
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    print(f"{name}: {card['headline']} -> {target}")


def measure(folder, card):
    """``card`` with the figures ``zoo evaluate`` gives for the preset in ``folder``: on the
    whole held-out split (``held_out`` and the model's ``headline``), and for MNIST and the
    glyphs on ``examples.npz``, which it writes (``check``)."""
    import keras

    from zoo import cli

    model = keras.saving.load_model(os.path.join(folder, "model.keras"), compile=False)
    dataset = card["dataset"]
    if dataset != "digits":
        dataset = os.path.join(HERE, "..", dataset)
    path = os.path.join(folder, "model.keras")
    figures = cli.run(["evaluate", path, "--dataset", dataset, "--split", card["test_split"]])
    card = {
        **card,
        "config": model.get_config(),
        "held_out": figures,
        "headline": model.headline(figures),
        **model.headline(figures),
    }
    if card["dataset"] != "digits":
        card.update(shipped_examples(dataset, folder))
        with open(os.path.join(folder, "card.json"), "w") as f:
            json.dump(card, f)  # what `zoo evaluate PRESET` reads its held-out data from
        card["check"] = cli.run(["evaluate", folder])
    return card


def shipped_examples(dataset, folder):
    """Writes ``examples.npz``: the first `CHECK_EXAMPLES` test images with labels (``x_test``,
    ``y_test``, as Keras' mnist.npz), and the first of each class they lack; returns the card
    entries that point at them."""
    import numpy as np

    from zoo import data

    if dataset.endswith(".npz"):
        with np.load(dataset) as arrays:
            images, labels = arrays["x_test"], arrays["y_test"]
    else:
        images = data.read_idx(os.path.join(dataset, "t10k-images-idx3-ubyte.gz"))
        labels = data.read_idx(os.path.join(dataset, "t10k-labels-idx1-ubyte.gz"))
    # `zoo evaluate` of a class-conditional model wants an image of each of its classes.
    _, first = np.unique(labels, return_index=True)
    missing = first[first >= CHECK_EXAMPLES]
    chosen = np.concatenate([np.arange(CHECK_EXAMPLES), missing])
    np.savez_compressed(
        os.path.join(folder, "examples.npz"), x_test=images[chosen], y_test=labels[chosen]
    )
    what = "glyphs" if dataset.endswith(".npz") else "MNIST"
    examples = f"{what} test images 0-{CHECK_EXAMPLES - 1}"
    if len(missing):
        examples += f" and the first of each of the {len(missing)} classes they lack"
    return {
        "check_dataset": "examples.npz",
        "check_split": "test",
        "check_examples": f"{examples} with labels",
    }


def remeasure(name):
    """Measures a shipped preset again (new figures, same model), e.g. after an upgrade."""
    folder = os.path.join(PRESETS, name)
    with open(os.path.join(folder, "card.json")) as f:
        card = json.load(f)
    staging = tempfile.mkdtemp(prefix=f".{name}-", dir=PRESETS)
    for item in os.listdir(folder):
        shutil.copy2(os.path.join(folder, item), staging)
    publish(staging, name, card)


def refresh_config(name):
    """card.json's ``config`` as the shipped model gives it now (same model, same figures):
    after an option with a default joins a model's config."""
    import zoo

    path = os.path.join(PRESETS, name, "card.json")
    with open(path) as f:
        card = json.load(f)
    card["config"] = zoo.from_preset(name).get_config()
    with open(path + ".tmp", "w") as f:
        json.dump(card, f, indent=2)
    os.replace(path + ".tmp", path)


CARD = """# {name}

`{model}` trained on {data}: a Keras model in the float32 policy,
`zoo.from_preset("{name}")`; `zoo export {name} --base-dir models` writes the SavedModel that TF
Serving serves.

| | |
|---|---|
| command | `{command}` |
| training data | {train} |
| held-out data | {test} |
| held-out figures (`zoo evaluate`) | {figures} |
| weights | {weights:,} |
| training | {epochs} epochs, {minutes:.1f} min under {policy} on {cpu} ({cores} cores) |
| versions | TensorFlow {tf}, Keras {keras}, TFP {tfp} |
| data licence | {licence} |
{check}"""


def write_card(folder, card):
    """MODEL_CARD.md from card.json's entries (``--cards``)."""
    data = DATA[kind(card["dataset"])]
    check = ""
    if "check" in card:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in card["check"].items())
        check = (
            f"\n`{card['check_dataset']}` ships {card['check_examples']} (Keras mnist.npz keys "
            f"`x_test`, `y_test`), for checking the model without the data files: "
            f"`zoo evaluate {card['name']}` gives {shown} on them.\n"
        )
    versions = card["versions"]
    with open(os.path.join(folder, "MODEL_CARD.md"), "w") as f:
        f.write(
            CARD.format(
                **{
                    **card,
                    **{key: text.format(**card) for key, text in data.items()},
                    "figures": ", ".join(f"{k} {v:.4f}" for k, v in card["held_out"].items()),
                    "minutes": card["train_seconds"] / 60,
                    "policy": card.get("trained_policy", "float32"),
                    "cpu": card.get("cpu", "an unrecorded CPU"),
                    "cores": os.cpu_count(),
                    "tf": versions["tensorflow"],
                    "keras": versions["keras"],
                    "tfp": versions["tensorflow_probability"],
                    "check": check,
                }
            )
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--remeasure", action="store_true", help="measure shipped models again")
    mode.add_argument("--cards", action="store_true", help="only MODEL_CARD.md from card.json")
    mode.add_argument(
        "--configs", action="store_true", help="card.json's config from the shipped model"
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(RECIPES))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"no preset recipe {unknown}; the recipes are {list(RECIPES)}")
    for name in args.names or RECIPES:
        if args.cards:
            with open(os.path.join(PRESETS, name, "card.json")) as f:
                write_card(os.path.join(PRESETS, name), json.load(f))
        elif args.configs:
            refresh_config(name)
        elif args.remeasure:
            remeasure(name)
        else:
            build(name)
    sizes = sum(
        os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(PRESETS) for f in files
    )
    print(f"zoo/presets/: {sizes / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
