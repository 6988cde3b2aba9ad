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
import shutil
import sys
import tempfile

from zoo import precision

LR_SCHEDULES = ("constant", "cosine")
# RunConfig's training aids: options of `zoo train` and the benchmarks, fingerprinted for resume.
TRAINING_AIDS = ("lr_schedule", "warmup_steps", "decay_fraction", "clip_norm", "ema", "ema_every")


@dataclasses.dataclass
class RunConfig:
    """Everything a training run depends on; `zoo train`'s options, one for one.

    ``learning_rate`` None uses the model's default; ``lr_schedule`` (``"constant"`` or
    ``"cosine"``, to 0 over each phase's steps or time budget, or over their last
    ``decay_fraction``) follows ``warmup_steps`` of linear warm-up
    (`zoo.callbacks.LearningRateSchedule`); ``clip_norm`` clips each step's gradients to that global
    norm; ``ema`` (a momentum in (0, 1), e.g. 0.999) keeps Keras' exponential moving average of the
    weights, which validation, the saved model and the export use (one-optimizer models), updated
    every ``ema_every``-th step (`zoo.optimizers.FusedAdam`). ``options`` go to the model's
    constructor; ``classes`` keeps those labels and ``labels_per_class`` draws that many training
    images of each (`zoo.data.load`); ``steps_per_epoch`` repeats the training data to that many
    batches an epoch; ``epochs`` is per phase of the model's recipe; ``time_budget`` stops training
    after that many seconds (shared between the phases as their epochs); ``out`` defaults to
    ``runs/MODEL-DATASET``. ``tensorboard`` writes TensorBoard logs into ``out/logs``: the scalars
    of every epoch (`keras.callbacks.TensorBoard`) and the model's pictures
    (`zoo.callbacks.PicturesToTensorBoard`). A run whose ``out`` holds an interrupted run with the
    same options resumes it (`zoo.resume`); ``restart`` starts over.
    """

    model: str
    dataset: str = "digits"
    train_split: str = "train"
    test_split: str = "test"
    data_dir: str | None = None
    download: bool = False
    image_size: tuple | None = None
    color: str | None = None
    num_levels: int | None = None
    x_key: str | None = None
    y_key: str | None = None
    classes: tuple | None = None
    labels_per_class: int | None = None
    batch_size: int = 64
    steps_per_epoch: int | None = None
    epochs: int = 30
    learning_rate: float | None = None
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    decay_fraction: float = 1.0
    clip_norm: float | None = None
    ema: float | None = None
    ema_every: int = 1
    mixed_precision: str = "auto"
    strategy: str = "none"
    time_budget: float | None = None
    temperature: float = 0.8
    seed: int = 0
    options: dict = dataclasses.field(default_factory=dict)
    out: str | None = None
    verbose: bool = False
    export: bool = True
    tensorboard: bool = True
    restart: bool = False
    command: str | None = None

    def check(self):
        """Raises ValueError naming the first option that makes no sense, before anything runs."""
        from zoo.base import positive_number, whole_number

        counts = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "steps_per_epoch": self.steps_per_epoch,
            "labels_per_class": self.labels_per_class,
            "num_levels": self.num_levels,
        }
        for name, value in counts.items():
            if value is not None or name in ("epochs", "batch_size"):
                whole_number(name, value, 2 if name == "num_levels" else 1)
        positives = {
            "learning_rate": self.learning_rate,
            "time_budget": self.time_budget,
            "temperature": self.temperature,
        }
        for name, value in positives.items():
            if value is not None or name == "temperature":
                positive_number(name, value)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}."
            )
        whole_number("warmup_steps", self.warmup_steps, 0)
        positive_number("decay_fraction", self.decay_fraction)
        if self.decay_fraction > 1:
            raise ValueError(f"decay_fraction must be in (0, 1], got {self.decay_fraction!r}.")
        if self.decay_fraction != 1 and self.lr_schedule != "cosine":
            raise ValueError(
                f"decay_fraction {self.decay_fraction!r} needs lr_schedule 'cosine', "
                f"got {self.lr_schedule!r}."
            )
        if self.clip_norm is not None:
            positive_number("clip_norm", self.clip_norm)
        if self.ema is not None and (
            isinstance(self.ema, bool)
            or not isinstance(self.ema, int | float)
            or not 0 < self.ema < 1
        ):
            raise ValueError(f"ema must be a momentum in (0, 1), e.g. 0.999; got {self.ema!r}.")
        whole_number("ema_every", self.ema_every, 1)
        if self.ema_every != 1 and self.ema is None:
            raise ValueError(f"ema_every {self.ema_every!r} needs ema, the average's momentum.")
        from zoo.distribute import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}.")
        if self.strategy == "multi-worker" and self.time_budget is not None:
            raise ValueError(
                "time_budget cannot be used with strategy 'multi-worker': every worker must "
                "stop after the same step."
            )
        precision.check(self.mixed_precision)

    def optimizer_options(self):
        """Keras optimizer arguments for ``clip_norm`` and ``ema`` (`ZooModel.adam`)."""
        options = {}
        if self.clip_norm is not None:
            options["global_clipnorm"] = float(self.clip_norm)
        if self.ema is not None:
            options.update(use_ema=True, ema_momentum=float(self.ema))
            if self.ema_every != 1:
                options["ema_every"] = self.ema_every
        return options

    def output_folder(self):
        name = os.path.basename(os.path.normpath(str(self.dataset)))
        return self.out or os.path.join("runs", f"{self.model}-{name}")


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
        num_levels=config.num_levels,
        x_key=config.x_key,
        y_key=config.y_key,
        classes=config.classes,
        batch_size=config.batch_size,
        scaling=data_spec.scaling,
        with_labels=data_spec.labels,
        **kwargs,
    )


def batches_per_pass(ds):
    """The number of batches in one pass over ``ds`` (counted when tf.data cannot say, e.g.
    after a filter). Training repeats its data and takes this many steps an epoch: `fit` then
    keeps one iterator, so a resumed run skips exactly the batches already seen (a finite
    dataset gets one or two iterators an epoch, depending on whether its length is known)."""
    import tensorflow as tf

    count = int(ds.cardinality())
    if count < 0:
        count = int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    return count


def run(config):
    """Trains ``config.model`` as ``config`` says; returns the dict written to metrics.json.

    The run sets the global Keras dtype policy its options pick (`zoo.precision`) and puts the
    caller's back when it returns or fails: models built after it are the caller's business.
    """
    import keras

    previous = keras.config.dtype_policy()
    try:
        return _run(config)
    finally:
        keras.config.set_dtype_policy(previous)


def _run(config):
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp

    from zoo import callbacks, distribute, export, plots, registry, resume

    config.check()
    strategy = distribute.make_strategy(config.strategy)
    entry = registry.entry(config.model)
    cls = entry.cls
    out = config.output_folder()
    chief, multi_worker = distribute.is_chief(strategy), config.strategy == "multi-worker"
    if not chief:  # a worker but the first: its files go to a scratch folder
        shared_out, out = out, tempfile.mkdtemp(prefix="zoo-worker-")
    folder = os.path.join(out, "checkpoints")
    fingerprint = resume.fingerprint(config)
    # Workers resuming from different epochs would wait on each other for ever.
    state = None if config.restart or multi_worker else resume.load(folder, config)
    if state is not None and state.finished:
        print(f"{out} holds this run, finished; rerun with --restart to train again.")
        with open(os.path.join(out, "metrics.json")) as f:
            return json.load(f)
    config = cls.plan_run(config)
    keras.utils.set_random_seed(config.seed)
    bfloat16 = cls.prefers_bfloat16({**entry.defaults, **config.options})
    policy, why = precision.set_policy(config.mixed_precision, bfloat16)
    train_ds, info = load_data(
        config,
        config.train_split,
        cls.data_spec,
        shuffle=True,
        seed=config.seed,
        per_class=config.labels_per_class,
    )
    test_ds, _ = load_data(config, config.test_split, cls.data_spec, dequantize_seed=config.seed)
    if multi_worker:
        train_ds, test_ds = distribute.shard_by_data(train_ds), distribute.shard_by_data(test_ds)
    with strategy.scope():
        model = registry.create_model(config.model, info, name=config.model, **config.options)
        model.optimizer_options = config.optimizer_options()
        model.compile(**model.compile_defaults(config.learning_rate))
    if config.ema is not None and len(model.optimizers_in_use()) != 1:
        raise ValueError(
            f"ema: {config.model} trains with {len(model.optimizers_in_use())} optimizers; "
            "Keras swaps in the weight average of a model's one optimizer only."
        )
    # Each replica normalizes its own share of a batch.
    min_batch = model.min_batch_size * strategy.num_replicas_in_sync
    if config.batch_size < min_batch:
        raise ValueError(
            f"{config.model} needs batches of at least {min_batch} examples (batch statistics "
            f"on each of {strategy.num_replicas_in_sync} replicas), got batch_size "
            f"{config.batch_size}."
        )
    if model.min_batch_size > 1:  # and no last, smaller batch either
        train_ds = train_ds.filter(
            lambda *batch: tf.shape(tf.nest.flatten(batch)[0])[0] >= min_batch
        )
    steps_per_epoch = config.steps_per_epoch
    if not multi_worker:
        steps_per_epoch = steps_per_epoch or batches_per_pass(train_ds)
        if not steps_per_epoch:
            raise ValueError(
                f"{config.train_split!r} of {info.name!r} gives no training batch of at least "
                f"{min_batch} examples."
            )
        train_ds = train_ds.repeat()
    os.makedirs(out, exist_ok=True)
    print(
        f"{config.model}: {model.count_params():,} weights, dtype policy {policy} ({why}); "
        f"data {info.name} {list(info.image_shape)} with {info.num_levels} levels, "
        f"{info.num_examples or '?'} training examples; out {out}"
    )
    phases = model.training_phases(config.epochs)
    # Before a resume too: it may build what the checkpoint does not hold (a GAN's judge).
    model.prepare(train_ds, info)
    if state is None:
        resume.clear(folder)
        state = resume.RunState(config=fingerprint)
    else:
        where = phases[state.phase].name if state.phase < len(phases) else "its results"
        print(f"resuming after epoch {state.epoch}, in phase {where}")
        # The data order and noise continue where they stopped (each pass draws anew).
        train_ds = train_ds.skip(state.epoch * steps_per_epoch)

    total_epochs = sum(phase.epochs for phase in phases)
    budget = config.time_budget or float("inf")
    checkpoint = callbacks.AtomicCheckpoint(folder, model.monitor, best=state.best)
    guard = callbacks.SkippedStepsGuard()
    history = keras.callbacks.CSVLogger(os.path.join(out, "history.csv"), append=True)
    resume.write_history(state.history, history.filename)
    budgets, resuming = [], state.checkpoint is not None
    for i, phase in enumerate(phases):
        if phase.begin is not None:
            with strategy.scope():
                phase.begin()
        if i < state.phase:
            continue  # finished before an interruption; its begin() replayed above
        # Before a restore: the schedule starts from the phase's own learning rate.
        schedule = callbacks.LearningRateSchedule(
            model.optimizers_in_use(),
            config.lr_schedule,
            config.warmup_steps,
            decay_fraction=config.decay_fraction,
        )
        if resuming:
            checkpoint_file = os.path.join(folder, state.checkpoint)
            resume.restore(
                model,
                checkpoint_file,
                with_optimizer=state.checkpoint_phase == i,
                seeds=state.seeds,
            )
            resuming = False
        if state.phase_epoch == 0:
            state.starts.append((phase.name, state.epoch + 1))
        spent = state.phase_seconds
        share = budget * phase.epochs / total_epochs
        budgets.append(callbacks.TimeBudget(share - spent))
        schedule.total_steps = phase.epochs * steps_per_epoch if steps_per_epoch else None
        schedule.timer, schedule.spent, schedule.budget = budgets[-1], spent, share
        # The schedule logs its rate before the CSV logger writes; the weight average is
        # swapped in for validation after the checkpoint, which keeps the raw weights.
        scheduled = [schedule] if config.lr_schedule != "constant" or config.warmup_steps else []
        averaged = [keras.callbacks.SwapEMAWeights()] if config.ema is not None else []
        logs = os.path.join(out, "logs")
        boards = (
            [
                keras.callbacks.TensorBoard(logs, write_graph=False),
                callbacks.PicturesToTensorBoard(
                    os.path.join(logs, "pictures"), test_ds, config.seed, config.temperature
                ),
            ]
            if config.tensorboard
            else []
        )
        if spent >= share:  # its budget ran out before the interruption: the phase is over
            phase = dataclasses.replace(phase, epochs=state.phase_epoch)

        def on_saved(epoch, logs, name, best, phase=i, spent=spent, timer=budgets[-1]):
            for key, value in logs.items():
                state.history.setdefault(key, []).append(float(value))
            state.epoch, state.checkpoint, state.checkpoint_phase = epoch + 1, name, phase
            state.phase, state.best = phase, best
            state.seeds = resume.seed_states(model)
            state.phase_epoch += 1
            state.phase_seconds = spent + timer.elapsed
            state.save(folder)

        checkpoint.on_saved = on_saved
        model.fit(
            train_ds,
            validation_data=test_ds,
            initial_epoch=state.epoch,
            epochs=state.epoch + phase.epochs - state.phase_epoch,
            steps_per_epoch=steps_per_epoch,
            shuffle=False,
            verbose=1 if sys.stdout.isatty() or config.verbose else 2,
            # The budget first: what runs after its epoch end is not training time.
            callbacks=[
                budgets[-1],
                *scheduled,
                checkpoint,
                history,
                guard,
                *averaged,
                *boards,
                *model.fit_callbacks(out),
            ],
        )
        if guard.failure:
            raise callbacks.TrainingDiverged(f"{guard.failure}. Nothing was exported.")
        if callbacks.non_finite_variables(model):
            raise callbacks.TrainingDiverged("training made weights NaN or inf; nothing exported")
        if len(phases) > 1:
            results = model.evaluate(test_ds, verbose=0, return_dict=True)
            state.phase_figures[phase.name] = figures = model.headline(results)
            print(f"phase {phase.name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
        state.seconds += state.phase_seconds
        state.phase, state.phase_epoch, state.phase_seconds = i + 1, 0, 0.0
        state.save(folder)
    if resuming:  # interrupted after its last phase: only the results are left to write
        resume.restore(model, os.path.join(folder, state.checkpoint), with_optimizer=False)
    results = model.evaluate(test_ds, verbose=0, return_dict=True)
    if multi_worker:
        report = distribute.write_worker_report(
            strategy, model, results, out if chief else shared_out
        )
        if not chief:
            shutil.rmtree(out, ignore_errors=True)
            return report
    history, epoch, seconds = state.history, state.epoch, state.seconds
    phase_figures, starts = state.phase_figures, state.starts

    model_path = os.path.join(out, "model.keras")
    callbacks.save_atomically(model, model_path)
    plots.loss_curve(history, os.path.join(out, "loss_curve.png"), phases=starts)
    pictures = model.write_artifacts(out, test_ds, seed=config.seed, temperature=config.temperature)
    exported = (
        export.export(model, os.path.join(out, "export"), model_name=config.model)
        if config.export
        else None
    )
    steady_batches = sum(b.steady_batches for b in budgets)
    steady_seconds = sum(b.steady_seconds for b in budgets)
    # None when every phase was one batch long: no steady-state batch to time.
    steady = steady_batches * config.batch_size / steady_seconds if steady_batches else None
    headline = model.headline(results)
    metrics = {
        "model": config.model,
        "dataset": info.name,
        "train_split": config.train_split,
        "test_split": config.test_split,
        "num_levels": info.num_levels,
        "image_shape": list(info.image_shape),
        "classes": list(info.classes) if info.classes is not None else None,
        "train_examples": info.num_examples,
        "epochs_run": epoch,
        "train_seconds": round(seconds, 1),
        "train_examples_per_second": round(steady, 1) if steady else None,
        **headline,
        "held_out": {k: float(v) for k, v in results.items()},
        **({"phases": phase_figures} if phase_figures else {}),
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
    state.finished = True
    state.save(folder)
    figures = ", ".join(f"{k} {v}" for k, v in headline.items())
    speed = metrics["train_examples_per_second"]
    speed = f"{speed} examples/s" if speed else "too short to time"
    print(f"held-out: {figures}; {speed}, {seconds:.0f} s")
    written = ["model.keras", "loss_curve.png", *pictures, "metrics.json"]
    print(f"wrote {', '.join(written)} in {out}" + (f"; export {exported}" if exported else ""))
    return metrics
