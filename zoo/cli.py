"""The ``zoo`` command (also ``python -m zoo``): train, sample, evaluate and export models.

zoo list                                # the models
zoo train realnvp                       # embedded digits, a few minutes on 2 CPU cores
zoo train dcgan                         # same data, a GAN
zoo train nice --dataset mnist --data-dir ~/tensorflow_datasets --epochs 100
zoo train realnvp --dataset path/to/mnist  # idx files: train 60,000, test 10,000 images
zoo train vae --dataset path/to/mnist --binarize --set likelihood=bernoulli iw_samples=5
zoo sample runs/realnvp-digits/model.keras -n 64 --temperature 0.7
zoo sample runs/glow_conditional-digits/model.keras -n 16 --class 3
zoo evaluate runs/realnvp-digits/model.keras --dataset digits --split test
zoo export runs/realnvp-digits/model.keras --base-dir serving --name realnvp
zoo train transfer                      # pretrain on digits 0-4, transfer to 5-9, 10 labels each
zoo list --presets                      # the trained models the package ships
zoo evaluate glow_mnist                 # a preset's figures on the held-out examples it ships
zoo transflow realnvp_mnist --dataset path/to/mnist --split "test[:5000]" --examples-per-class 5
zoo train transfer --set backbone=runs/classifier-digits/model.keras --classes 5 6 7 8 9 \
    --labels-per-class 1 --steps-per-epoch 10

Argument parsing only: each command is built from shared option groups (`add_data_options`,
`add_split_options`, `add_training_options`, `add_training_aids`, `add_run_options`), whose
destinations are the fields of `zoo.data.DataOptions` and `zoo.training.RunConfig`, so
`run_config` turns parsed arguments into a run without naming them again.
"""

import argparse
import dataclasses
import json
import math
import os
import signal
import sys

from zoo import data, registry, startup, storage, training
from zoo.models import transflow
from zoo.models.checks import whole_number
from zoo.serving import presets
from zoo.training import distribute, lock, precision

RESTART_HELP = (
    "start over in --out; without it, a rerun resumes the interrupted run there (same options)"
)
COMMON_EPILOG = "Models: {models}. Datasets: 'digits' (embedded), a TFDS name, or a local path."


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it is None / False or the help already says it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parse_set(items, model):
    """``--set key=value`` pairs as model ``model``'s constructor options, each value parsed as
    its option's type (`zoo.registry.parse_options`)."""
    texts = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}.")
        texts[key.strip()] = value
    return registry.parse_options(model, texts)


# The option groups.


def add_data_options(parser, batch_size):
    """Which data, and how it is read: `zoo.data.DataOptions`' fields, and ``--seed``."""
    parser.add_argument(
        "--dataset",
        default=None,
        help="'digits' (embedded, no download), a TFDS name, or a path: an .npz, MNIST idx "
        "files, a LIBSVM file such as usps.bz2, a folder of images (default: digits; for "
        "`evaluate PRESET`, the preset's held-out data)",
    )
    parser.add_argument("--data-dir", default=None, help="TFDS data folder")
    parser.add_argument("--download", action="store_true", help="let TFDS download the data")
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="resize images")
    parser.add_argument("--color", choices=data.COLORS[1:], help="convert images")
    parser.add_argument(
        "--num-levels",
        type=int,
        metavar="K",
        help="pixel levels 0..K-1 of a local file (needed unless its pixels are uint8 or bool)",
    )
    parser.add_argument("--x-key", metavar="NAME", help="the images array of an .npz file")
    parser.add_argument("--y-key", metavar="NAME", help="the labels array of an .npz file")
    parser.add_argument(
        "--binarize",
        action="store_true",
        default=None,
        help="Bernoulli-binarize pixels (mean: intensity): redrawn each epoch in training, "
        "drawn once (--seed) for held-out data; a binarized model's data by default",
    )
    parser.add_argument(
        "--classes",
        type=int,
        nargs="+",
        metavar="LABEL",
        help="keep these labels, renumbered 0..k-1 in this order",
    )
    parser.add_argument("--batch-size", type=int, default=batch_size, help="examples per batch")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, data order, noise")


def add_run_options(parser, what):
    """Where a run writes (``--out``, ``--restart``), how it talks, and its pictures' sampling
    temperature; ``what`` names the default folder."""
    parser.add_argument(
        "--temperature", type=float, default=0.8, help="sampling temperature of the pictures"
    )
    parser.add_argument("--out", default=None, help=f"output folder (default runs/{what})")
    parser.add_argument("--restart", action="store_true", help=RESTART_HELP)
    parser.add_argument("--verbose", action="store_true", help="progress bar even when not a tty")


def add_training_aids(parser):
    """The training aids' options (`zoo.training.TRAINING_AIDS`), for `zoo train` and the
    benchmarks that train through `zoo.training.run`."""
    parser.add_argument(
        "--lr-schedule",
        choices=training.LR_SCHEDULES,
        default="constant",
        help="cosine: decay to 0 over each phase's steps or --time-budget, whichever ends first",
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=0, help="linear learning-rate warm-up steps"
    )
    parser.add_argument(
        "--decay-fraction",
        type=float,
        default=1.0,
        help="cosine: hold the rate, then decay over this last fraction of the run (e.g. 0.2)",
    )
    parser.add_argument(
        "--clip-norm", type=float, default=None, help="clip each step's gradients to this norm"
    )
    parser.add_argument(
        "--ema",
        type=float,
        default=None,
        metavar="MOMENTUM",
        help="average the weights (e.g. 0.999); validation, model.keras and export use it "
        "(batch-norm statistics recomputed for it)",
    )
    parser.add_argument(
        "--ema-every",
        type=int,
        default=1,
        metavar="K",
        help="update the average every K-th step, with momentum MOMENTUM**K",
    )


def add_training_options(parser):
    """How long and how a model trains: epochs, steps, learning rate and its aids, precision,
    strategy, time budget, logs and the model's options."""
    parser.add_argument("--epochs", type=int, default=30, help="per phase of the model's recipe")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="repeat the training data to this many batches an epoch (for few labels)",
    )
    parser.add_argument(
        "--learning-rate", type=float, default=None, help="default: the model's own"
    )
    add_training_aids(parser)
    parser.add_argument(
        "--mixed-precision",
        choices=precision.MODES,
        default="auto",
        help="auto: float16 on a GPU; bfloat16 on a CPU with bfloat16 matrix units (AMX, "
        "AVX512-BF16) for the models that train faster in it; else off",
    )
    parser.add_argument(
        "--strategy",
        choices=distribute.STRATEGIES,
        default="none",
        help="tf.distribute: none, mirrored (this machine's GPUs), multi-worker (from TF_CONFIG; "
        "run the same command on every worker)",
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop training after this much time",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="STEPS",
        help="also checkpoint every STEPS steps within an epoch (bounds what a SIGKILL loses; "
        "SIGTERM and Ctrl-C checkpoint the step they stop at)",
    )
    parser.add_argument(
        "--no-export",
        dest="export",
        action="store_false",
        help="skip the SavedModel (`zoo export` writes one from model.keras later)",
    )
    parser.add_argument(
        "--no-tensorboard",
        dest="tensorboard",
        action="store_false",
        help="skip the TensorBoard logs (OUT/logs: scalars and pictures every epoch)",
    )
    parser.add_argument(
        "--set",
        action="extend",
        nargs="+",
        metavar="KEY=VALUE",
        help="model options, e.g. --set filters=64 num_blocks=2 (repeatable)",
    )


def add_split_options(parser, examples, test, per_class):
    """The training split, the held-out one and the few-label draw (`RunConfig`'s
    ``train_split``, ``test_split``, ``labels_per_class``); each ``(flag, help)``, named as the
    command names them."""
    parser.add_argument(examples[0], dest="train_split", default="train", help=examples[1])
    parser.add_argument("--test-split", default="test", help=test)
    parser.add_argument(
        per_class[0],
        dest="labels_per_class",
        type=int,
        default=None,
        metavar="N",
        help=per_class[1],
    )


def _fields(args, options):
    """The fields of the dataclass ``options`` that parsed ``args`` name (an argument left at
    None keeps the field's own default)."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(options)
        if getattr(args, f.name, None) is not None
    }


def run_config(args, **fields):
    """The `zoo.training.RunConfig` of parsed ``args``, then ``fields``."""
    command = "zoo " + " ".join(args.argv)
    return training.RunConfig(**{**_fields(args, training.RunConfig), "command": command, **fields})


def data_options(args):
    """The `zoo.data.DataOptions` of parsed ``args``."""
    return data.DataOptions(**_fields(args, data.DataOptions))


# The commands.


def train_config(args):
    return run_config(args, options=parse_set(args.set, args.model))


def transflow_config(args):
    flow = args.flow if os.path.exists(args.flow) else presets.model_file(args.flow)
    return run_config(
        args,
        model="transflow",
        epochs=1,
        mixed_precision="off",  # no gradients: nothing to gain
        options={"flow": flow, "strength": args.strength, "variance": args.variance},
    )


def train(args):
    """``zoo train`` and ``zoo transflow``: the run of ``args.config`` (`configure`)."""
    return training.run(args.config)


def check_sampling(args):
    """``-n`` and ``--temperature``, as `tfflows.checks.sampling_arguments` checks them (which
    the model's ``sample`` does again), before TensorFlow is imported."""
    whole_number("num_samples", args.num)
    if not 0 <= args.temperature < math.inf:
        raise ValueError(f"temperature must be a finite number >= 0, got {args.temperature!r}.")


def sample(args):
    model = presets.load_model(args.model_path)
    of_class = {} if args.class_id is None else {"class_id": args.class_id}
    images = model.sample(args.num, temperature=args.temperature, seed=[args.seed, 0], **of_class)
    title = f"T = {args.temperature}" + (
        "" if args.class_id is None else f", class {args.class_id}"
    )
    from zoo import plots

    with storage.writing(args.out):
        plots.sample_grid(images, args.out, title=title)
    print(f"wrote {args.num} samples to {args.out}")


def evaluate(args):
    import keras

    keras.utils.set_random_seed(args.seed)  # the model's noise generators: the same figures
    model = presets.load_model(args.model_path)
    if args.dataset is None and not os.path.isfile(args.model_path):  # a preset: its own data
        args.dataset, split = presets.held_out_data(args.model_path)
        args.split = args.split or split
    args.split = args.split or "test"
    for name, value in model.data_options().items():  # e.g. a classifier's classes
        if getattr(args, name) is None:
            setattr(args, name, value)
    ds, info = data_options(args).load(args.split, model.data_spec, dequantize_seed=args.seed)
    model.check_data(info)
    result = model.evaluate(ds, verbose=0, return_dict=True)
    print(json.dumps({"dataset": info.name, "split": args.split, **result}))
    return result


def check_version(args):
    if args.version is not None:
        whole_number("--version", args.version)


def export_command(args):
    from zoo.serving import export

    model = presets.load_model(args.model_path)
    path = export.export(
        model,
        args.base_dir,
        model_name=args.name,
        version=args.version,
        jit_compile=args.jit_compile,
    )
    print(f"exported to {path}")


def list_command(args):
    if args.presets:
        rows = []
        for name, folder in presets.list_presets().items():
            card = presets.card(folder)
            headline = card.get("headline") or {}
            figure = next(iter(headline.items()), None)
            rows.append(
                (
                    name,
                    card["model"],
                    f"{card['dataset']} {card.get('test_split', '')}".strip(),
                    f"{figure[0].removeprefix('held_out_')} {figure[1]:.4f}" if figure else "",
                    folder,
                )
            )
    else:
        rows = [(e.name, e.task, e.class_name, e.description) for e in registry.entries()]
    # Aligned columns; the last one (a description, a folder) runs on.
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)] if rows else []
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1])
    return rows


def build_parser():
    parser = argparse.ArgumentParser(
        prog="zoo",
        formatter_class=_HelpFormatter,
        description="Train, sample, evaluate and export the zoo's models.",
        epilog=COMMON_EPILOG.format(models=", ".join(registry.list_models())),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser
    sub.add_parser = lambda *a, **k: add_parser(*a, formatter_class=_HelpFormatter, **k)

    p = sub.add_parser(
        "train",
        help="train a model; writes checkpoints, loss_curve.png, the model's "
        "pictures, metrics.json (held-out figures) and a SavedModel",
    )
    p.add_argument("model", choices=registry.list_models(), help="what to train (see `zoo list`)")
    add_data_options(p, batch_size=64)
    add_split_options(
        p,
        ("--train-split", "e.g. train, 'test[:9000]'"),
        "held-out split, e.g. 'test[9000:]'",
        ("--labels-per-class", "train on N images of each class, drawn with --seed"),
    )
    add_training_options(p)
    add_run_options(p, "MODEL-DATASET")
    p.set_defaults(func=train, configure=train_config)

    p = sub.add_parser(
        "transflow",
        help="fit Transflow posteriors of a trained flow to a few examples: samples.png, "
        "interpolation.png; with labels, few-shot accuracy and confusion_matrix.png",
    )
    p.add_argument("flow", help="a flow's .keras file, exported SavedModel folder or preset name")
    add_data_options(p, batch_size=256)
    add_split_options(
        p,
        ("--split", "the examples, e.g. 'test[:50]'"),
        "images to classify / score",
        ("--examples-per-class", "draw N examples of each class from --split (with --seed)"),
    )
    p.add_argument("--strength", type=float, default=1.0, help="the prior's weight, in examples")
    p.add_argument(
        "--variance",
        choices=transflow.VARIANCES,
        default="fixed",
        help="fixed: the flow's base variance; estimate: a per-class, per-dimension posterior",
    )
    add_run_options(p, "transflow-DATASET")
    p.set_defaults(func=train, configure=transflow_config)

    p = sub.add_parser("list", help="the zoo's models: name, task, class, description")
    p.add_argument(
        "--presets",
        action="store_true",
        help="the trained models instead (zoo.from_preset): name, model, data, held-out figure",
    )
    p.set_defaults(func=list_command, tensorflow=False)

    p = sub.add_parser("sample", help="draw samples from a trained model into a PNG grid")
    p.add_argument("model_path", help="a .keras file written by `zoo train`, or a preset name")
    p.add_argument("-n", "--num", type=int, default=64, help="number of samples")
    p.add_argument(
        "--temperature", type=float, default=1.0, help="scales the latent spread (0: the mode)"
    )
    p.add_argument("--seed", type=int, default=0, help="the same seed draws the same samples")
    p.add_argument(
        "--class",
        dest="class_id",
        type=int,
        default=None,
        help="a class-conditional model's class to draw (default: the classes in turn)",
    )
    p.add_argument("--out", default="samples.png", help="the PNG grid to write")
    p.set_defaults(func=sample, check=check_sampling)

    p = sub.add_parser("evaluate", help="the model's held-out figures on a dataset split")
    p.add_argument("model_path", help="a .keras file written by `zoo train`, or a preset name")
    add_data_options(p, batch_size=256)
    p.add_argument(
        "--split",
        default=None,
        help="e.g. test, 'test[9000:]' (default: test; for a preset, its card's)",
    )
    p.set_defaults(func=evaluate)

    p = sub.add_parser("export", help="export a SavedModel for TF Serving")
    p.add_argument("model_path", help="a .keras file written by `zoo train`, or a preset name")
    p.add_argument("--base-dir", required=True, help="writes BASE_DIR/NAME/VERSION/")
    p.add_argument("--name", default=None, help="model name (default: the model's)")
    p.add_argument("--version", type=int, default=None, help="default: the next free one")
    p.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile each signature with XLA (on CPU: faster for the flat RealNVP and the IAF, "
        "slower or refused for others; TF Serving on CPU then needs "
        "--xla_cpu_compilation_enabled=true)",
    )
    p.set_defaults(func=export_command, check=check_version)
    return parser


DATA_SUFFIXES = (".npz", ".bz2", ".gz", "-ubyte", ".idx")


def configure(args):
    """Everything that can be checked before TensorFlow is imported, arguments first: the
    command's own (``args.check``), a run's `RunConfig` (``args.config``, checked: the counts,
    rates and choices, the model's ``--set`` options); then that what a command reads exists
    (a model file or preset name: ``model_path``, a Transflow's ``flow``; a ``--dataset``
    written as a path: ``./``, ``../``, ``/`` or ``~`` first, or a data file's extension) and
    that a run's ``--out`` is not held by another run."""
    if hasattr(args, "check"):
        args.check(args)
    if hasattr(args, "configure"):
        args.config = args.configure(args)
        args.config.check()
    flow = getattr(args, "flow", None)
    if flow is not None and not os.path.isdir(flow):  # a SavedModel's folder, or a model file
        presets.checked_model_file(flow)
    if getattr(args, "model_path", None) is not None:
        presets.checked_model_file(args.model_path)
    if hasattr(args, "configure") and args.out is not None:
        lock.check_free(args.out)
    dataset = getattr(args, "dataset", None)
    if dataset and not os.path.exists(os.path.expanduser(dataset)):
        if dataset.startswith(("./", "../", "/", "~")) or dataset.endswith(DATA_SUFFIXES):
            raise FileNotFoundError(f"--dataset {dataset}: no such file or folder.")


def run(argv=None):
    """Runs one command and returns its result (train: the metrics dict; evaluate: figures).
    TensorFlow is imported only once the arguments parse and the files they name exist
    (`zoo.startup`: without its C++ start-up lines unless ``TF_CPP_MIN_LOG_LEVEL`` asks)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    configure(args)
    if getattr(args, "tensorflow", True):
        startup.import_tensorflow()
    return args.func(args)


def main(argv=None):
    """The console script: exit status 0 on success; one line on stderr and 2 for a user error
    (a bad option, a missing or corrupt file, bad data, a folder another run holds, a file
    that could not be written), 1 for a training run that diverged, 128 + the signal's number
    for a run stopped by SIGTERM or SIGINT (Ctrl-C) after checkpointing where it stopped.
    ``ZOO_TRACEBACK=1`` re-raises."""
    try:
        run(argv)
    except BrokenPipeError:  # e.g. `zoo list | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, training.TrainingDiverged) as error:
        if os.environ.get("ZOO_TRACEBACK"):
            raise
        print(f"zoo: error: {storage.first_line(error)}", file=sys.stderr)
        return 1 if isinstance(error, training.TrainingDiverged) else 2
    except (training.Interrupted, KeyboardInterrupt) as error:
        if os.environ.get("ZOO_TRACEBACK"):
            raise
        interrupted = isinstance(error, training.Interrupted)
        print(
            f"zoo: {storage.first_line(error) if interrupted else 'interrupted'}", file=sys.stderr
        )
        return 128 + getattr(error, "signum", signal.SIGINT)
    return 0
