"""NICE and multi-scale RealNVP on real MNIST at a fixed CPU training budget each.

    python bench/mnist_flows.py --mnist ../shared/data/mnist --budget-minutes 10

Trains on the first 9,000 images of the MNIST test set and holds out the last 1,000 (the idx
files in --mnist; any folder with t10k-images-idx3-ubyte[.gz] works). Each model trains with the
same optimizer for the same wall-clock budget; then prints, per model, the held-out mean
log-likelihood (nats per image, of the dequantized data in [0, 1)^784), bits/dim of the discrete
8-bit data, and training throughput (images/s, tracing and validation excluded), in one table.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import tensorflow as tf

from zoo import callbacks, data, registry

CONFIGS = {
    # The NICE paper's MNIST model: 4 couplings, 5 x 1000 ReLU MLPs, logistic prior.
    "nice": {},
    # The RealNVP multi-scale architecture, sized for a 2-core CPU.
    "realnvp": {"num_scales": 3, "filters": 32, "num_blocks": 2},
}


def run(name, mnist, budget_seconds, batch_size, learning_rate, seed):
    keras.utils.set_random_seed(seed)
    train, info = data.load(mnist, "test[:9000]", batch_size=batch_size, shuffle=True, seed=seed)
    held_out, _ = data.load(mnist, "test[9000:]", batch_size=500, dequantize_seed=seed)
    model = registry.create_model(name, info.image_shape, info.num_levels, **CONFIGS[name])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    budget = callbacks.TimeBudget(budget_seconds)
    start = time.perf_counter()
    model.fit(
        train.repeat(),
        steps_per_epoch=9000 // batch_size,
        epochs=10_000,
        verbose=2,
        callbacks=[budget],
        shuffle=False,
    )
    seconds = time.perf_counter() - start
    result = model.evaluate(held_out, verbose=0, return_dict=True)
    return {
        "model": name,
        "config": CONFIGS[name],
        "weights": model.count_params(),
        "train_seconds": round(seconds, 1),
        "images_seen": budget.batches * batch_size,
        "epochs": round(budget.batches * batch_size / 9000, 2),
        "images_per_second": round(budget.steady_batches * batch_size / budget.steady_seconds, 1),
        "held_out_log_likelihood_nats": round(-result["loss"], 2),
        "held_out_bits_per_dim": round(result["bits_per_dim"], 4),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", default=os.path.join("..", "shared", "data", "mnist"))
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)

    rows = [
        run(m, args.mnist, 60 * args.budget_minutes, args.batch_size, args.learning_rate, args.seed)
        for m in args.models
    ]
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
            f"{r['model']:8s} {r['weights']:11,d} {r['epochs']:7.2f} "
            f"{r['images_per_second']:8.1f} {r['held_out_log_likelihood_nats']:9.2f} "
            f"{r['held_out_bits_per_dim']:9.4f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
