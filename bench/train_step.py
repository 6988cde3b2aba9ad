"""Training-step throughput on this CPU under each dtype policy; NICE against the torch peer.

    python bench/train_step.py [--model nice] [--steps 40] [--rounds 3] [--quality-steps 0]

A zoo model in the configuration of its MNIST benchmark (``--model``: NICE as in the paper, 4
additive couplings of 5 x 1000 ReLU MLPs, 19.2M weights, batch 200; the multi-scale RealNVP of
bench/mnist_flows.py; the DCGAN, the VAE and the conv autoencoder of bench/mnist_generative.py; the
zoo defaults of the dense autoencoder, flat RealNVP, classifier and transfer model, the last with an
untrained MobileNetV2; batch 64), trained through `model.fit` on zoo.data's pipeline (the 60,000
training images of ``--mnist``; `--protocol test9k`: the first 9,000 test images). Each variant runs
in its own process; the rounds run every variant once, one after another, so that machine noise hits
them alike. The figure is the median over rounds of the steady-state training samples/s (an epoch of
``--steps`` steps after a warm-up epoch) and the largest peak resident memory of the variant's
process.

For NICE, when torch is importable by ``--torch-python`` (default: ../torch-venv/bin/python if
present, else this Python), ../shared/peers/nice_torch.py runs in the same rounds, in float32 and
under bfloat16 autocast (``AUTOCAST=1``), and ratios are against its bfloat16 figure (its
bits/dim are after ``--torch-seconds`` of training). NICE's variants also include ``bare TF ops
bfloat16``, the same step without Keras (`floor`: what TensorFlow's kernels allow on this CPU),
and ``zoo mixed_bfloat16 unguarded``, an ablation: the zoo step without the non-finite-step
guard of tfflows.gradient_step, which makes every update wait for the last gradient; ``zoo
mixed_bfloat16 EMA`` adds Keras' weight average at 0.999 (``--ema``), updated every step or
every 10th (``--ema-every``, `zoo.models.optimizers.FusedAdam`); these two run only when named in
``--variants``.
``--quality-steps N`` also trains each zoo variant N steps from the same seed and prints its
held-out figure on the test images (test9k: the last 1,000; bits/dim, or the loss; issue 10's bound
for NICE: within 0.02 of float32).
"""

import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from _protocol import add_protocol, splits

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared")
PEER = os.path.join(SHARED, "peers", "nice_torch.py")
MODELS = {
    "nice": ({}, 200),
    "realnvp": ({"num_scales": 3, "filters": 32, "num_blocks": 2}, 64),
    "glow": ({"num_scales": 2, "steps_per_scale": 8, "filters": 64, "num_blocks": 1}, 64),
    "nsf": ({"num_scales": 2, "steps_per_scale": 8, "filters": 64, "num_blocks": 1}, 64),
    "glow_conditional": (
        {"num_scales": 2, "steps_per_scale": 8, "filters": 64, "num_blocks": 1},
        64,
    ),
    "maf": ({}, 64),
    "dcgan": ({}, 64),
    "vae": ({}, 64),
    "conv_autoencoder": ({"latent_dim": 32}, 64),
    "autoencoder": ({}, 64),
    "realnvp_flat": ({}, 64),
    "classifier": ({}, 64),
    "transfer": ({"weights": None}, 64),
}
VARIANTS = {  # dtype policy, XLA, non-finite-step guard, weight average every k steps
    "zoo float32": ("float32", False, True, None),
    "zoo mixed_bfloat16": ("mixed_bfloat16", False, True, None),
    "zoo float32 XLA": ("float32", True, True, None),
    "zoo mixed_bfloat16 unguarded": ("mixed_bfloat16", False, False, None),
    "zoo mixed_bfloat16 EMA": ("mixed_bfloat16", False, True, 1),
    "zoo mixed_bfloat16 EMA every 10": ("mixed_bfloat16", False, True, 10),
}
FLOOR = "bare TF ops bfloat16"


def child(args):
    """One zoo variant in this process: prints a JSON line of its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from zoo import data, registry

    policy, jit, guarded, ema_every = VARIANTS[args.child]
    if not guarded:  # an ablation: what the non-finite-step guard costs
        import tensorflow as tf

        from tfflows import gradient_step

        gradient_step.all_finite = lambda tensors: tf.constant(True)
    options, batch = MODELS[args.model]
    keras.config.set_dtype_policy(policy)
    entry = registry.entry(args.model)
    spec = entry.cls.data_spec_for({**entry.defaults, **options})
    kwargs = {"scaling": spec.scaling, "with_labels": spec.labels, "batch_size": batch}
    train, info = data.load(args.mnist, splits(args)[0], shuffle=True, seed=0, **kwargs)
    test, _ = data.load(args.mnist, splits(args)[1], dequantize_seed=0, **kwargs)

    def fit(steps, epochs, callbacks=()):
        keras.utils.set_random_seed(0)
        model = registry.create_model(args.model, info, **options)
        if ema_every:
            model.optimizer_options = dict(use_ema=True, ema_momentum=0.999, ema_every=ema_every)
        model.compile(**model.compile_defaults(), jit_compile=jit)
        model.fit(
            train.repeat(), steps_per_epoch=steps, epochs=epochs, verbose=0, callbacks=callbacks
        )
        return model

    seconds = []
    timer = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seconds.append(-time.perf_counter()),
        on_epoch_end=lambda epoch, logs: seconds.append(seconds.pop() + time.perf_counter()),
    )
    model = fit(args.steps, 2, [timer])
    row = {"weights": model.count_params(), "samples_per_s": args.steps * batch / seconds[-1]}
    if args.quality_steps:
        model = fit(args.quality_steps, 1)
        results = model.evaluate(test, verbose=0, return_dict=True)
        key = next(k for k in ("bits_per_dim", "loss", *results) if k in results)
        row["quality"] = f"{key} {results[key]:.4f}"
    print(json.dumps(row))


def floor(args):
    """NICE's step in bare TensorFlow ops, bfloat16: the most a TF step can do on this CPU.

    The same math as zoo.NICE's mixed_bfloat16 step without Keras, metrics, input pipeline,
    gradient guard or the log-det bookkeeping: the float32 weights cast to bfloat16, four
    additive couplings of 5 x 1000 ReLU MLPs forward and backward, and TensorFlow's fused Adam
    kernel (the gradients cast back to float32). Prints a JSON line like `child`.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    batch, half, widths = MODELS["nice"][1], 392, [392, *([1000] * 5), 392]
    shapes = [(a, b) for _ in range(4) for a, b in itertools.pairwise(widths)]
    kernels = [tf.Variable(tf.random.normal(s, stddev=s[0] ** -0.5)) for s in shapes]
    biases = [tf.Variable(tf.zeros(s[1])) for s in shapes]
    weights = kernels + biases
    slots = [(tf.Variable(tf.zeros_like(w)), tf.Variable(tf.zeros_like(w))) for w in weights]
    x = tf.random.uniform((batch, 2 * half))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            cast = [tf.cast(w, tf.bfloat16) for w in weights]
            a, b = x[:, :half], x[:, half:]
            for coupling in range(4):
                h = tf.cast(a, tf.bfloat16)
                for layer in range(6):
                    i = 6 * coupling + layer
                    h = tf.matmul(h, cast[i]) + cast[len(kernels) + i]
                    h = tf.nn.relu(h) if layer < 5 else h
                a, b = b + tf.cast(h, tf.float32), a
            loss = tf.reduce_mean(tf.reduce_sum(tf.square(tf.concat([a, b], 1)), 1))
        for w, (m, v), g in zip(weights, slots, tape.gradient(loss, weights), strict=True):
            tf.raw_ops.ResourceApplyAdam(
                var=w.handle, m=m.handle, v=v.handle, beta1_power=0.9, beta2_power=0.999,
                lr=1e-4, beta1=0.9, beta2=0.999, epsilon=1e-7, grad=g,
            )  # fmt: skip
        return loss

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    loss.numpy()
    print(json.dumps({"samples_per_s": args.steps * batch / (time.perf_counter() - start)}))


def run(command, env=None):
    """Runs ``command``; returns its stdout and its peak resident memory (MiB)."""
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, env={**os.environ, **(env or {})}
        )
        out = process.stdout.read().decode()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            err.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed:\n{err.read().decode()[-3000:]}")
    return out, usage.ru_maxrss / 1024


def torch_python(path):
    candidates = [path] if path else [os.path.join(SHARED, "..", "torch-venv", "bin", "python")]
    for python in [*candidates, sys.executable]:
        if os.path.exists(python) and not subprocess.call(
            [python, "-c", "import torch"], stderr=subprocess.DEVNULL
        ):
            return python
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="nice", choices=list(MODELS))
    parser.add_argument("--mnist", default=os.path.join(SHARED, "data", "mnist"))
    add_protocol(parser)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per variant")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality-steps", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=None, choices=[*VARIANTS, FLOOR])
    parser.add_argument("--torch-python", default=None)
    parser.add_argument("--torch-seconds", type=float, default=20.0)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.mnist, "t10k-images-idx3-ubyte.gz")):
        parser.error(f"no MNIST idx files in {args.mnist} (--mnist)")
    if args.variants is None:
        args.variants = [v for v in VARIANTS if "EMA" not in v]  # the averages on request
        args.variants += [FLOOR] if args.model == "nice" else []
    if FLOOR in args.variants and args.model != "nice":
        parser.error(f"--variants {FLOOR!r} is NICE's step only")
    if args.child == FLOOR:
        return floor(args)
    if args.child:
        return child(args)

    commands = {
        name: [sys.executable, __file__, "--child", name, "--model", args.model,
               "--mnist", args.mnist, "--protocol", args.protocol, "--steps", str(args.steps),
               "--quality-steps", str(args.quality_steps)]
        for name in args.variants
    }  # fmt: skip
    envs = {name: None for name in commands}
    python = torch_python(args.torch_python) if args.model == "nice" else None
    if python:
        for name, autocast in (("torch float32", "0"), ("torch bfloat16 autocast", "1")):
            commands[name] = [python, PEER, str(args.torch_seconds)]
            envs[name] = {"AUTOCAST": autocast}
    elif args.model == "nice":
        print("torch is not importable (--torch-python): the peer is left out")
    rows = {name: [] for name in commands}
    for round_ in range(args.rounds):
        for name, command in commands.items():
            out, rss = run(command, envs[name])
            if name.startswith("torch"):
                found = dict(re.findall(r"(\w+)=([-\d.]+)", out))
                row = {"samples_per_s": float(found["samples_per_s"])}
                row["quality"] = f"bits_per_dim {float(found['bits_per_dim']):.4f}"
            else:
                row = json.loads(out.strip().splitlines()[-1])
            rows[name].append({**row, "rss_mib": rss})
            print(f"round {round_ + 1}: {name}: {row['samples_per_s']:.0f} samples/s", flush=True)

    reference = "torch bfloat16 autocast" if python else "zoo float32"
    reference = reference if reference in rows else next(iter(rows))
    median = {n: statistics.median(r["samples_per_s"] for r in rows[n]) for n in rows}
    options, batch = MODELS[args.model]
    print(
        f"\n{args.model} {options or ''} step, batch {batch}, median of {args.rounds} rounds on "
        f"{os.cpu_count()} cores"
    )
    print(f"{'variant':30} {'samples/s':>10} {'/ ' + reference:>30} {'peak RSS MiB':>13}  held out")
    for name in rows:
        quality = rows[name][-1].get("quality", "-")
        rss = max(r["rss_mib"] for r in rows[name])
        ratio = median[name] / median[reference]
        print(f"{name:30} {median[name]:10.0f} {ratio:30.3f} {rss:13.0f}  {quality}")
    print("command: python bench/train_step.py " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
