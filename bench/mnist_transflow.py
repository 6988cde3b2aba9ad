"""Transflow few-shot classification with the shipped flows, beside nearest neighbour.

    python bench/mnist_transflow.py                     # on the MNIST test images
    python bench/mnist_transflow.py --symbols letters   # on letters no flow saw

Flows (``--flows``: preset names, .keras files or SavedModels): ``realnvp_mnist`` (unconditional)
and ``realnvp_class_prior_mnist`` (the same recipe with the class in its prior alone,
``conditioning="prior"``, trained on the 60,000 MNIST training images and their labels); for
the letters also ``realnvp_class_prior_glyphs`` (the same recipe on 75 other kinds of glyph
drawn as the letters are, `_symbols.GLYPHS`: digits, other Latin and Greek letters, signs).
None is trained on the images classified here. Held out: the 10,000 MNIST test images (``--protocol
test9k``: test images 9,000-9,999, for a flow trained on the first 9,000), or 10,000 letters
(`_symbols.letters`: 1,000 of each of ten capitals, drawn in matplotlib's fonts). Each draw
(seeds 0-4) takes k = 1, 5, 10 examples of every class; the rest are classified by:

* Transflow (`zoo.Transflow`, strength 1), ``fixed`` and ``estimate`` variance: the class whose
  posterior predictive gives the image's latent the highest density. A flow with a class prior
  gives Transflow its empirical-Bayes prior; ``standard prior`` rows use the standard normal
  base instead (an unconditional flow's rule) on the same latents: what the prior buys apart
  from the latent space;
* nearest neighbour among the examples, in pixel space and in each flow's latent space
  (Euclidean).

Prints mean +- sd of the accuracy over the draws, and writes ``transflow_samples_<flow>.png``
per flow: for each class, three of draw 0's k = 10 examples, then five samples (T = 0.7) of the
posterior (estimated variance) fitted to the ten.
"""

import argparse
import os
import shlex
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from _memory import peak_rss_mib
from _protocol import add_protocol, splits
from _symbols import LETTERS, letters

from zoo import data, plots
from zoo.models.transflow import Transflow
from zoo.models.transflow.saved_model_flow import class_prior, load_flow
from zoo.serving import presets

FLOWS = ["realnvp_mnist", "realnvp_class_prior_mnist"]
LETTER_FLOWS = [*FLOWS, "realnvp_class_prior_glyphs"]
CHUNK = 500


class StandardPrior:
    """A flow's map with the standard base as Transflow's prior (its class prior hidden)."""

    def __init__(self, flow):
        self.flow = flow
        self.image_shape, self.latent_shape = flow.image_shape, flow.latent_shape
        self.base_distribution = flow.base_distribution

    def encode(self, x):
        return self.flow.encode(x)

    def decode(self, z):
        return self.flow.decode(z)


def held_out(args):
    """``(images, labels, class names)``: centred images in [0, 1] (Transflow's scaling)."""
    if args.symbols == "letters":
        x, y = letters(per_class=1000, seed=0)
        return (x.astype(np.float32) + 0.5) / 256.0, y, list(LETTERS)
    ds, _ = data.load(
        args.mnist,
        splits(args)[1],
        with_labels=True,
        batch_size=10_000,
        scaling=Transflow.data_spec.scaling,
    )
    x, y = next(iter(ds))
    return x.numpy(), y.numpy(), [str(c) for c in range(10)]


def draw(labels, k, seed):
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), k, replace=False) for c in range(10)]
    )
    rest = np.setdiff1d(np.arange(len(labels)), chosen)
    return chosen, rest


def nearest_neighbour(train, train_labels, test):
    distances = np.sum(test**2, 1)[:, None] - 2 * test @ train.T + np.sum(train**2, 1)[None, :]
    return train_labels[np.argmin(distances, axis=1)]


def open_flow(name):
    path = presets.model_file(name)
    if os.path.isdir(path):
        return load_flow(path)
    return keras.saving.load_model(path, compile=False)


def transflows(name, flow):
    """``{row name: Transflow}`` for ``flow``: both variances, and with a class prior, both
    again on the standard prior."""
    short = os.path.basename(os.path.normpath(name)).removesuffix(".keras")
    models = {
        f"{short} {v}": Transflow(flow, num_classes=10, variance=v) for v in ("fixed", "estimate")
    }
    if class_prior(flow) is not None:
        standard = StandardPrior(flow)
        for v in ("fixed", "estimate"):
            models[f"{short} {v}, standard prior"] = Transflow(standard, 10, variance=v)
    return short, models


def classify(model, latents):
    return np.concatenate(
        [
            model.latent_class_log_probs(latents[i : i + CHUNK]).numpy()
            for i in range(0, len(latents), CHUNK)
        ]
    ).argmax(axis=1)


def samples_picture(short, model, x, y, names, out):
    chosen, _ = draw(y, 10, 0)
    model.reset_statistics()
    model.observe(x[chosen], y[chosen])
    rows = []
    for c in range(10):
        examples = x[chosen][y[chosen] == c][:3]
        rows += [examples, model.sample(5, temperature=0.7, seed=[0, c], class_id=c).numpy()]
    path = os.path.join(out, f"transflow_samples_{short}.png")
    title = f"{short}: rows {''.join(names)}, 3 examples + 5 samples"
    plots.sample_grid(tf.concat(rows, 0), path, title, columns=8)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default="../shared/data/mnist", help="MNIST idx folder")
    add_protocol(parser)
    parser.add_argument("--symbols", choices=["mnist", "letters"], default="mnist")
    parser.add_argument(
        "--flows", nargs="+", help="presets, .keras, SavedModels (default: those above)"
    )
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--out", default=None, help="folder for the PNGs")
    args = parser.parse_args(argv)
    args.flows = args.flows or (LETTER_FLOWS if args.symbols == "letters" else FLOWS)
    out = args.out or tempfile.mkdtemp(prefix="bench-transflow-")
    os.makedirs(out, exist_ok=True)

    x, y, names = held_out(args)
    pixels = x.reshape(len(x), -1)
    features = {"nn pixels": pixels}
    models, latents, pictures = {}, {}, []
    for name in args.flows:
        flow = open_flow(name)
        short, rows = transflows(name, flow)
        models.update(rows)
        first = next(iter(rows.values()))
        # The flow runs once over the held-out images; each draw scores their latents.
        encode = tf.function(first.latents)
        features[f"nn latent {short}"] = np.concatenate(
            [encode(x[i : i + CHUNK]).numpy() for i in range(0, len(x), CHUNK)]
        )
        latents.update({row: features[f"nn latent {short}"] for row in rows})
        pictures.append(samples_picture(short, rows[f"{short} estimate"], x, y, names, out))
        print(f"{short}: encoded {len(x)} images", flush=True)

    table = {name: {} for name in [*models, *features]}
    for k in args.shots:
        for seed in range(args.draws):
            chosen, rest = draw(y, k, seed)
            for row, model in models.items():
                model.reset_statistics()
                model.observe(x[chosen], y[chosen])
                predicted = classify(model, latents[row][rest])
                table[row].setdefault(k, []).append(np.mean(predicted == y[rest]))
            for row, f in features.items():
                predicted = nearest_neighbour(f[chosen], y[chosen], f[rest])
                table[row].setdefault(k, []).append(np.mean(predicted == y[rest]))
        print(f"k = {k}: done", flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\n{command}")
    what = "letters (bench/_symbols.py)" if args.symbols == "letters" else "MNIST test images"
    print(f"{len(x)} held-out {what}; each draw's rest classified; mean +- sd, {args.draws} draws")
    width = max(len(r) for r in table)
    print(f"{'':{width}}  " + "  ".join(f"{f'k = {k}':>15}" for k in args.shots))
    for row, cells in table.items():
        shown = [f"{np.mean(cells[k]):.3f} +- {np.std(cells[k]):.3f}" for k in args.shots]
        print(f"{row:{width}}  " + "  ".join(f"{c:>15}" for c in shown))
    for path in pictures:
        print(f"wrote {path}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
