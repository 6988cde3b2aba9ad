"""What skipping non-finite steps costs: RealNVP train steps on the digits through
`tfflows.minimize` (finite check on the loss and every gradient, a conditional update, batch-norm
statistics snapshotted and put back) against the same step without the guard.

    python bench/step_guard.py [--steps 200] [--rounds 5] [--policy float32]

Both steps are compiled in one process and timed in alternating rounds of ``--steps`` steps on
the same batch; the figure is the median of the per-round time ratios (guarded / unguarded).
"""

import argparse
import statistics
import time

import keras
import tensorflow as tf
from _memory import peak_rss_mib


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--policy", default="float32", help="e.g. mixed_bfloat16")
    args = parser.parse_args()

    from tfflows import minimize
    from zoo import data
    from zoo.models import flows

    keras.config.set_dtype_policy(args.policy)
    train, info = data.load("digits", "train", batch_size=64, drop_remainder=True)
    batch = next(iter(train))
    model = flows.RealNVP(info.image_shape, info.num_levels, num_scales=2)
    model.compile(**model.compile_defaults())
    optimizer, variables = model.optimizer, model.trainable_variables
    optimizer.build(variables)

    def loss_fn():
        return -tf.reduce_mean(model.log_prob(batch, training=True)), None

    @tf.function
    def guarded():
        return minimize(optimizer, variables, loss_fn, state=model.non_trainable_variables)[0]

    @tf.function
    def unguarded():
        with tf.GradientTape() as tape:
            loss, _ = loss_fn()
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss

    def timed(step):
        step().numpy()  # traced before the first round
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = step()
        loss.numpy()
        return time.perf_counter() - start

    timed(guarded), timed(unguarded)
    ratios, rows = [], []
    for _ in range(args.rounds):
        a, b = timed(guarded), timed(unguarded)
        ratios.append(a / b)
        rows.append((a, b))
    per_step = [1000 * a / args.steps for a, _ in rows], [1000 * b / args.steps for _, b in rows]
    print(f"RealNVP digits, batch 64, {args.policy}, {model.count_params():,} weights")
    print(f"guarded   {statistics.median(per_step[0]):.2f} ms/step (median of {args.rounds})")
    print(f"unguarded {statistics.median(per_step[1]):.2f} ms/step")
    print(
        f"guarded / unguarded: median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    )
    print(
        f"command: python bench/step_guard.py --steps {args.steps} --rounds {args.rounds} "
        f"--policy {args.policy}"
    )
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
