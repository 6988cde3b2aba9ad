"""Scoring and sampling speed of the zoo's flows, as a Keras user and as TF Serving call them.

    python bench/inference.py                        # every flow, MNIST-sized (28x28x1)
    python bench/inference.py --flows realnvp glow --repeats 5

For each flow (`zoo.registry` names, built for 28x28x1 images with 256 levels and the registry's
defaults: the shipped MNIST presets' architectures; random weights, which cost what trained
ones do), in one process, one flow after the other:

* ``log_prob`` of a batch of 256 images (images/s) and of one image (latency, ms): the Keras
  model's method called eagerly (``model.log_prob(x)``, what a script does), the same method in
  a ``tf.function`` (traced once), with ``jit_compile=True`` (XLA), and the exported SavedModel's
  ``log_prob`` signature called as TF Serving calls it (``tf.saved_model.load(path)
  .signatures["log_prob"](images=x)``: the concrete function its Predict API runs);
* sampling 256 images and one image: ``model.sample(n)`` eagerly and in a ``tf.function``, and
  the ``sample`` signature (``z`` drawn by the caller);
* the process's peak RSS while the flow ran (`_memory`).

Each figure is the median of ``--repeats`` timed calls after one untimed call (tracing
excluded). MAF samples in one MADE pass per dimension (784 here) and IAF would score in as many:
the MAF rows say what that costs.
"""

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from _memory import peak_rss_mib, reset_peak

from zoo import registry
from zoo.data import DataInfo
from zoo.serving import export

FLOWS = ["nice", "realnvp_flat", "realnvp", "glow", "nsf", "maf"]
MNIST = DataInfo("mnist", (28, 28, 1), 256)


def timed(call, repeats):
    """Median seconds of ``repeats`` calls of ``call`` after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(name, repeats, batch, out):
    model = registry.create_model(name, MNIST)
    rng = np.random.default_rng(0)
    images = {
        n: tf.constant(rng.uniform(0.02, 0.98, (n, 28, 28, 1)), tf.float32) for n in (1, batch)
    }
    model.log_prob(images[1])  # builds the weights
    latents = {
        n: 0.8 * tf.random.stateless_normal((n, *model.latent_shape), [0, n]) for n in images
    }
    path = export.export(model, out, model_name=name)
    signatures = tf.saved_model.load(path).signatures
    log_prob = {
        "eager": model.log_prob,
        "tf.function": tf.function(model.log_prob),
        "XLA": tf.function(model.log_prob, jit_compile=True),
        "SavedModel": lambda x: signatures["log_prob"](images=x),
    }
    sample = {
        "eager": lambda n: model.sample(n, seed=[0, 1]),
        "tf.function": tf.function(lambda n: model.sample(n, seed=[0, 1]), reduce_retracing=True),
        "SavedModel": lambda n: signatures["sample"](z=latents[n]),
    }
    figures = {"weights": model.count_params()}
    for how, fn in log_prob.items():
        try:
            figures[f"log_prob {how}"] = (
                batch / timed(lambda fn=fn: fn(images[batch]), repeats),
                1e3 * timed(lambda fn=fn: fn(images[1]), repeats),
            )
        except Exception as error:  # XLA may not compile every op on CPU
            figures[f"log_prob {how}"] = f"{type(error).__name__}: {str(error)[:60]}"
    for how, fn in sample.items():
        few = max(1, repeats // 3) if name == "maf" else repeats  # MAF: 784 passes a draw
        figures[f"sample {how}"] = (
            batch / timed(lambda fn=fn: fn(batch), few),
            1e3 * timed(lambda fn=fn: fn(1), few),
        )
    figures["peak RSS MiB"] = peak_rss_mib()
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", nargs="+", default=FLOWS, choices=FLOWS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as out:
        for name in args.flows:
            reset_peak()
            results[name] = row(name, args.repeats, args.batch, out)
            print(f"{name}: done", file=sys.stderr, flush=True)
    print(f"\nbatch {args.batch}: images/s; batch 1: ms per call (median of {args.repeats})")
    for name, figures in results.items():
        print(
            f"\n{name} ({figures['weights']:,} weights, peak RSS {figures['peak RSS MiB']:.0f} MiB)"
        )
        for key, value in figures.items():
            if key.startswith(("log_prob", "sample")):
                shown = (
                    value if isinstance(value, str) else f"{value[0]:9.1f} img/s {value[1]:9.2f} ms"
                )
                print(f"  {key:24s} {shown}")
    command = " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\nreproduce: python {command}")


if __name__ == "__main__":
    main()
