"""The ``zoo`` command (also ``python -m zoo``): train, sample, evaluate and export models.

zoo train realnvp                       # embedded digits, a few minutes on 2 CPU cores
zoo train nice --dataset mnist --data-dir ~/tensorflow_datasets --epochs 100
zoo train realnvp --dataset path/to/mnist --train-split "test[:9000]" --test-split "test[9000:]"
zoo sample runs/realnvp-digits/model.keras -n 64 --temperature 0.7
zoo evaluate runs/realnvp-digits/model.keras --dataset digits --split test
zoo export runs/realnvp-digits/model.keras --base-dir serving --name realnvp
"""

import argparse
import ast
import json
import os
import sys
import time

COMMON_EPILOG = "Models: {models}. Datasets: 'digits' (embedded), a TFDS name, or a local path."


def _parse_set(items):
    """``key=value`` pairs; values are Python literals where they parse, strings otherwise."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _set_precision(mode):
    """Sets the global Keras dtype policy; ``auto`` is mixed_float16 on a GPU, else float32."""
    import keras
    import tensorflow as tf

    if mode == "auto":
        mode = "float16" if tf.config.list_physical_devices("GPU") else "off"
    policy = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}[mode]
    keras.config.set_dtype_policy(policy)
    return policy


def _load_data(args, split, **kwargs):
    from zoo import data

    image_size = tuple(args.image_size) if args.image_size else None
    return data.load(
        args.dataset,
        split,
        data_dir=args.data_dir,
        download=args.download,
        image_size=image_size,
        color=args.color,
        batch_size=args.batch_size,
        **kwargs,
    )


def _load_model(path):
    import keras

    import zoo  # noqa: F401  (registers the zoo's classes for deserialization)

    if not os.path.exists(path):
        raise SystemExit(f"No model file at {path!r} (expected a .keras file from `zoo train`).")
    return keras.saving.load_model(path)


def train(args):
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp

    from zoo import callbacks, export, plots, registry

    keras.utils.set_random_seed(args.seed)
    policy = _set_precision(args.mixed_precision)
    train_ds, info = _load_data(args, args.train_split, shuffle=True, seed=args.seed)
    test_ds, _ = _load_data(args, args.test_split, dequantize_seed=args.seed)
    model = registry.create_model(
        args.model, info.image_shape, info.num_levels, name=args.model, **_parse_set(args.set)
    )
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    out = args.out or os.path.join("runs", f"{args.model}-{os.path.basename(str(args.dataset))}")
    os.makedirs(out, exist_ok=True)
    print(
        f"{args.model}: {model.count_params():,} weights, dtype policy {policy}; "
        f"data {info.name} {list(info.image_shape)} with {info.num_levels} levels; out {out}"
    )

    budget = callbacks.TimeBudget(args.time_budget or float("inf"))
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=test_ds,
        epochs=args.epochs,
        shuffle=False,
        verbose=1 if sys.stdout.isatty() or args.verbose else 2,
        callbacks=[
            callbacks.AtomicCheckpoint(os.path.join(out, "checkpoints")),
            keras.callbacks.CSVLogger(os.path.join(out, "history.csv")),
            budget,
        ],
    )
    seconds = time.perf_counter() - start
    result = model.evaluate(test_ds, verbose=0, return_dict=True)

    model_path = os.path.join(out, "model.keras")
    staging = os.path.join(out, ".model.tmp.keras")
    model.save(staging)
    os.replace(staging, model_path)
    plots.loss_curve(history.history, os.path.join(out, "loss_curve.png"))
    samples = model.sample(64, temperature=args.temperature, seed=[args.seed, 0])
    plots.sample_grid(
        samples,
        os.path.join(out, "samples.png"),
        title=f"{args.model} samples, T = {args.temperature}",
    )
    exported = export.export(model, os.path.join(out, "export"), model_name=args.model)

    steady = budget.steady_batches * args.batch_size / max(budget.steady_seconds, 1e-9)
    metrics = {
        "model": args.model,
        "dataset": info.name,
        "train_split": args.train_split,
        "test_split": args.test_split,
        "num_levels": info.num_levels,
        "image_shape": list(info.image_shape),
        "epochs_run": len(history.history["loss"]),
        "train_seconds": round(seconds, 1),
        "train_examples_per_second": round(steady, 1),
        "held_out_loss_nats": round(result["loss"], 4),
        "held_out_log_likelihood_nats": round(-result["loss"], 4),
        "held_out_bits_per_dim": round(result["bits_per_dim"], 4),
        "dtype_policy": policy,
        "weights": model.count_params(),
        "config": model.get_config(),
        "command": "zoo " + " ".join(args.argv),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tensorflow_probability": tfp.__version__,
        },
        "export": exported,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    print(
        f"held-out: {result['loss']:.3f} nats/image, {result['bits_per_dim']:.4f} bits/dim; "
        f"{metrics['train_examples_per_second']} examples/s for {seconds:.0f} s"
    )
    print(f"wrote {model_path}, samples.png, loss_curve.png, metrics.json, export {exported}")
    return metrics


def sample(args):
    from zoo import plots

    model = _load_model(args.model_path)
    images = model.sample(args.num, temperature=args.temperature, seed=[args.seed, 0])
    plots.sample_grid(images, args.out, title=f"T = {args.temperature}")
    print(f"wrote {args.num} samples to {args.out}")


def evaluate(args):
    model = _load_model(args.model_path)
    ds, info = _load_data(args, args.split, dequantize_seed=args.seed)
    if tuple(info.image_shape) != tuple(model.image_shape) or info.num_levels != model.num_levels:
        raise SystemExit(
            f"The model expects images {list(model.image_shape)} with {model.num_levels} levels; "
            f"{info.name} has {list(info.image_shape)} with {info.num_levels}."
        )
    result = model.evaluate(ds, verbose=0, return_dict=True)
    print(json.dumps({"dataset": info.name, "split": args.split, **result}))
    return result


def export_command(args):
    from zoo import export

    model = _load_model(args.model_path)
    path = export.export(model, args.base_dir, model_name=args.name, version=args.version)
    print(f"exported to {path}")


def _data_options(parser, batch_size):
    parser.add_argument(
        "--dataset",
        default="digits",
        help="'digits' (embedded, no download), a TFDS name, a path to "
        "mnist.npz or to MNIST idx files (default: digits)",
    )
    parser.add_argument("--data-dir", default=None, help="TFDS data folder")
    parser.add_argument("--download", action="store_true", help="let TFDS download the data")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="resize images")
    parser.add_argument("--color", choices=["grayscale", "rgb"], help="convert images")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--seed", type=int, default=0)


def build_parser():
    from zoo import registry

    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Train, sample, evaluate and export the zoo's models.",
        epilog=COMMON_EPILOG.format(models=", ".join(registry.list_models())),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "train",
        help="train a model; writes checkpoints, samples.png, "
        "loss_curve.png, metrics.json (held-out bits/dim) and a SavedModel",
    )
    p.add_argument("model", choices=registry.list_models())
    _data_options(p, batch_size=64)
    p.add_argument("--train-split", default="train", help="e.g. train, 'test[:9000]'")
    p.add_argument("--test-split", default="test", help="held-out split, e.g. 'test[9000:]'")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument(
        "--mixed-precision",
        choices=["auto", "off", "float16", "bfloat16"],
        default="auto",
        help="auto: float16 on a GPU, off on a CPU",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop training after this much time",
    )
    p.add_argument("--temperature", type=float, default=0.8, help="for samples.png")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="model option, e.g. --set filters=64 (repeatable)",
    )
    p.add_argument("--out", default=None, help="output folder (default runs/MODEL-DATASET)")
    p.add_argument("--verbose", action="store_true", help="progress bar even when not a tty")
    p.set_defaults(func=train)

    p = sub.add_parser("sample", help="draw samples from a trained model into a PNG grid")
    p.add_argument("model_path", help="a .keras file written by `zoo train`")
    p.add_argument("-n", "--num", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png")
    p.set_defaults(func=sample)

    p = sub.add_parser("evaluate", help="loss (nats) and bits/dim on a dataset split")
    p.add_argument("model_path", help="a .keras file written by `zoo train`")
    _data_options(p, batch_size=256)
    p.add_argument("--split", default="test")
    p.set_defaults(func=evaluate)

    p = sub.add_parser("export", help="export a SavedModel for TF Serving")
    p.add_argument("model_path", help="a .keras file written by `zoo train`")
    p.add_argument("--base-dir", required=True, help="writes BASE_DIR/NAME/VERSION/")
    p.add_argument("--name", default=None, help="model name (default: the model's)")
    p.add_argument("--version", type=int, default=None, help="default: the next free one")
    p.set_defaults(func=export_command)
    return parser


def run(argv=None):
    """Runs one command and returns its result (train: the metrics dict; evaluate: figures)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return args.func(args)


def main(argv=None):
    """The console script: exit status 0 on success (`sys.exit(main())`)."""
    run(argv)
    return 0
