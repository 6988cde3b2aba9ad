"""Scoring and sampling speed of the zoo's flows, as a Keras user and as TF Serving call them,
beside normflows' matched models (PyTorch) in the same run.

    python bench/inference.py                        # every flow, MNIST-sized (28x28x1)
    python bench/inference.py --flows realnvp glow --repeats 5 --peers none
    python bench/inference.py --flows maf iaf --skip eager   # not the zoo's eager calls

For each flow (`zoo.registry` names, built for 28x28x1 images with 256 levels and the registry's
defaults: the shipped MNIST presets' architectures; ``realnvp_packed``: ``realnvp`` with
``checkerboard="packed"``; random weights, which cost what trained ones do), each flow in a
process of its own (``--one NAME``, so that the peak RSS of a mode is that flow's, as the
peers' are):

* ``log_prob`` of a batch of 256 images (images/s) and of one image (latency, ms): the Keras
  model's method called eagerly (``model.log_prob(x)``, what a script does), the same method in
  a ``tf.function`` (traced once), with ``jit_compile=True`` (XLA), the exported SavedModel's
  ``log_prob`` signature (``tf.saved_model.load(path).signatures["log_prob"](images=x)``), and
  TF Serving's Predict call on that export (``tests/serving.py``'s emulation: graph mode, one
  cached session callable, tensors from and into the request's protos); both again on an export
  with ``jit_compile=True`` ("SavedModel XLA", "TF Serving XLA": what TF Serving started with
  ``--xla_cpu_compilation_enabled=true`` runs), where the flow compiles;
* sampling 256 images and one image: ``model.sample(n)`` eagerly and in a ``tf.function``, and
  the ``sample`` signature (``z`` drawn by the caller) through the SavedModel and TF Serving;
* the peak RSS of the process while each mode ran (`_memory`).

Each figure is the median of ``--repeats`` timed calls after one untimed call (tracing
excluded). The MAF samples in one MADE pass per dimension (784 here) and the IAF scores in as
many: those directions get a third of the repeats.

Then normflows' models matched to each flow (`_peers/normflows_inference.py`, run with
``--peers``, the Python of a separate environment with torch and normflows; see
../shared/peers/README.md), one process per flow, eager and ``torch.compile``: each flow's line
"zoo X / normflows Y" compares the fastest mode of each side.
"""

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from _memory import peak_rss_mib, reset_peak
from tensorflow_serving.apis import predict_pb2

from zoo import registry
from zoo.data import DataInfo
from zoo.serving import export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.serving import Servable  # noqa: E402  (TF Serving's Predict path, emulated)

tf.get_logger().setLevel("ERROR")  # the emulated warm-up's deprecation notice

FLOWS = ["nice", "realnvp_flat", "realnvp", "realnvp_packed", "glow", "nsf", "maf", "iaf"]
# Zoo flows that are a registry model with other options.
VARIANTS = {"realnvp_packed": ("realnvp", {"checkerboard": "packed"})}
MNIST = DataInfo("mnist", (28, 28, 1), 256)
PEERS_PYTHON = os.path.join(ROOT, "..", "peers-venv", "bin", "python")
# normflows' models of a zoo flow; the first is its counterpart as normflows builds it. The
# multi-scale RealNVP's second does the zoo's work: its checkerboard couplings convolve the
# masked full-size map, where normflows' gather half of it, as the zoo's packed checkerboards do.
COUNTERPARTS = {"realnvp": ["realnvp", "realnvp_masked"], "realnvp_packed": ["realnvp"]}


def create(name):
    """The zoo flow ``name`` (a registry name or a `VARIANTS` key) for 28x28x1 images."""
    model_name, options = VARIANTS.get(name, (name, {}))
    return registry.create_model(model_name, MNIST, **options)


def timed(call, repeats):
    """Median seconds of ``repeats`` calls of ``call`` after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def serving_call(servable, signature, key, value):
    """TF Serving's Predict call on the emulated servable: the request built by the client
    (untimed), the server's work timed (tensors from the request, the session run, the
    response's tensors)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = signature
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return lambda: servable.predict(request)


def measure(figures, key, calls, batch, repeats):
    """``figures[key] = (batch images/s, batch-1 ms, peak RSS MiB)``, or the error's text."""
    reset_peak()
    try:
        per_batch = timed(calls[batch], repeats)
        figures[key] = (batch / per_batch, 1e3 * timed(calls[1], repeats), peak_rss_mib())
    except Exception as error:  # XLA may not compile every op on CPU
        figures[key] = f"{type(error).__name__}: {str(error).splitlines()[0][:60]}"


def row(name, repeats, batch, out, skip=()):
    model = create(name)
    rng = np.random.default_rng(0)
    sizes = (1, batch)
    images = {n: tf.constant(rng.uniform(0.02, 0.98, (n, 28, 28, 1)), tf.float32) for n in sizes}
    model.log_prob(images[1])  # builds the weights
    latents = {n: 0.8 * tf.random.stateless_normal((n, *model.latent_shape), [0, n]) for n in sizes}
    exports, xla_error = {"": export.export(model, out, model_name=name)}, None
    try:
        exports[" XLA"] = export.export(model, out, model_name=f"{name}_xla", jit_compile=True)
    except ValueError as error:  # some flows do not compile
        xla_error = str(error)
    signatures = {k: tf.saved_model.load(p).signatures for k, p in exports.items()}
    servables = {k: Servable(p, name) for k, p in exports.items()}
    scoring = {
        "eager": model.log_prob,
        "tf.function": tf.function(model.log_prob),
        "XLA": tf.function(model.log_prob, jit_compile=True),
    }
    sampling = {
        "eager": lambda n: model.sample(n, seed=[0, 1]),
        "tf.function": tf.function(lambda n: model.sample(n, seed=[0, 1]), reduce_retracing=True),
    }
    for k, sig in signatures.items():
        scoring[f"SavedModel{k}"] = lambda x, sig=sig: sig["log_prob"](images=x)
        sampling[f"SavedModel{k}"] = lambda n, sig=sig: sig["sample"](z=latents[n])
    for how in skip:
        scoring.pop(how, None)
        sampling.pop(how, None)
    # The direction an autoregressive flow computes unit by unit (D passes) gets fewer repeats.
    sequential = {"inverse": "sample", "forward": "log_prob"}.get(model.get_config().get("fast"))
    few = lambda what: max(1, repeats // 3) if what == sequential else repeats  # noqa: E731
    figures = {"weights": model.count_params(), "sequential": sequential}
    if xla_error:
        figures["export XLA"] = xla_error
    for how, fn in scoring.items():
        calls = {n: (lambda fn=fn, n=n: fn(images[n])) for n in sizes}
        measure(figures, f"log_prob {how}", calls, batch, few("log_prob"))
    for k, servable in servables.items():
        calls = {n: serving_call(servable, "log_prob", "images", images[n]) for n in sizes}
        measure(figures, f"log_prob TF Serving{k}", calls, batch, few("log_prob"))
    for how, fn in sampling.items():
        calls = {n: (lambda fn=fn, n=n: fn(n)) for n in sizes}
        measure(figures, f"sample {how}", calls, batch, few("sample"))
    for k, servable in servables.items():
        calls = {n: serving_call(servable, "sample", "z", latents[n]) for n in sizes}
        measure(figures, f"sample TF Serving{k}", calls, batch, few("sample"))
    return figures


def zoo_rows(args):
    """Each flow in a subprocess of this script (``--one NAME``): ``{flow: figures}``."""
    rows = {}
    for name in args.flows:
        command = [sys.executable, os.path.abspath(__file__), "--one", name]
        command += ["--repeats", str(args.repeats), "--batch", str(args.batch)]
        command += ["--skip", *args.skip] if args.skip else []
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"{name}: {shlex.join(command)} exited with {done.returncode}")
        rows[name] = json.loads(lines[-1])
        print(f"{name}: done", file=sys.stderr, flush=True)
    return rows


def peer_rows(args, flows):
    """normflows' matched models, one process per flow (`_peers/normflows_inference.py`)."""
    script = os.path.join(ROOT, "bench", "_peers", "normflows_inference.py")
    peers = list(dict.fromkeys(p for name in flows for p in COUNTERPARTS.get(name, [name])))
    command = [args.peers, script, "--flows", *peers]
    command += ["--repeats", str(args.repeats), "--batch", str(args.batch)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the peers' run failed ({shlex.join(command)}):\n{done.stderr[-2000:]}")
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {r["flow"]: r for r in rows}


def shown(value):
    if isinstance(value, str):
        return value
    return f"{value[0]:9.1f} img/s {value[1]:9.2f} ms {value[2]:7.0f} MiB"


def ratio(ours, theirs, index):
    if isinstance(ours, str) or isinstance(theirs, str) or theirs is None:
        return "   -"
    if index == 0:  # images/s: higher is better
        return f"{ours[0] / theirs[0]:5.2f}x"
    return f"{theirs[1] / ours[1]:5.2f}x"  # ms: lower is better; > 1 means the zoo is faster


def best(figures, what):
    """The fastest mode's figures for ``what`` (``log_prob`` / ``sample``) at batch B."""
    found = [
        (key.split(" ", 1)[1], value)
        for key, value in figures.items()
        if key.startswith(what + " ") and not isinstance(value, str)
    ]
    return max(found, key=lambda item: item[1][0], default=(None, None))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", nargs="+", default=FLOWS, choices=FLOWS)
    parser.add_argument("--one", choices=FLOWS, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument(
        "--skip",
        nargs="+",
        default=[],
        choices=["eager", "tf.function", "XLA"],
        help="the zoo's Keras modes not to time (eager: the MAF samples a batch in ~30 s)",
    )
    parser.add_argument(
        "--peers",
        default=PEERS_PYTHON,
        help="the Python with torch and normflows ('none': the zoo alone)",
    )
    args = parser.parse_args(argv)
    if args.one:
        with tempfile.TemporaryDirectory() as out:
            figures = row(args.one, args.repeats, args.batch, out, args.skip)
            print(json.dumps(figures), flush=True)
        return
    if args.peers != "none" and not os.path.exists(args.peers):
        parser.error(f"--peers: no Python at {args.peers} (see ../shared/peers/README.md)")
    results = zoo_rows(args)
    peers = {} if args.peers == "none" else peer_rows(args, args.flows)
    print(
        f"\nbatch {args.batch}: images/s; batch 1: ms per call (median of {args.repeats}); "
        "the peak RSS of the process while the mode ran"
    )
    for name, figures in results.items():
        slow = f"; {figures['sequential']} takes D passes" if figures["sequential"] else ""
        print(f"\n{name} ({figures['weights']:,} weights{slow})")
        for key, value in figures.items():
            if key.startswith(("log_prob", "sample", "export")):
                print(f"  zoo {key:26s} {shown(value)}")
        for peer_name in COUNTERPARTS.get(name, [name]):
            peer = peers.get(peer_name, {})
            for key, value in peer.items():
                if key.startswith(("log_prob", "sample")):
                    print(f"  normflows {peer_name} {key:20s} {shown(value)}")
            if not peer:
                continue
            print(
                f"  normflows {peer_name}: {peer.get('weights', 0):,} weights, {peer['matching']}"
            )
            for what in ("log_prob", "sample"):
                ours, theirs = best(figures, what), best(peer, what)
                print(
                    f"  {what}: zoo {ours[0]} / normflows {peer_name} {theirs[0]}: "
                    f"batch {args.batch} {ratio(ours[1], theirs[1], 0)}, "
                    f"batch 1 {ratio(ours[1], theirs[1], 1)} (above 1: the zoo is faster)"
                )
    command = " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\nreproduce: python {command}")


if __name__ == "__main__":
    main()
