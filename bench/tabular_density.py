"""Density estimation on real tabular data that ships with scikit-learn: affine coupling, spline
coupling and MAF at equal budgets.

    python bench/tabular_density.py                 # 3 datasets x 4 flows x 3 splits

The data sets are scikit-learn's bundled (no download): ``wine`` (178 x 13), ``breast_cancer`` (569
x 30) and ``diabetes`` (442 x 9: the raw features without the binary ``sex``). Each feature is
measured to a finite resolution, so each is jittered by uniform noise as wide as the median gap
between its sorted distinct values (a column of whole numbers: 1) and standardized with the
training part's mean and standard deviation: the reported log-likelihood is of the jittered,
standardized data (the same transform for every model). Each split (seeds 0-2) draws 70% to train,
10% to validate and 20% to test. Every flow of `bench/_vector_flows.py` (5 layers, MLP / MADE
128-128) trains for the same steps with Adam and a cosine decay, keeping the weights of its best
validation figure (of 20 checks); the table gives the test mean log-likelihood (nats per example,
higher is better), mean +- standard deviation over the splits, next to the maximum-likelihood full-
covariance Gaussian's. Small data sets: the spread across splits is part of the result.
"""

import argparse
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from _vector_flows import (
    add_options,
    build,
    gaussian_log_likelihood,
    mean_log_likelihood,
    train,
)
from sklearn import datasets


def load(name):
    """The raw feature matrix of data set ``name`` (float64)."""
    if name == "wine":
        return datasets.load_wine().data
    if name == "breast_cancer":
        return datasets.load_breast_cancer().data
    if name == "diabetes":
        raw = datasets.load_diabetes(scaled=False)
        keep = [i for i, f in enumerate(raw.feature_names) if f != "sex"]
        return raw.data[:, keep]
    raise ValueError(name)


DATASETS = ("wine", "breast_cancer", "diabetes")


def split(x, seed):
    """``(train, validation, test)``: jittered by each feature's median gap, standardized by
    the training part."""
    rng = np.random.default_rng(seed)
    resolution = np.array(
        [np.median(np.diff(np.unique(c))) if len(np.unique(c)) > 1 else 1.0 for c in x.T]
    )
    x = x + rng.uniform(-0.5, 0.5, x.shape) * resolution
    order = rng.permutation(len(x))
    n_train, n_val = int(0.7 * len(x)), int(0.1 * len(x))
    parts = np.split(x[order], [n_train, n_train + n_val])
    mean, std = parts[0].mean(0), parts[0].std(0)
    return [((p - mean) / std).astype(np.float32) for p in parts]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, DATASETS, steps=2000, batch_size=64, learning_rate=1e-3)
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--hidden-units", type=int, nargs="+", default=[128, 128])
    args = parser.parse_args(argv)

    table, seconds, weights = {}, {}, {}
    for name in args.datasets:
        x = load(name)
        table[name] = {"gaussian": [], **{k: [] for k in args.kinds}}
        for seed in range(args.splits):
            train_x, val_x, test_x = split(x, seed)
            table[name]["gaussian"].append(gaussian_log_likelihood(train_x, test_x))
            for kind in args.kinds:
                keras.utils.set_random_seed(seed)
                flow = build(kind, x.shape[1], hidden_units=args.hidden_units)
                took = train(
                    flow,
                    train_x,
                    steps=args.steps,
                    batch_size=args.batch_size,
                    learning_rate=args.learning_rate,
                    validation=val_x,
                    seed=seed,
                )
                table[name][kind].append(mean_log_likelihood(flow, test_x)[0])
                seconds.setdefault(kind, []).append(took)
                weights[(name, kind)] = flow.count_params()
                print(f"{name} split {seed} {kind}: {table[name][kind][-1]:.3f}", flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\n{command}")
    print(
        f"test mean log-likelihood (nats per example), mean +- sd over {args.splits} splits; "
        f"{args.steps:,} steps of {args.batch_size} for every flow"
    )
    columns = ["gaussian", *args.kinds]
    print(f"{'dataset':>14} {'D':>3} " + " ".join(f"{c:>16}" for c in columns))
    for name, row in table.items():
        dims = load(name).shape[1]
        cells = [f"{np.mean(row[c]):7.3f} +- {np.std(row[c]):5.3f}" for c in columns]
        print(f"{name:>14} {dims:3d} " + " ".join(f"{c:>16}" for c in cells))
    for name in table:
        print(f"weights on {name}: " + ", ".join(f"{k} {weights[(name, k)]:,}" for k in args.kinds))
    print(
        "mean training seconds per run: "
        + ", ".join(f"{k} {np.mean(v):.1f}" for k, v in seconds.items())
    )


if __name__ == "__main__":
    main()
