"""NICE, multi-scale RealNVP and Glow on real MNIST at a fixed CPU training budget each.

    python bench/mnist_flows.py --mnist ../shared/data/mnist --budget-minutes 10
    python bench/mnist_flows.py --models glow --set mixing=alternate   # an ablation
    python bench/mnist_flows.py --models glow nsf glow_conditional --epochs 4   # issue 26

Trains on the 60,000 MNIST training images and reports on the 10,000 test images (the idx files
in --mnist; `--protocol test9k`: the earlier rows' first 9,000 test images, holding out the last
1,000), through `zoo.training.run` like `zoo train`. Each model trains with the same optimizer
for the same budget of training time (validation, checkpoints and pictures excluded); then
prints, per model, the held-out mean log-likelihood (nats per image, of the dequantized data in
[0, 1)^784), bits/dim of the discrete 8-bit data, training throughput (images/s, tracing
excluded) and the model's peak resident memory, in one table.
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from _memory import peak_rss_mib, reset_peak
from _protocol import add_protocol, splits

import tfflows
from zoo import cli, data, training
from zoo.training import precision

CONFIGS = {
    # The NICE paper's MNIST model: 4 couplings, 5 x 1000 ReLU MLPs, logistic prior.
    "nice": {},
    # The RealNVP multi-scale architecture, sized for a 2-core CPU.
    "realnvp": {"num_scales": 3, "filters": 32, "num_blocks": 2},
    # Glow: 2 scales (28 -> 14 -> 7), sized for a 2-core CPU.
    "glow": {"num_scales": 2, "steps_per_scale": 8, "filters": 64, "num_blocks": 1},
    # The same Glow with spline couplings (a multi-scale neural spline flow), and
    # class-conditional (its generative classifier's accuracy in the table).
    "nsf": {"num_scales": 2, "steps_per_scale": 8, "filters": 64, "num_blocks": 1},
    "glow_conditional": {"num_scales": 2, "steps_per_scale": 8, "filters": 64, "num_blocks": 1},
}
DEFAULT_MODELS = ("nice", "realnvp", "glow")


def run_config(name, args, out):
    """The `training.RunConfig` of model ``name`` under the command line ``args``."""
    return training.RunConfig(
        model=name,
        dataset=args.mnist,
        train_split=splits(args)[0],
        test_split=splits(args)[1],
        batch_size=args.batch_size,
        epochs=args.epochs or 10_000,
        learning_rate=args.learning_rate,
        **{aid: getattr(args, aid) for aid in training.TRAINING_AIDS},
        mixed_precision=args.mixed_precision,
        time_budget=None if args.epochs else 60 * args.budget_minutes,
        seed=args.seed,
        options={**CONFIGS[name], **args.options[name]},
        out=os.path.join(out, name),
        export=False,
    )


def run(name, args, out, **changes):
    """Trains model ``name`` as ``args`` say, with ``changes`` to its `training.RunConfig`;
    returns its row."""
    reset_peak()
    metrics = training.run(dataclasses.replace(run_config(name, args, out), **changes))
    peak = peak_rss_mib()  # training's; the bound below runs S x larger batches
    saved = os.path.join(out, name, "model.keras")
    iw = importance_weighted(saved, args) if args.iw_samples else None
    return {
        "model": name,
        "config": {**CONFIGS[name], **args.options[name]},
        "weights": metrics["weights"],
        "train_seconds": metrics["train_seconds"],
        "epochs": metrics["epochs_run"],
        "images_per_second": metrics["train_examples_per_second"],
        "held_out_log_likelihood_nats": metrics["held_out_log_likelihood_nats"],
        "held_out_bits_per_dim": metrics["held_out_bits_per_dim"],
        "held_out_iw_bits_per_dim": iw,
        "held_out_accuracy": metrics.get("held_out_accuracy"),
        "peak_rss_mib": peak,
    }


def importance_weighted(path, args):
    """Held-out bits/dim of the saved model's importance-weighted bound, ``--iw-samples`` draws
    of the dequantization noise per image (`ImageFlow.importance_weighted_log_likelihood`;
    a class-conditional flow's given each image's class)."""
    model = keras.saving.load_model(path)
    samples, labelled = args.iw_samples, bool(model.num_classes)
    ds, info = data.load(
        args.mnist, splits(args)[1], batch_size=max(1, 1024 // samples), with_labels=labelled
    )
    bound = tf.function(
        lambda x, y, seed: model.importance_weighted_log_likelihood(x, samples, seed, y)
    )
    seeds = [tf.constant([args.seed, i], tf.int64) for i in range(len(ds))]  # one trace
    nats = np.concatenate(
        [
            bound(*(batch if labelled else (batch, None)), seed).numpy()
            for batch, seed in zip(ds, seeds, strict=True)
        ]
    )
    return float(np.mean(tfflows.bits_per_dim(nats, info.num_dims, info.num_levels)))


def build_parser(description):
    """This benchmark's command line (bench/gradient_norms.py adds to it)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mnist", default=os.path.join("..", "shared", "data", "mnist"))
    add_protocol(parser)
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="a budget of training images instead (epochs of 60,000), the same on any CPU",
    )
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(CONFIGS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    cli.add_training_aids(parser)
    parser.add_argument(
        "--set",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="a model option for every model run, as zoo train --set",
    )
    parser.add_argument("--mixed-precision", default="off", choices=precision.MODES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--iw-samples",
        type=int,
        default=0,
        help="also the held-out importance-weighted bound with this many noise draws per image",
    )
    parser.add_argument("--out", default=None, help="run folders (default: a temporary one)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    return parser


def main(argv=None):
    args = build_parser(__doc__.split("\n")[0]).parse_args(argv)
    args.options = {m: cli.parse_set(args.set, m) for m in args.models}

    with tempfile.TemporaryDirectory() as scratch:
        rows = [run(m, args, args.out or scratch) for m in args.models]
    print(
        "command: python bench/mnist_flows.py " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    print(
        f"TF {tf.__version__}, {os.cpu_count()} CPU cores, devices "
        f"{[d.device_type for d in tf.config.list_logical_devices()]}"
    )
    iw_title = f" {f'IW-{args.iw_samples} bits/dim':>16s}" if args.iw_samples else ""
    print(
        f"{'model':8s} {'weights':>11s} {'epochs':>7s} {'img/s':>8s} {'nats':>9s} {'bits/dim':>9s}"
        f" {'peak RSS MiB':>13s}{iw_title}"
    )
    for r in rows:
        print(
            f"{r['model']:8s} {r['weights']:11,d} {r['epochs']:7d} "
            f"{r['images_per_second']:8.1f} {r['held_out_log_likelihood_nats']:9.2f} "
            f"{r['held_out_bits_per_dim']:9.4f} {r['peak_rss_mib']:13.0f}"
            + (f" {r['held_out_iw_bits_per_dim']:16.4f}" if args.iw_samples else "")
            + (
                f"  generative-classifier accuracy {r['held_out_accuracy']:.4f}"
                if r["held_out_accuracy"] is not None
                else ""
            )
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
