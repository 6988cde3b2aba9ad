"""The one training run every zoo model goes through (`zoo train`, bench/, tools/build_presets.py).

``run(RunConfig(model="dcgan"))`` takes these steps (`Run`), asking the model what differs
between models through its contract (`zoo.models.contract`):

1. `Run.resume_state`: the interrupted (or finished) run with the same options in the output
   folder, if any (`zoo.training.resume`), once the run holds the folder
   (`zoo.training.lock`: a second run there is refused);
2. `Run.plan`: the model's recipe settles the run's options (``plan_run``) and its prerequisite
   runs are trained first (e.g. the pretraining a transfer model builds on);
3. `Run.load_data`: seed, dtype policy (`zoo.training.precision`), the training and held-out
   data as the model asks for them (``data_spec``);
4. `Run.build`: the model from the data's description, compiled with its defaults, in the
   strategy's scope (`zoo.training.distribute`); the batches it can train on;
5. `Run.train`: its phases (``training_phases``), each a ``fit`` with atomic checkpoints, the
   CSV log, the time budget, the learning-rate schedule, TensorBoard and the model's own
   callbacks, recorded for resuming after every epoch, every ``checkpoint_every`` steps and at
   the step a SIGTERM or SIGINT stops (`zoo.training.preemption`);
6. `Run.report`: held-out ``evaluate``, ``model.keras``, the loss curves, the model's pictures,
   the SavedModel (`zoo.serving.export`) and ``metrics.json`` with its headline figures.
"""

import dataclasses
import json
import os
import shutil
import sys
import tempfile

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from zoo import plots, registry
from zoo.serving import export, presets
from zoo.storage import write_json, writing
from zoo.training import callbacks, distribute, precision, resume, statistics
from zoo.training.errors import TrainingDiverged
from zoo.training.lock import FolderLock
from zoo.training.preemption import Preemption
from zoo.training.schedule import LearningRateSchedule


def run(config):
    """Trains ``config.model`` as ``config`` (a `zoo.training.RunConfig`) says; returns the
    dict written to metrics.json.

    The run sets the global Keras dtype policy its options pick (`zoo.training.precision`) and
    puts the caller's back when it returns or fails: models built after it are the caller's
    business.
    """
    previous = keras.config.dtype_policy()
    try:
        return Run(config).execute()
    finally:
        keras.config.set_dtype_policy(previous)


def batches_per_pass(ds):
    """The number of batches in one pass over ``ds`` (counted when tf.data cannot say, e.g.
    after a filter). Training repeats its data and takes this many steps an epoch: `fit` then
    keeps one iterator, so a resumed run skips exactly the batches already seen (a finite
    dataset gets one or two iterators an epoch, depending on whether its length is known)."""
    count = int(ds.cardinality())
    if count < 0:
        count = int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    return count


class Run:
    """One training run, its steps in the order `execute` takes them (module docstring)."""

    def __init__(self, config):
        config.check()
        self.config = config
        self.strategy = distribute.make_strategy(config.strategy)
        self.entry = registry.entry(config.model)
        self.multi_worker = config.strategy == "multi-worker"
        self.chief = distribute.is_chief(self.strategy)
        self.out = config.output_folder()
        self.shared_out = self.out
        if not self.chief:  # a worker but the first: its files go to a scratch folder
            self.out = tempfile.mkdtemp(prefix="zoo-worker-")
        self.folder = os.path.join(self.out, "checkpoints")

    def execute(self):
        if not self.chief:  # a scratch folder of its own
            return self._execute()
        with FolderLock(self.out, self.config.command) as held:
            try:
                return self._execute()
            except BaseException:
                held.discard()  # a run refused before it wrote anything leaves no folder
                raise

    def _execute(self):
        with Preemption() as self.preemption:
            state = self.resume_state()
            if state is not None and state.finished:
                print(f"{self.out} holds this run, finished; rerun with --restart to train again.")
                with open(os.path.join(self.out, "metrics.json")) as f:
                    return json.load(f)
            self.plan()
            self.load_data()
            self.build()
            self.train(state)
            return self.report()

    # 1. Where a previous run in this folder stands.

    def resume_state(self):
        """The `resume.RunState` to continue (None: start afresh); its fingerprint is of the
        options as given, before the model's plan changes them."""
        self.fingerprint = resume.fingerprint(self.config)
        # Workers resuming from different epochs would wait on each other for ever.
        if self.config.restart or self.multi_worker:
            return None
        return resume.load(self.folder, self.config)

    # 2. The model's plan, and the runs it needs first.

    def plan(self):
        """Applies the model's `RunPlan`: its prerequisite runs (each resumed or reported like
        any run), whose trained models become constructor options, then its changes; a
        prerequisite's share of the time budget is taken off the run's."""
        config, cls = self.config, self.entry.cls

        def describe():
            everything = dataclasses.replace(config, classes=None, labels_per_class=None)
            return everything.load(config.train_split, self.data_spec())[1]

        plan = cls.plan_run(config, describe)
        changes = dict(plan.changes)
        options = dict(changes.pop("options", config.options))
        shipped = presets.list_presets()
        for key in cls.model_file_options:  # e.g. --set backbone=classifier_mnist
            value = options.get(key)
            if isinstance(value, str) and value in shipped and not os.path.exists(value):
                options[key] = presets.model_file(value)
        budget_left = 1.0
        for prerequisite in plan.prerequisites:
            if prerequisite.what:
                print(prerequisite.what)
            share = prerequisite.budget_share
            first = dataclasses.replace(
                config,
                **{
                    **prerequisite.changes,
                    "model": registry.name_of(prerequisite.model),
                    "out": os.path.join(config.output_folder(), prerequisite.folder),
                    "export": False,
                    "time_budget": config.time_budget and config.time_budget * share,
                },
            )
            run(first)
            options[prerequisite.option] = os.path.join(first.out, "model.keras")
            budget_left -= share
        self.config = dataclasses.replace(
            config,
            **changes,
            options=options,
            time_budget=config.time_budget and config.time_budget * budget_left,
        )

    # 3. Seed, precision and data.

    def data_spec(self):
        """The model's `DataSpec` under the run's options (its registered defaults included)."""
        return self.entry.cls.data_spec_for({**self.entry.defaults, **self.config.options})

    def load_data(self):
        config, cls = self.config, self.entry.cls
        keras.utils.set_random_seed(config.seed)
        bfloat16 = cls.prefers_bfloat16({**self.entry.defaults, **config.options})
        self.policy, self.why = precision.set_policy(config.mixed_precision, bfloat16)
        spec = self.data_spec()
        self.train_ds, self.info = config.load(
            config.train_split, spec, training=True, shuffle=True, seed=config.seed
        )
        self.test_ds, _ = config.load(config.test_split, spec, dequantize_seed=config.seed)
        if self.multi_worker:
            self.train_ds = distribute.shard_by_data(self.train_ds)
            self.test_ds = distribute.shard_by_data(self.test_ds)

    # 4. The model, and the batches it trains on.

    def build(self):
        config = self.config
        with self.strategy.scope():
            model = registry.create_model(
                config.model, self.info, name=config.model, **config.options
            )
            model.optimizer_options = config.optimizer_options()
            model.compile(**model.compile_defaults(config.learning_rate))
        optimizers = len(model.optimizers_in_use())
        if config.ema is not None and optimizers != 1:
            raise ValueError(
                f"ema: {config.model} trains with {optimizers} optimizers; "
                "Keras swaps in the weight average of a model's one optimizer only."
            )
        # Each replica normalizes its own share of a batch.
        min_batch = model.min_batch_size * self.strategy.num_replicas_in_sync
        if config.batch_size < min_batch:
            raise ValueError(
                f"{config.model} needs batches of at least {min_batch} examples (batch statistics "
                f"on each of {self.strategy.num_replicas_in_sync} replicas), got batch_size "
                f"{config.batch_size}."
            )
        self.min_batch = min_batch
        self.train_ds = self._whole_batches(self.train_ds)
        self.steps_per_epoch = config.steps_per_epoch
        if not self.multi_worker:
            self.steps_per_epoch = self.steps_per_epoch or batches_per_pass(self.train_ds)
            if not self.steps_per_epoch:
                raise ValueError(
                    f"{config.train_split!r} of {self.info.name!r} gives no training batch of at "
                    f"least {min_batch} examples."
                )
        self.model = model

    def _whole_batches(self, ds):
        """``ds`` without a last batch too small for the model (`build`)."""
        if self.min_batch > 1:
            min_batch = self.min_batch
            ds = ds.filter(lambda *batch: tf.shape(tf.nest.flatten(batch)[0])[0] >= min_batch)
        return ds

    def training_batches(self, position=0):
        """The training batches from the ``position``-th on, repeated, in a dataset loaded
        afresh, for one ``fit``: a ``tf.data`` dataset iterated a second time draws another
        shuffle and other noise than the first time, so every ``fit`` iterates a new dataset's
        first iterator, whose batches then depend on their position alone. A run resumed within
        an epoch, whose epoch is finished by a ``fit`` of its own, then sees the batches of an
        uninterrupted run."""
        config = self.config
        ds, _ = config.load(
            config.train_split,
            self.data_spec(),
            training=True,
            shuffle=True,
            seed=config.seed,
        )
        if self.multi_worker:  # a pass an epoch: the workers' shards may differ in length
            return self._whole_batches(distribute.shard_by_data(ds))
        ds = self._whole_batches(ds).repeat()
        return ds.skip(position) if position else ds

    # 5. The phases of the model's recipe.

    def train(self, state):
        config, model, info = self.config, self.model, self.info
        os.makedirs(self.out, exist_ok=True)
        print(
            f"{config.model}: {model.count_params():,} weights, dtype policy {self.policy} "
            f"({self.why}); data {info.name} {list(info.image_shape)} with {info.num_levels} "
            f"levels, {info.num_examples or '?'} training examples; out {self.out}"
        )
        self.phases = model.training_phases(config.epochs)
        # Before a resume too: it may build what the checkpoint does not hold (a GAN's judge).
        model.prepare(self.train_ds, info)
        if state is None:
            resume.clear(self.folder)
            state = resume.RunState(config=self.fingerprint)
        else:
            where = (
                self.phases[state.phase].name if state.phase < len(self.phases) else "its results"
            )
            step = f" and step {state.step}" if state.step else ""
            print(f"resuming after epoch {state.epoch}{step}, in phase {where}")
        self.state = state
        self.budgets = []
        self.checkpoint = callbacks.AtomicCheckpoint(
            self.folder,
            model.monitor,
            best=state.best,
            every=None if self.multi_worker else config.checkpoint_every,
            preemption=None if self.multi_worker else self.preemption,
            steps_per_epoch=self.steps_per_epoch,
        )
        self.guard = callbacks.SkippedStepsGuard()
        self.history = keras.callbacks.CSVLogger(os.path.join(self.out, "history.csv"), append=True)
        resume.write_history(state.history, self.history.filename)
        self.resuming = state.checkpoint is not None
        for i, phase in enumerate(self.phases):
            if phase.begin is not None:
                with self.strategy.scope():
                    phase.begin()
            if i >= state.phase:  # else finished before an interruption; its begin() replayed
                self._fit_phase(i, phase)
        if self.resuming:  # interrupted after its last phase: only the results are left to write
            resume.restore(model, os.path.join(self.folder, state.checkpoint), with_optimizer=False)

    def _fit_phase(self, i, phase):
        """Fits phase ``i`` from where the state stands: one ``fit`` for the rest of an epoch
        left part-done, then one for the phase's remaining epochs, each on `training_batches`
        from its first step, so that the data order and noise continue where they stopped."""
        config, model, state = self.config, self.model, self.state
        # Before a restore: the schedule starts from the phase's own learning rate.
        schedule = LearningRateSchedule(
            model.optimizers_in_use(),
            config.lr_schedule,
            config.warmup_steps,
            decay_fraction=config.decay_fraction,
        )
        if self.resuming:
            resume.restore(
                model,
                os.path.join(self.folder, state.checkpoint),
                with_optimizer=state.checkpoint_phase == i,
                seeds=state.seeds,
            )
            self.resuming = False
        if state.phase_epoch == 0 and state.step == 0:
            state.starts.append((phase.name, state.epoch + 1))
        budget = config.time_budget or float("inf")
        share = budget * phase.epochs / sum(p.epochs for p in self.phases)
        schedule.total_steps = phase.epochs * self.steps_per_epoch if self.steps_per_epoch else None
        schedule.budget = share
        timer = None

        def saved(name):
            state.checkpoint, state.checkpoint_phase, state.phase = name, i, i
            state.seeds = resume.seed_states(model)
            state.phase_seconds = spent + timer.elapsed

        def on_saved(epoch, logs, name, best):
            for key, value in logs.items():
                state.history.setdefault(key, []).append(float(value))
            saved(name)
            state.epoch, state.step, state.metrics, state.best = epoch + 1, 0, [], best
            state.phase_epoch += 1
            state.save(self.folder)

        def on_step_saved(epoch, step, name):
            saved(name)
            state.epoch, state.step, state.metrics = epoch, step, resume.metric_states(model)
            state.save(self.folder)

        self.checkpoint.on_saved, self.checkpoint.on_step_saved = on_saved, on_step_saved
        while state.phase_epoch < phase.epochs and state.phase_seconds < share:
            spent = state.phase_seconds
            timer = callbacks.TimeBudget(share - spent, first_step=state.step)
            self.budgets.append(timer)
            schedule.timer, schedule.spent = timer, spent
            first = state.step
            position = state.phase_epoch * (self.steps_per_epoch or 0) + first
            self.checkpoint.first_step = first
            self.preemption.armed = not self.multi_worker
            try:
                model.fit(
                    self.training_batches(position),
                    validation_data=self.test_ds,
                    initial_epoch=state.epoch,
                    epochs=state.epoch + (1 if first else phase.epochs - state.phase_epoch),
                    steps_per_epoch=self.steps_per_epoch - first if first else self.steps_per_epoch,
                    shuffle=False,
                    verbose=1 if sys.stdout.isatty() or config.verbose else 2,
                    # The budget first: what runs after its epoch end is not training time.
                    # The part-done epoch's metrics last: after the guard's epoch begins.
                    callbacks=[
                        timer,
                        *self._callbacks(schedule),
                        *([self._part_done_epoch(first)] if first else []),
                        callbacks.PhaseProgress(state.epoch + phase.epochs - state.phase_epoch),
                    ],
                )
            except BaseException:
                self.history.on_train_end()  # closes history.csv
                raise
            finally:
                self.preemption.armed = False
            if self.guard.failure:
                raise TrainingDiverged(f"{self.guard.failure}. Nothing was exported.")
            if callbacks.non_finite_variables(model):
                raise TrainingDiverged("training made weights NaN or inf; nothing exported")
            if not first or timer.elapsed >= timer.seconds:  # the phase's last fit, or out of time
                break
        if len(self.phases) > 1:
            results = model.evaluate(self.test_ds, verbose=0, return_dict=True)
            state.phase_figures[phase.name] = figures = model.headline(results)
            print(f"phase {phase.name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
        state.seconds += state.phase_seconds
        state.phase, state.phase_epoch, state.phase_seconds = i + 1, 0, 0.0
        state.save(self.folder)

    def _part_done_epoch(self, first):
        """A callback that puts back, as ``fit`` begins the epoch, the running metrics of its
        ``first`` steps done before the interruption, so that the epoch logs its whole means;
        the guard against skipped steps counts on from them too."""
        model, state, guard = self.model, self.state, self.guard

        def restore(epoch, logs=None):
            resume.restore_metrics(model, state.metrics)
            skipped = [m for m in model.metrics if m.name == "skipped_steps"]
            guard.steps = first
            guard.seen = float(skipped[0].result()) if skipped else 0.0

        return keras.callbacks.LambdaCallback(on_epoch_begin=restore)

    def _callbacks(self, schedule):
        """A phase's callbacks after its time budget: the schedule logs its rate before the CSV
        logger writes; the weight average is swapped in for validation after the checkpoint,
        which keeps the raw weights, with running statistics recomputed for it."""
        config = self.config
        scheduled = config.lr_schedule != "constant" or config.warmup_steps
        boards = []
        if config.tensorboard:
            logs = os.path.join(self.out, "logs")
            pictures = os.path.join(logs, "pictures")
            boards = [
                keras.callbacks.TensorBoard(logs, write_graph=False),
                callbacks.PicturesToTensorBoard(
                    pictures, self.test_ds, config.seed, config.temperature
                ),
            ]
        return [
            *([schedule] if scheduled else []),
            self.checkpoint,
            self.history,
            self.guard,
            *(
                [
                    keras.callbacks.SwapEMAWeights(),
                    statistics.RefreshStatistics(self.training_batches),
                ]
                if config.ema is not None
                else []
            ),
            *boards,
            *self.model.fit_callbacks(self.out),
        ]

    # 6. The figures, the files and the export.

    def report(self):
        config, model, info, state = self.config, self.model, self.info, self.state
        results = model.evaluate(self.test_ds, verbose=0, return_dict=True)
        if self.multi_worker:
            folder = self.out if self.chief else self.shared_out
            report = distribute.write_worker_report(self.strategy, model, results, folder)
            if not self.chief:
                shutil.rmtree(self.out, ignore_errors=True)
                return report
        out = self.out
        callbacks.save_atomically(model, os.path.join(out, "model.keras"), callbacks.KEPT)
        with writing(out, "the checkpoints are intact: run the same command again to finish"):
            plots.loss_curve(
                state.history, os.path.join(out, "loss_curve.png"), phases=state.starts
            )
            pictures = model.write_artifacts(
                out, self.test_ds, seed=config.seed, temperature=config.temperature
            )
        exported = (
            export.export(model, os.path.join(out, "export"), model_name=config.model)
            if config.export
            else None
        )
        steady_batches = sum(b.steady_batches for b in self.budgets)
        steady_seconds = sum(b.steady_seconds for b in self.budgets)
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
            "epochs_run": state.epoch,
            "train_seconds": round(state.seconds, 1),
            "train_examples_per_second": round(steady, 1) if steady else None,
            **headline,
            "held_out": {k: float(v) for k, v in results.items()},
            **({"phases": state.phase_figures} if state.phase_figures else {}),
            "dtype_policy": self.policy,
            "cpu": precision.cpu_model(),
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
        write_json(os.path.join(out, "metrics.json"), metrics, indent=2, default=str)
        state.finished = True
        state.save(self.folder)
        figures = ", ".join(f"{k} {v}" for k, v in headline.items())
        speed = metrics["train_examples_per_second"]
        speed = f"{speed} examples/s" if speed else "too short to time"
        print(f"held-out: {figures}; {speed}, {state.seconds:.0f} s")
        written = ["model.keras", "loss_curve.png", *pictures, "metrics.json"]
        print(f"wrote {', '.join(written)} in {out}" + (f"; export {exported}" if exported else ""))
        return metrics
