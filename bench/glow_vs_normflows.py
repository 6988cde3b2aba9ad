"""The zoo's Glow against normflows' Glow (PyTorch) on MNIST, side by side in one run.

    python bench/glow_vs_normflows.py --minutes 10

The peer is ../shared/peers/glow_normflows.py (normflows, the most used PyTorch flow library:
2 scales, 8 Glow blocks per scale with 64-channel coupling nets, Logit(0.05), uniform
dequantization, Adam 1e-3, batch 64), run by the Python of a separate environment that has
torch and normflows (--torch-python; default ../torch-venv/bin/python): never a dependency of
the project. The zoo's Glow is bench/mnist_flows.py's (2 scales, 8 steps per scale, 64 filters)
with its best recipe (variational dequantization, lr 2e-3 with 100 warm-up steps and a cosine
decay over the last 20%, EMA 0.99, clipping at 40,000, the `auto` dtype policy).

Both train on the 60,000 MNIST training images and report bits/dim of the discrete 8-bit data on
the 10,000 test images (`--protocol test9k`: the earlier test[:9000] / test[9000:]). Three runs,
one after the other on the same CPU:

1. each for --minutes of training time (evaluation excluded): the framework's speed counts;
2. the one that saw more images in (1) again for exactly as many training steps as the other
   saw: equal training images, where only the recipe counts (a shorter run of its own schedule,
   not a point on the longer run's).

Prints images, images/s, weights and held-out bits/dim per run, and the CPU.
"""

import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import mnist_flows
import tensorflow as tf
from _protocol import splits

from zoo import cli
from zoo.training import precision

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared")
PEER = os.path.join(SHARED, "peers", "glow_normflows.py")
RECIPE = [
    *("--learning-rate", "2e-3", "--set", "dequantization=variational", "--ema", "0.99"),
    *("--lr-schedule", "cosine", "--warmup-steps", "100", "--decay-fraction", "0.2"),
    *("--clip-norm", "40000", "--mixed-precision", "auto"),
]


def zoo_glow(args, out, steps=None):
    """The zoo's Glow for ``--minutes``, or for exactly ``steps`` steps."""
    changes = {"epochs": 1, "steps_per_epoch": steps, "time_budget": None} if steps else {}
    row = mnist_flows.run("glow", args, out, **changes)
    model = keras.saving.load_model(os.path.join(out, "glow", "model.keras"))
    return {
        "model": "zoo Glow",
        "images": int(model.optimizer.iterations) * args.batch_size,
        "minutes": row["train_seconds"] / 60,
        "images_per_second": row["images_per_second"],
        "weights": row["weights"],
        "bits_per_dim": row["held_out_bits_per_dim"],
    }


def peer_glow(args, steps=None):
    """normflows' Glow for ``--minutes``, or for exactly ``steps`` steps."""
    train, test = splits(args)
    command = [args.torch_python, PEER, os.path.abspath(args.mnist), str(60 * args.minutes)]
    command += ["--train", train, "--test", test, "--seed", str(args.seed)]
    command += ["--steps", str(steps)] if steps else []
    print("peer:", " ".join(command), flush=True)
    out = subprocess.run(command, capture_output=True, text=True, cwd=os.path.dirname(PEER))
    if out.returncode:
        sys.exit(f"the peer failed:\n{out.stderr[-2000:]}")
    print(out.stdout, end="", flush=True)
    result = dict(re.findall(r"(\w+)=(\S+)", out.stdout.splitlines()[-1]))
    epochs = re.findall(r"epoch \d+: (\d+) images, (\d+) s", out.stdout)
    images = steps * 64 if steps else int(epochs[-1][0])
    seconds = images / float(result["images_per_s"])
    return {
        "model": "normflows Glow",
        "images": images,
        "minutes": seconds / 60,
        "images_per_second": float(result["images_per_s"]),
        "weights": int(result["weights"]),
        "bits_per_dim": float(result["held_out_bits_per_dim"]),
    }


def main(argv=None):
    parser = mnist_flows.build_parser(__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="each timed run's")
    parser.add_argument(
        "--torch-python", default=os.path.join(SHARED, "..", "torch-venv", "bin", "python")
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args([*RECIPE, "--models", "glow", *argv])
    args.budget_minutes = args.minutes
    args.options = {"glow": cli.parse_set(args.set, "glow")}
    if subprocess.call([args.torch_python, "-c", "import normflows"], stderr=subprocess.DEVNULL):
        sys.exit(f"{args.torch_python} cannot import torch and normflows (see --torch-python)")

    with tempfile.TemporaryDirectory() as scratch:
        timed = [zoo_glow(args, os.path.join(scratch, "timed")), peer_glow(args)]
        fewer = min(timed, key=lambda r: r["images"])
        steps = fewer["images"] // args.batch_size
        if timed[0] is fewer:
            equal = [fewer, peer_glow(args, steps)]
        else:
            equal = [zoo_glow(args, os.path.join(scratch, "equal"), steps), fewer]

    protocol = " / ".join(splits(args))
    print(f"\nGlow on MNIST ({protocol}), held-out bits/dim; CPU: {precision.cpu_model()}")
    print(
        f"{'run':22s} {'model':15s} {'images':>9s} {'minutes':>7s} {'img/s':>7s} "
        f"{'weights':>10s} {'bits/dim':>8s}"
    )
    for label, rows in ((f"{args.minutes:g} min each", timed), ("equal images", equal)):
        for r in rows:
            print(
                f"{label:22s} {r['model']:15s} {r['images']:9,d} {r['minutes']:7.1f} "
                f"{r['images_per_second']:7.1f} {r['weights']:10,d} {r['bits_per_dim']:8.4f}"
            )
        gap = rows[0]["bits_per_dim"] - rows[1]["bits_per_dim"]
        print(f"{'':22s} zoo - peer: {gap:+.4f} bits/dim")
    print(f"\ncommand: python bench/glow_vs_normflows.py {' '.join(argv)}")
    print(f"TF {tf.__version__}, {os.cpu_count()} CPU cores")


if __name__ == "__main__":
    main()
