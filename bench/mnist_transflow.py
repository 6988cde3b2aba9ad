"""Transflow learning on real MNIST with the shipped flow: few-shot accuracy and samples.

    python bench/mnist_transflow.py --mnist ../shared/data/mnist

The flow is the preset realnvp_mnist (trained on the 60,000 MNIST training images; --flow takes
another, and `--protocol test9k` holds out test images 9,000-9,999 for a flow trained on the
first 9,000). From the held-out test images, each draw (seeds 0-4) takes k = 1, 5, 10 examples
of every digit; the rest are classified by:

* Transflow (`zoo.Transflow`, strength 1), ``fixed`` and ``estimate`` variance: the class whose
  posterior predictive gives the image's latent the highest density;
* nearest neighbour among the examples in pixel space (Euclidean);
* nearest neighbour among the examples in the flow's latent space (Euclidean).

Prints mean +- sd of the accuracy over the draws and writes transflow_samples.png: five examples
of one digit, then samples of the posterior fitted to them at two strengths.
"""

import argparse
import os
import shlex
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from _memory import peak_rss_mib
from _protocol import add_protocol, splits

from zoo import data, plots
from zoo.models.transflow import Transflow
from zoo.serving import presets

FLOW = presets.model_file("realnvp_mnist")
CHUNK = 500


def held_out(args):
    ds, _ = data.load(
        args.mnist,
        splits(args)[1],
        with_labels=True,
        batch_size=10_000,
        scaling=Transflow.data_spec.scaling,
    )
    x, y = next(iter(ds))
    return x.numpy(), y.numpy()


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default="../shared/data/mnist", help="MNIST idx folder")
    add_protocol(parser)
    parser.add_argument("--flow", default=FLOW, help="a flow's SavedModel folder or .keras")
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--digit", type=int, default=3, help="the digit of the sample picture")
    parser.add_argument("--strengths", type=float, nargs=2, default=[0.2, 20.0])
    parser.add_argument("--out", default=None, help="folder for the PNG")
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="bench-transflow-")
    os.makedirs(out, exist_ok=True)

    x, y = held_out(args)
    models = {v: Transflow(args.flow, num_classes=10, variance=v) for v in ("fixed", "estimate")}
    # The flow runs once over the held-out images; each draw scores their latents.
    encode = tf.function(models["fixed"].latents)
    latents = np.concatenate([encode(x[i : i + CHUNK]).numpy() for i in range(0, len(x), CHUNK)])
    pixels = x.reshape(len(x), -1)
    table = {
        name: {} for name in ("transflow_fixed", "transflow_estimate", "nn_pixels", "nn_latent")
    }
    for k in args.shots:
        for seed in range(args.draws):
            chosen, rest = draw(y, k, seed)
            for variance, model in models.items():
                model.reset_statistics()
                model.observe(x[chosen], y[chosen])
                predicted = np.concatenate(
                    [
                        model.latent_class_log_probs(latents[rest[i : i + CHUNK]]).numpy()
                        for i in range(0, len(rest), CHUNK)
                    ]
                ).argmax(axis=1)
                table[f"transflow_{variance}"].setdefault(k, []).append(
                    np.mean(predicted == y[rest])
                )
            for name, features in (("nn_pixels", pixels), ("nn_latent", latents)):
                predicted = nearest_neighbour(features[chosen], y[chosen], features[rest])
                table[name].setdefault(k, []).append(np.mean(predicted == y[rest]))
        print(f"k = {k}: done", flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\n{command}")
    print(f"flow {args.flow}; {len(x)} held-out images, the rest after each draw classified")
    print(f"{'k/class':>8}  " + "  ".join(f"{m:>19}" for m in table))
    for k in args.shots:
        cells = [f"{np.mean(table[m][k]):.4f} +- {np.std(table[m][k]):.4f}" for m in table]
        print(f"{k:>8}  " + "  ".join(f"{c:>19}" for c in cells))

    examples = x[y == args.digit][:5]
    rows = [np.concatenate([examples, np.zeros((3, *examples.shape[1:]), np.float32)])]
    for strength in args.strengths:
        model = Transflow(args.flow, variance="estimate", strength=strength)
        model.observe(examples)
        rows.append(model.sample(8, temperature=0.7, seed=[0, 1]).numpy())
    path = os.path.join(out, "transflow_samples.png")
    a, b = args.strengths
    title = f"5 held-out {args.digit}s; samples (T 0.7), strength {a:g}; strength {b:g}"
    plots.sample_grid(tf.concat(rows, 0), path, title, columns=8)
    print(f"wrote {path}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
