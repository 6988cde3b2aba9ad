"""VAE and IWAE on dynamically binarized MNIST: test negative log-likelihood, k = 5,000.

    python bench/binarized_vae.py --budget-minutes 25

The benchmark every VAE paper quotes (Burda, Grosse and Salakhutdinov, "Importance Weighted
Autoencoders", ICLR 2016): train on the 60,000 MNIST training images binarized afresh each
epoch (each pixel a Bernoulli draw whose mean is its intensity; `zoo.data.load(binarize=True)`),
report on the 10,000 test images binarized once (seed 0) with a Bernoulli decoder. The figure
is the test negative log-likelihood in nats per image, estimated by the importance-weighted
bound with k = 5,000 samples (`zoo.VAE.iw_log_likelihood`; an upper bound on -log p(x), within
a few tenths of a nat of it at this k), next to the model's own test loss (-ELBO for the VAE,
-L_k of its training k for the IWAE, one draw each). Anchors: pythae's reproductions,
VAE 89.8 and IWAE (k = 50) 86.8 nats; the IWAE paper, one stochastic layer after 3,280 passes
over the data, VAE 86.76 and IWAE (k = 50) 84.78.

Each model trains through `zoo.training.run` (as `zoo train vae --binarize` does) for the same
budget of training time, in float32; a row gives the training images, wall and CPU minutes
(user + system of this process, training only), images/s and the weights.
"""

import argparse
import math
import os
import resource
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from _protocol import add_protocol, first, splits

from zoo import data, training

# The IWAE paper's one-stochastic-layer networks, twice as wide (a CPU trains them in minutes).
NETWORK = {
    "architecture": "dense",
    "hidden_units": (512, 256),
    "latent_dim": 50,
    "activation": "tanh",
    "likelihood": "bernoulli",
}


BITS = 784 * math.log(2.0)  # nats per bit/dim of a 28x28 image


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(name, iw_samples, args, out):
    config = training.RunConfig(
        model="vae",
        dataset=args.mnist,
        binarize=True,
        train_split=splits(args)[0],
        test_split=splits(args)[1],
        batch_size=args.batch_size,
        epochs=10_000,
        learning_rate=args.learning_rate,
        lr_schedule="cosine",
        mixed_precision="off",
        time_budget=60 * args.budget_minutes,
        seed=args.seed,
        options={**NETWORK, "iw_samples": iw_samples},
        out=os.path.join(out, name),
        export=False,
        tensorboard=False,
    )
    start, wall = cpu_seconds(), time.perf_counter()
    metrics = training.run(config)
    cpu, wall = cpu_seconds() - start, time.perf_counter() - wall
    model = keras.saving.load_model(os.path.join(out, name, "model.keras"))
    nll = test_nll(model, args)
    return {
        "model": name,
        "iw_samples": iw_samples,
        "weights": metrics["weights"],
        "epochs": metrics["epochs_run"],
        "training_images": int(model.optimizer.iterations) * args.batch_size,
        "train_minutes": metrics["train_seconds"] / 60,
        "run_minutes": wall / 60,
        "cpu_minutes": cpu / 60,
        "images_per_second": metrics["train_examples_per_second"],
        "test_loss": metrics["held_out"]["loss"],
        "test_nll": nll,
    }


def test_nll(model, args):
    """Mean ``-L_k`` over the held-out images (binarized once, seed 0), ``k = --eval-samples``,
    ``--eval-batch`` images per call, each call its own stateless seed."""
    held_out = splits(args)[1]
    if args.eval_images:
        held_out = first(held_out, args.eval_images)
    ds, _ = data.load(
        args.mnist,
        held_out,
        binarize=True,
        dequantize_seed=0,
        scaling="unit",
        batch_size=args.eval_batch,
    )
    k = args.eval_samples
    bound = tf.function(lambda x, seed: model.iw_log_likelihood(x, k, seed))
    values, started = [], time.perf_counter()
    for i, x in enumerate(ds):
        values.append(bound(x, tf.constant([args.seed, i], tf.int64)).numpy())
        if i % 500 == 0:
            done = sum(len(v) for v in values)
            print(f"  k={k}: {done} images, {time.perf_counter() - started:.0f} s", flush=True)
    return float(-np.mean(np.concatenate(values)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", default=os.path.join("..", "shared", "data", "mnist"))
    add_protocol(parser)
    parser.add_argument("--budget-minutes", type=float, default=25.0, help="each model's")
    parser.add_argument("--iw-train", type=int, default=5, help="k of the IWAE's objective")
    parser.add_argument("--models", nargs="+", default=["vae", "iwae"], choices=["vae", "iwae"])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--eval-samples", type=int, default=5000)
    parser.add_argument("--eval-batch", type=int, default=2)
    parser.add_argument("--eval-images", type=int, default=None, help="default: all held out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as out:
        for name in args.models:
            rows.append(run(name, 1 if name == "vae" else args.iw_train, args, out))
    print(
        f"\nDynamically binarized MNIST ({' / '.join(splits(args))}): test NLL in nats from "
        f"L_k, k = {args.eval_samples}"
    )
    print(
        f"{'model':10s} {'weights':>9s} {'epochs':>6s} {'images':>10s} {'train min':>9s} "
        f"{'CPU min':>7s} {'img/s':>7s} {'test loss':>9s} {'test NLL':>8s}"
    )
    for r in rows:
        label = r["model"] if r["iw_samples"] == 1 else f"iwae k={r['iw_samples']}"
        print(
            f"{label:10s} {r['weights']:9,d} {r['epochs']:6d} {r['training_images']:10,d} "
            f"{r['train_minutes']:9.1f} {r['cpu_minutes']:7.1f} {r['images_per_second']:7.0f} "
            f"{r['test_loss']:9.2f} {r['test_nll']:8.2f}"
        )
    command = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\ncommand: python bench/binarized_vae.py {command}")
    print(f"TF {tf.__version__}, {os.cpu_count()} CPU cores; bits/dim = nats / {BITS:.1f}")
    return rows


if __name__ == "__main__":
    main()
