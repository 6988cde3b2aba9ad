"""The vector flows the density benchmarks compare, built the same way at the same size, and how
they are trained and scored (bench/density_2d.py, bench/tabular_density.py).

Each flow has ``layers`` transforms of a ``D``-vector with conditioners of ``hidden_units``:

* ``affine``: RealNVP affine couplings (`tfflows.bijectors.AffineCoupling`) on alternating
  halves, MLP conditioners;
* ``spline``: rational-quadratic spline couplings (`RationalQuadraticCoupling`, 8 bins on
  ``[-bound, bound]``, identity tails) on alternating halves, MLP conditioners;
* ``maf``: MAF (`MaskedAutoregressive`, affine), MADE conditioners in alternating orders;
* ``maf_spline``: the same with spline transforms (autoregressive neural spline flow).

A per-unit ActNorm starts each layer, so every flow sees inputs of unit scale.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

import tfflows
from tfflows import bijectors, masks, nets

KINDS = ("affine", "spline", "maf", "maf_spline")
BINS = 8


def build(kind, dims, layers=5, hidden_units=(64, 64), bound=4.0):
    """Flow ``kind`` (see the module docstring) over ``dims``-vectors."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    chain = []
    spline_params = 3 * BINS - 1
    for i in range(layers):
        chain.append(bijectors.ActNorm([dims]))
        if kind in ("affine", "spline"):
            mask = masks.half(dims, parity=i % 2)
            units = mask.transformed_shape[-1]
            if kind == "affine":
                chain.append(bijectors.AffineCoupling(mask, nets.MLP(hidden_units, 2 * units)))
            else:
                net = nets.MLP(hidden_units, spline_params * units)
                chain.append(bijectors.RationalQuadraticCoupling(mask, net, BINS, bound))
        else:
            order = "natural" if i % 2 == 0 else "reversed"
            params = 2 if kind == "maf" else spline_params
            made = nets.MADE(dims, params, hidden_units, order=order)
            transform = "affine" if kind == "maf" else "spline"
            chain.append(bijectors.MaskedAutoregressive(made, transform, bins=BINS, bound=bound))
    return tfflows.Flow(chain, event_shape=[dims])


def add_options(parser, datasets, steps, batch_size, learning_rate):
    """The command-line options the density benchmarks share (their defaults differ)."""
    parser.add_argument("--datasets", nargs="+", default=list(datasets), choices=list(datasets))
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--learning-rate", type=float, default=learning_rate)


def train(flow, x, *, steps, batch_size, learning_rate=1e-3, validation=None, seed=0):
    """Adam with a cosine decay over ``steps`` steps of ``batch_size`` from ``x``; with
    ``validation`` the weights of the best validation epoch (of 20 evenly spaced) are kept.
    Returns the seconds of training."""
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    flow.compile(optimizer=keras.optimizers.Adam(schedule))
    ds = (
        tf.data.Dataset.from_tensor_slices(x.astype(np.float32))
        .shuffle(len(x), seed=seed)
        .repeat()
        .batch(batch_size, drop_remainder=True)
        .prefetch(2)
    )
    callbacks = []
    if validation is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                "val_loss", patience=10**9, restore_best_weights=True, start_from_epoch=0
            )
        )
    epochs = 20
    start = time.perf_counter()
    flow.fit(
        ds,
        epochs=epochs,
        steps_per_epoch=math.ceil(steps / epochs),
        validation_data=None if validation is None else validation.astype(np.float32),
        validation_batch_size=4096,
        callbacks=callbacks,
        verbose=0,
    )
    return time.perf_counter() - start


def mean_log_likelihood(flow, x, batch_size=8192):
    """Mean ``log q(x)`` (nats) over ``x`` and its standard error."""
    scores = np.concatenate(
        [
            flow.log_prob(tf.constant(x[i : i + batch_size], tf.float32)).numpy()
            for i in range(0, len(x), batch_size)
        ]
    )
    return float(scores.mean()), float(scores.std() / math.sqrt(len(scores)))


def gaussian_log_likelihood(train, test):
    """Mean held-out log-likelihood of the maximum-likelihood full-covariance Gaussian."""
    mean, cov = train.mean(0), np.cov(train, rowvar=False, bias=True)
    diff = test - mean
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    _, logdet = np.linalg.slogdet(cov)
    return float(np.mean(-0.5 * (maha + logdet + train.shape[1] * math.log(2 * math.pi))))
