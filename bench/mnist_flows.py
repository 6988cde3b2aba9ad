"""NICE, multi-scale RealNVP and Glow on real MNIST at a fixed CPU training budget each.

    python bench/mnist_flows.py --mnist ../shared/data/mnist --budget-minutes 10
    python bench/mnist_flows.py --models glow --set mixing=alternate   # an ablation

Trains on the first 9,000 images of the MNIST test set and holds out the last 1,000 (the idx
files in --mnist; any folder with t10k-images-idx3-ubyte[.gz] works), through `zoo.training.run`
like `zoo train`. Each model trains with the same optimizer for the same wall-clock budget
(validation excluded); then prints, per model, the held-out mean log-likelihood (nats per image,
of the dequantized data in [0, 1)^784), bits/dim of the discrete 8-bit data, and training
throughput (images/s, tracing and validation excluded), in one table.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

from zoo import cli, precision, training

CONFIGS = {
    # The NICE paper's MNIST model: 4 couplings, 5 x 1000 ReLU MLPs, logistic prior.
    "nice": {},
    # The RealNVP multi-scale architecture, sized for a 2-core CPU.
    "realnvp": {"num_scales": 3, "filters": 32, "num_blocks": 2},
    # Glow: 2 scales (28 -> 14 -> 7), sized for a 2-core CPU.
    "glow": {"num_scales": 2, "steps_per_scale": 8, "filters": 64, "num_blocks": 1},
}


def run(name, args, out):
    metrics = training.run(
        training.RunConfig(
            model=name,
            dataset=args.mnist,
            train_split="test[:9000]",
            test_split="test[9000:]",
            batch_size=args.batch_size,
            epochs=10_000,
            learning_rate=args.learning_rate,
            lr_schedule=args.lr_schedule,
            warmup_steps=args.warmup_steps,
            clip_norm=args.clip_norm,
            ema=args.ema,
            mixed_precision=args.mixed_precision,
            time_budget=60 * args.budget_minutes,
            seed=args.seed,
            options={**CONFIGS[name], **args.options},
            out=os.path.join(out, name),
            export=False,
        )
    )
    return {
        "model": name,
        "config": {**CONFIGS[name], **args.options},
        "weights": metrics["weights"],
        "train_seconds": metrics["train_seconds"],
        "epochs": metrics["epochs_run"],
        "images_per_second": metrics["train_examples_per_second"],
        "held_out_log_likelihood_nats": metrics["held_out_log_likelihood_nats"],
        "held_out_bits_per_dim": metrics["held_out_bits_per_dim"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", default=os.path.join("..", "shared", "data", "mnist"))
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lr-schedule", default="constant", choices=training.LR_SCHEDULES)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--clip-norm", type=float, default=None)
    parser.add_argument("--ema", type=float, default=None)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model option for every model run, as zoo train --set",
    )
    parser.add_argument("--mixed-precision", default="off", choices=precision.MODES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="run folders (default: a temporary one)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    args.options = cli.parse_set(args.set)

    with tempfile.TemporaryDirectory() as scratch:
        rows = [run(m, args, args.out or scratch) for m in args.models]
    print(
        "command: python bench/mnist_flows.py " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    print(
        f"TF {tf.__version__}, {os.cpu_count()} CPU cores, devices "
        f"{[d.device_type for d in tf.config.list_logical_devices()]}"
    )
    print(
        f"{'model':8s} {'weights':>11s} {'epochs':>7s} {'img/s':>8s} {'nats':>9s} {'bits/dim':>9s}"
    )
    for r in rows:
        print(
            f"{r['model']:8s} {r['weights']:11,d} {r['epochs']:7d} "
            f"{r['images_per_second']:8.1f} {r['held_out_log_likelihood_nats']:9.2f} "
            f"{r['held_out_bits_per_dim']:9.4f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
