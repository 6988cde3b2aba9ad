"""The one training run every zoo model goes through (`zoo train`, bench/, saved_models/).

``run(RunConfig(model="dcgan"))``: seed, dtype policy, strategy scope, data as the model asks
for it (``data_spec``), create from the data's description, compile with the model's defaults,
``fit`` with checkpoints / CSV log / time budget / the model's own callbacks, held-out
``evaluate``, atomic ``model.keras``, loss curves, the model's pictures, SavedModel export and
``metrics.json``. What differs between models is asked of the model (`zoo.base.ZooModel`).
"""

import dataclasses
import json
import os
import sys
import time

PRECISIONS = ("auto", "off", "float16", "bfloat16")


@dataclasses.dataclass
class RunConfig:
    """Everything a training run depends on; `zoo train`'s options, one for one.

    ``learning_rate`` None uses the model's default; ``options`` go to the model's constructor;
    ``time_budget`` stops training after that many seconds; ``out`` defaults to
    ``runs/MODEL-DATASET``.
    """

    model: str
    dataset: str = "digits"
    train_split: str = "train"
    test_split: str = "test"
    data_dir: str | None = None
    download: bool = False
    image_size: tuple | None = None
    color: str | None = None
    batch_size: int = 64
    epochs: int = 30
    learning_rate: float | None = None
    mixed_precision: str = "auto"
    time_budget: float | None = None
    temperature: float = 0.8
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    out: str | None = None
    verbose: bool = False
    export: bool = True
    command: str | None = None

    def output_folder(self):
        name = os.path.basename(os.path.normpath(str(self.dataset)))
        return self.out or os.path.join("runs", f"{self.model}-{name}")


def set_precision(mode):
    """Sets the global Keras dtype policy; ``auto`` is mixed_float16 on a GPU, else float32."""
    import keras
    import tensorflow as tf

    if mode not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {mode!r}.")
    if mode == "auto":
        mode = "float16" if tf.config.list_physical_devices("GPU") else "off"
    policy = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}[mode]
    keras.config.set_dtype_policy(policy)
    return policy


def load_data(config, split, data_spec, **kwargs):
    """``zoo.data.load`` with the run's data options and the model's ``data_spec``."""
    from zoo import data

    return data.load(
        config.dataset,
        split,
        data_dir=config.data_dir,
        download=config.download,
        image_size=tuple(config.image_size) if config.image_size else None,
        color=config.color,
        batch_size=config.batch_size,
        scaling=data_spec.scaling,
        with_labels=data_spec.labels,
        **kwargs,
    )


def run(config):
    """Trains ``config.model`` as ``config`` says; returns the dict written to metrics.json."""
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp

    from zoo import callbacks, export, plots, registry

    cls = registry.entry(config.model).cls
    keras.utils.set_random_seed(config.seed)
    policy = set_precision(config.mixed_precision)
    train_ds, info = load_data(
        config, config.train_split, cls.data_spec, shuffle=True, seed=config.seed
    )
    test_ds, _ = load_data(config, config.test_split, cls.data_spec, dequantize_seed=config.seed)
    with tf.distribute.get_strategy().scope():
        model = registry.create_model(config.model, info, name=config.model, **config.options)
        model.compile(**model.compile_defaults(config.learning_rate))
    out = config.output_folder()
    os.makedirs(out, exist_ok=True)
    print(
        f"{config.model}: {model.count_params():,} weights, dtype policy {policy}; "
        f"data {info.name} {list(info.image_shape)} with {info.num_levels} levels; out {out}"
    )
    model.prepare(train_ds, info)

    budget = callbacks.TimeBudget(config.time_budget or float("inf"))
    start = time.perf_counter()
    history = model.fit(
        train_ds,
        validation_data=test_ds,
        epochs=config.epochs,
        shuffle=False,
        verbose=1 if sys.stdout.isatty() or config.verbose else 2,
        callbacks=[
            callbacks.AtomicCheckpoint(os.path.join(out, "checkpoints"), monitor=model.monitor),
            keras.callbacks.CSVLogger(os.path.join(out, "history.csv")),
            budget,
            *model.fit_callbacks(out),
        ],
    )
    seconds = time.perf_counter() - start
    results = model.evaluate(test_ds, verbose=0, return_dict=True)

    model_path = os.path.join(out, "model.keras")
    callbacks.save_atomically(model, model_path)
    plots.loss_curve(history.history, os.path.join(out, "loss_curve.png"))
    pictures = model.write_artifacts(out, test_ds, seed=config.seed, temperature=config.temperature)
    exported = (
        export.export(model, os.path.join(out, "export"), model_name=config.model)
        if config.export
        else None
    )
    steady = budget.steady_batches * config.batch_size / max(budget.steady_seconds, 1e-9)
    headline = model.headline(results)
    metrics = {
        "model": config.model,
        "dataset": info.name,
        "train_split": config.train_split,
        "test_split": config.test_split,
        "num_levels": info.num_levels,
        "image_shape": list(info.image_shape),
        "epochs_run": len(history.epoch),
        "train_seconds": round(seconds, 1),
        "train_examples_per_second": round(steady, 1),
        **headline,
        "held_out": {k: float(v) for k, v in results.items()},
        "dtype_policy": policy,
        "weights": model.count_params(),
        "config": model.get_config(),
        "command": config.command,
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tensorflow_probability": tfp.__version__,
        },
        "export": exported,
    }
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, default=str)
    figures = ", ".join(f"{k} {v}" for k, v in headline.items())
    speed = metrics["train_examples_per_second"]
    print(f"held-out: {figures}; {speed} examples/s, {seconds:.0f} s")
    written = ["model.keras", "loss_curve.png", *pictures, "metrics.json"]
    print(f"wrote {', '.join(written)} in {out}" + (f"; export {exported}" if exported else ""))
    return metrics
