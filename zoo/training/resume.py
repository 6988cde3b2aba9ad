"""Where an interrupted `zoo.training.run` stands, so that running it again resumes it.

After every epoch `zoo.training.callbacks.AtomicCheckpoint` writes the model (weights and optimizer
state) to ``checkpoints/resume-NNNN.keras`` and then this `RunState` to
``checkpoints/state.json``, each atomically; the state names its checkpoint, so a kill at any
moment leaves a state whose checkpoint is complete and of the epoch it says. Within an epoch it
does the same every ``--checkpoint-every`` steps and on SIGTERM / SIGINT
(`zoo.training.preemption`), as ``resume-NNNN-SSSSSS.keras`` with the step and the epoch's
running metrics in the state. Resuming restores the weights, the optimizers' moments and step
counts, the epoch, step and phase, the time budget spent, the history and the best monitored
value, the metrics of a part-done epoch (`metric_states`), and the random state: the models'
seed generators (`seed_states`), and the data's order and dequantization noise, by skipping the
data ahead to the next step (each pass of `zoo.data.load`'s data draws both from seeds that
advance per pass).

Keras' ``BackupAndRestore`` keeps weights and an epoch but not a recipe of several ``fit`` calls
(phases), the best value or the history, and writes its files in place; hence this.
"""

import csv
import dataclasses
import json
import math
import os
import zipfile

from zoo.storage import first_line, replace_file, write_json
from zoo.training.config import FIRST_FINGERPRINT, NOT_FINGERPRINTED

STATE = "state.json"


@dataclasses.dataclass
class RunState:
    """A run's progress after its last completed epoch.

    Attributes:
      config: the options that shape training (`fingerprint`); a rerun with others must
        ``--restart`` or use another folder.
      epoch: epochs completed, over all phases.
      phase: the phase in progress (its index); ``phase_epoch`` epochs of it done, in
        ``phase_seconds`` of training time.
      step: steps of the next epoch done after ``epoch`` (a checkpoint within an epoch), with
        ``metrics`` its running metrics' variables (`metric_states`).
      checkpoint: the checkpoint file (in the same folder) holding the weights after ``epoch``
        and ``step``; ``checkpoint_phase`` the phase it was written in (its optimizer state
        belongs to it).
      best: the lowest monitored value so far.
      finished: the run wrote all its results (a rerun then only reports them).
      history: every logged value per epoch; ``starts``: ``(phase name, first epoch)`` of each
        phase begun; ``phase_figures``: the figures of each finished phase; ``seconds``: the
        training time of finished phases.
    """

    config: dict
    epoch: int = 0
    phase: int = 0
    phase_epoch: int = 0
    phase_seconds: float = 0.0
    seconds: float = 0.0
    step: int = 0
    metrics: list = dataclasses.field(default_factory=list)
    checkpoint: str | None = None
    checkpoint_phase: int = 0
    best: float = math.inf
    history: dict = dataclasses.field(default_factory=dict)
    starts: list = dataclasses.field(default_factory=list)
    phase_figures: dict = dataclasses.field(default_factory=dict)
    seeds: list = dataclasses.field(default_factory=list)
    finished: bool = False

    def save(self, folder):
        """Writes ``folder/state.json`` atomically (a failure leaves the previous one)."""
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, STATE)
        write_json(path, dataclasses.asdict(self), "the previous run state is intact", indent=1)


def fingerprint(config):
    """The options of a `zoo.training.RunConfig` a resumed run must share with its start:
    ``FIRST_FINGERPRINT``'s, and any other that changes what is trained where it is set."""
    fields = dataclasses.asdict(config)
    kept = {k: fields[k] for k in FIRST_FINGERPRINT}
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for k, value in fields.items():
        if k not in kept and k not in NOT_FINGERPRINTED and value != defaults[k]:
            kept[k] = value
    return json.loads(json.dumps(kept, default=str))


def load(folder, config):
    """The `RunState` in ``folder`` (None when there is none), checked against ``config``.

    Raises:
      ValueError: the state was written by a run with other options, or is unreadable, or its
        checkpoint is missing.
    """
    path = os.path.join(folder, STATE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            state = RunState(**json.load(f))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is unreadable ({error}); rerun with --restart.") from error
    wanted = fingerprint(config)
    if state.config != wanted:
        changed = sorted(k for k in wanted if state.config.get(k) != wanted[k])
        raise ValueError(
            f"{os.path.dirname(folder)} holds a run with other options ({', '.join(changed)}); "
            "rerun with --restart to start over, or choose another --out."
        )
    if state.checkpoint and not os.path.exists(os.path.join(folder, state.checkpoint)):
        raise ValueError(f"{path} names {state.checkpoint}, which is missing; use --restart.")
    return state


def clear(folder):
    """Removes a previous run's state and resume checkpoints (``--restart``, or a new run)."""
    if os.path.isdir(folder):
        for name in os.listdir(folder):
            if name == STATE or name.startswith("resume-"):
                os.remove(os.path.join(folder, name))


def seed_states(model):
    """The states of ``model``'s `keras.random.SeedGenerator` s (dropout, a model's training
    noise), in the order of ``model.variables``: Keras' checkpoints leave them out."""
    return [[int(n) for n in v.numpy()] for v in _seed_variables(model)]


def _seed_variables(model):
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def restore(model, path, with_optimizer=True, seeds=None):
    """Loads the weights of the checkpoint ``path`` into ``model`` and, ``with_optimizer``, its
    optimizers' state (they are built first, so that the saved moments have somewhere to go);
    without, the optimizers are left as they are (a phase that recompiled starts its own).
    ``seeds``: the `seed_states` saved with the checkpoint, put back."""
    import keras
    from keras.src.saving import saving_lib

    optimizers = [v for v in vars(model).values() if isinstance(v, keras.optimizers.Optimizer)]
    if with_optimizer:
        for optimizer in optimizers:
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
    # Keras' public load_weights always loads the optimizers too; this is the function behind
    # it, which can leave them out.
    try:
        saving_lib.load_weights_only(
            model, path, objects_to_skip=None if with_optimizer else optimizers
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(
            f"the resume checkpoint {path} is damaged ({first_line(error)}); rerun with --restart "
            "to start over"
        ) from error
    if seeds:
        variables = _seed_variables(model)
        if len(variables) != len(seeds):
            raise ValueError(
                f"{path} was saved with {len(seeds)} random seed states, the model has "
                f"{len(variables)}; rerun with --restart."
            )
        for variable, value in zip(variables, seeds, strict=True):
            variable.assign(value)


def metric_states(model):
    """The values of ``model``'s metrics' variables (running sums and counts), in the order of
    ``model.metrics``: what a checkpoint within an epoch needs to log the whole epoch's means."""
    return [[v.numpy().tolist() for v in m.variables] for m in model.metrics]


def restore_metrics(model, states):
    """Puts `metric_states` back (after ``fit`` has reset the metrics for the epoch)."""
    metrics = model.metrics
    if len(metrics) != len(states):
        raise ValueError(
            f"the run state holds {len(states)} metrics, the model has {len(metrics)}; rerun "
            "with --restart."
        )
    for metric, values in zip(metrics, states, strict=True):
        for variable, value in zip(metric.variables, values, strict=True):
            variable.assign(value)


def write_history(history, path):
    """``history.csv`` as Keras' ``CSVLogger`` writes it, from ``{key: [value per epoch]}``
    (empty: an empty file, which the logger then starts with its header)."""
    keys = sorted(history)
    epochs = max((len(v) for v in history.values()), default=0)

    def write(f):
        writer = csv.writer(f)
        if epochs:
            writer.writerow(["epoch", *keys])
        for epoch in range(epochs):
            row = [history[k][epoch] if epoch < len(history[k]) else "" for k in keys]
            writer.writerow([epoch, *row])

    replace_file(path, write)
