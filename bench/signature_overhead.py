"""What the exported signatures cost against the traced Keras call, measured side by side.

    python bench/signature_overhead.py --flows nice glow --rounds 21

For each flow (built as in ``bench/inference.py``: 28x28x1, the registry's defaults, random
weights), batch-256 ``log_prob`` and ``sample`` three ways: the Keras method in a
``tf.function``, the exported SavedModel's signature, and TF Serving's Predict call on that
export (``tests/serving.py``'s emulation, the server's work timed). ``bench/inference.py`` times
its modes one after the other, so a drift of this shared machine's speed between modes reads as
a difference between them (there Glow's scoring through TF Serving read 0.88-0.92x of the traced
call in three runs); here the three calls are interleaved round by round, and each ratio is of
medians over the same rounds.
"""

import argparse
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf
from inference import FLOWS, Servable, create, serving_call

from zoo.serving import export


def ratios(name, rounds, batch):
    model = create(name)
    images = tf.constant(
        np.random.default_rng(0).uniform(0.02, 0.98, (batch, 28, 28, 1)), tf.float32
    )
    latents = 0.8 * tf.random.stateless_normal((batch, *model.latent_shape), [0, 1])
    model.log_prob(images[:1])  # builds the weights
    path = export.export(model, tempfile.mkdtemp(), model_name=name)
    signatures = tf.saved_model.load(path).signatures
    servable = Servable(path, name)
    score = tf.function(model.log_prob)
    sample = tf.function(lambda: model.sample(batch, seed=[0, 1]))
    calls = {
        "log_prob": {
            "tf.function": lambda: score(images),
            "SavedModel": lambda: signatures["log_prob"](images=images),
            "TF Serving": serving_call(servable, "log_prob", "images", images),
        },
        "sample": {
            "tf.function": sample,
            "SavedModel": lambda: signatures["sample"](z=latents),
            "TF Serving": serving_call(servable, "sample", "z", latents),
        },
    }
    for what, modes in calls.items():
        times = {mode: [] for mode in modes}
        for call in modes.values():  # warm-up
            call()
        for _ in range(rounds):
            for mode, call in modes.items():
                start = time.perf_counter()
                call()
                times[mode].append(time.perf_counter() - start)
        base = statistics.median(times["tf.function"])
        for mode, t in times.items():
            median = statistics.median(t)
            print(
                f"  {name} {what:8s} {mode:12s} {batch / median:9.1f} img/s  {base / median:.3f}x"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", nargs="+", choices=FLOWS, default=["nice", "glow"])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    print(f"batch {args.batch}, medians of {args.rounds} interleaved rounds; x: of tf.function's")
    for name in args.flows:
        ratios(name, args.rounds, args.batch)
    print(f"\nreproduce: python bench/signature_overhead.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
