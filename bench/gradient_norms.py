"""The global gradient norm of every training step, to choose ``--clip-norm`` from.

    python bench/gradient_norms.py --models glow --seed 1 --budget-minutes 3.5 --mixed-precision \\
        auto --learning-rate 2e-3 --warmup-steps 100 --ema 0.99 --set dequantization=variational

Trains each model exactly as bench/mnist_flows.py does with the same options (the same data,
configuration, seed and steps), for ``--budget-minutes`` of training, records the norm of the
gradient each step hands to the optimizer (loss scaling undone, before any clipping), and prints
its median, 90th percentile and largest value per window of ``--window`` steps, and the largest
steps. A norm that jumps far above its median for single steps is what ``--clip-norm`` is for:
Adam's second moment (``beta_2 = 0.999``) keeps such a step's square for about 1,000 steps.
"""

import dataclasses
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from mnist_flows import build_parser, run_config

from zoo import cli, training
from zoo.models import optimizers


def record_norms(path):
    """Makes every `FusedAdam` step append ``step norm`` to ``path``."""
    apply = optimizers.FusedAdam.apply

    def traced(self, grads, trainable_variables=None):
        norm = tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads if g is not None])
        tf.print(self.iterations, norm, output_stream="file://" + path)
        return apply(self, grads, trainable_variables)

    optimizers.FusedAdam.apply = traced


def main(argv=None):
    parser = build_parser(__doc__.split("\n")[0])
    parser.add_argument("--window", type=int, default=100, help="steps per line")
    args = parser.parse_args(argv)
    args.options = {m: cli.parse_set(args.set, m) for m in args.models}
    folder = tempfile.mkdtemp(prefix="bench-norms-")
    path = os.path.join(folder, "norms.txt")
    record_norms(path)
    for name in args.models:
        open(path, "w").close()
        config = run_config(name, args, args.out or folder)
        training.run(dataclasses.replace(config, tensorboard=False))
        steps, norms = np.loadtxt(path, ndmin=2).T
        print(f"\n{name}: global gradient norm over {len(norms)} steps")
        print(f"{'steps':>11} {'median':>10} {'90th pct':>10} {'max':>10}")
        for start in range(0, len(norms), args.window):
            part = norms[start : start + args.window]
            print(
                f"{start:5d}-{start + len(part) - 1:<5d} {np.median(part):10.0f} "
                f"{np.percentile(part, 90):10.0f} {part.max():10.0f}"
            )
        top = np.argsort(norms)[-5:][::-1]
        print("largest: " + ", ".join(f"step {int(steps[i])}: {norms[i]:.0f}" for i in top))
    argv = sys.argv[1:] if argv is None else argv
    print("command: python bench/gradient_norms.py " + " ".join(argv))


if __name__ == "__main__":
    main()
