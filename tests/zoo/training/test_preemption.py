"""SIGTERM and SIGINT stop a run at a step it resumes from, in one line; a run owns its folder.

(A whole run interrupted by SIGINT, then SIGKILL, ending exactly where an uninterrupted one
ends, and two runs started into one folder: `test_resume`.)"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from zoo import cli
from zoo.training import callbacks, lock, resume

TINY = ["train", "nice", "--set", "num_couplings=2", "--set", "hidden_units=(8,)"]
TINY += ["--batch-size", "32", "--no-tensorboard", "--no-export", "--mixed-precision", "off"]


def _state(out):
    with open(os.path.join(out, "checkpoints", "state.json")) as f:
        return json.load(f)


def _signal_at(monkeypatch, signum, epoch, step):
    """Sends ``signum`` to this process as the training step ``step`` (1-based) of ``epoch``
    (0-based) ends, from within Keras' callbacks, as a signal arrives during a step."""
    original = callbacks.TimeBudget.on_train_batch_end
    position = {"epoch": 0}

    def on_epoch_begin(self, e, logs=None):
        position["epoch"] = e
        return original_begin(self, e, logs)

    def on_train_batch_end(self, batch, logs=None):
        original(self, batch, logs)
        if position["epoch"] == epoch and batch + 1 == step:
            os.kill(os.getpid(), signum)

    original_begin = callbacks.TimeBudget.on_epoch_begin
    monkeypatch.setattr(callbacks.TimeBudget, "on_epoch_begin", on_epoch_begin)
    monkeypatch.setattr(callbacks.TimeBudget, "on_train_batch_end", on_train_batch_end)


def test_sigterm_checkpoints_the_step_and_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "run")
    argv = [*TINY, "--epochs", "3", "--out", out]
    _signal_at(monkeypatch, signal.SIGTERM, epoch=1, step=3)
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 128 + signal.SIGTERM, err
    assert err.splitlines() == [
        f"zoo: interrupted by SIGTERM in epoch 2 after step 3: saved "
        f"{out}/checkpoints/resume-0001-000003.keras; run the same command again to resume there"
    ]
    state = _state(out)
    assert (state["epoch"], state["step"], state["finished"]) == (1, 3, False)
    assert state["checkpoint"] == "resume-0001-000003.keras" and state["metrics"]
    # The epoch's running loss: what the three steps logged, kept to be continued.
    assert len(state["history"]["loss"]) == 1
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == [
        "best.keras",
        "last.keras",
        "resume-0001-000003.keras",
        "state.json",
    ]
    monkeypatch.undo()
    metrics = cli.run(argv)
    log = capsys.readouterr().out
    assert "resuming after epoch 1 and step 3, in phase train" in log, log
    assert metrics["epochs_run"] == 3 and _state(out)["step"] == 0


def test_a_signal_outside_training_stops_at_once_and_leaves_no_folder(
    tmp_path, monkeypatch, capsys
):
    from zoo.training import runner

    out = str(tmp_path / "run")

    def load_data(self):
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(runner.Run, "load_data", load_data)
    # What the process had (SIG_IGN when started in the background by a shell).
    handler = signal.getsignal(signal.SIGINT)
    code = cli.main([*TINY, "--out", out])
    err = capsys.readouterr().err.strip()
    assert code == 128 + signal.SIGINT and err.splitlines() == [
        "zoo: interrupted by SIGINT; run the same command again to resume from the last checkpoint"
    ]
    assert not os.path.exists(out)
    # The process' own handler is back.
    assert signal.getsignal(signal.SIGINT) is handler


def test_checkpoint_every_bounds_what_a_kill_loses(tmp_path, monkeypatch):
    """Every 2 steps the state names a checkpoint of that step; the one before it goes once the
    state no longer names it."""
    out = str(tmp_path / "run")
    seen = []
    save = resume.RunState.save

    def record(state, folder):
        save(state, folder)
        names = sorted(n for n in os.listdir(folder) if n.startswith("resume-"))
        seen.append((state.epoch, state.step, state.checkpoint, names))

    monkeypatch.setattr(resume.RunState, "save", record)
    cli.run([*TINY, "--epochs", "1", "--out", out, "--checkpoint-every", "2"])
    steps = [s for s in seen if s[1]]
    assert [s[1] for s in steps] == list(range(2, 2 * len(steps) + 1, 2)) and len(steps) >= 3
    previous = []
    for epoch, step, name, names in steps:
        assert name == f"resume-{epoch:04d}-{step:06d}.keras" and names == [*previous, name]
        previous = [name]


def test_the_metrics_of_a_part_done_epoch_are_restored():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", metrics=["mae"])
    x = np.arange(8, dtype="float32").reshape(4, 2)
    model.evaluate(x, x[:, :1], verbose=0)
    states = resume.metric_states(model)
    expected = model.get_metrics_result()
    model.reset_metrics()
    assert model.get_metrics_result() != expected
    resume.restore_metrics(model, states)
    assert model.get_metrics_result() == expected and expected["loss"] > 1
    with pytest.raises(ValueError, match="holds 1 metrics, the model has"):
        resume.restore_metrics(model, states[:1])


def test_a_run_owns_its_folder(tmp_path, capsys):
    """A held folder is refused in one line naming it and its holder, before anything is
    written; a killed holder leaves no lock that stops the next run."""
    out = str(tmp_path / "run")
    with lock.FolderLock(out, "zoo train nice --out run"):
        err = cli.main([*TINY, "--out", out])
        message = capsys.readouterr().err.strip()
        assert err == 2 and len(message.splitlines()) == 1, message
        assert f"zoo: error: {out} is in use by another run (process {os.getpid()} on " in message
        assert "zoo train nice --out run); wait for it to end, or choose another --out." in message
        assert os.listdir(out) == [lock.LOCK]
    holder = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fcntl, os, signal, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'{}'); os.kill(os.getpid(), 9)",
            os.path.join(out, lock.LOCK),
        ]
    )
    assert holder.returncode == -signal.SIGKILL
    with lock.FolderLock(out) as held:  # the killed holder's lock went with it
        assert json.loads(open(held.path).read())["pid"] == os.getpid()


def test_a_damaged_resume_checkpoint_is_named(tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "run")
    argv = [*TINY, "--epochs", "2", "--out", out]
    _signal_at(monkeypatch, signal.SIGTERM, epoch=1, step=2)
    assert cli.main(argv) == 128 + signal.SIGTERM
    monkeypatch.undo()
    path = os.path.join(out, "checkpoints", _state(out)["checkpoint"])
    with open(path, "r+b") as f:
        f.truncate(300)
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(
        f"zoo: error: the resume checkpoint {path} is damaged ("
    ), err
    assert err.endswith("); rerun with --restart to start over"), err
