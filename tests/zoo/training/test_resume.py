"""A `zoo train` stopped by Ctrl-C, or killed with SIGKILL, within an epoch resumes there when
run again, and ends exactly where an uninterrupted run with the same seed ends; a second run
into its folder is refused while it runs."""

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from zoo import cli

TRAIN = [
    "train",
    "realnvp",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--set",
    "architecture=flat",
    "num_couplings=4",
    "hidden_units=(32,)",
    "--no-export",
    "--no-tensorboard",
]
# Threaded float sums make two runs differ by about 0.001 bits/dim; with deterministic ops an
# uninterrupted run repeats exactly, and so must a resumed one.
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_DETERMINISTIC_OPS": "1"}


def _zoo(*args, **kwargs):
    env = {**os.environ, **ENV}
    command = [sys.executable, "-m", "zoo", *TRAIN, *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _history(out):
    with open(os.path.join(out, "history.csv")) as f:
        return list(csv.DictReader(f))


def _state(out):
    try:
        with open(os.path.join(out, "checkpoints", "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _until(process, condition, what):
    """Polls the run state until ``condition(state)``; the run must still be going."""
    deadline = time.time() + 600
    while not condition(_state_of(process) or {}):
        assert process.poll() is None and time.time() < deadline, f"finished before {what}"
        time.sleep(0.01)
    return _state_of(process)


def _early(state):
    """A checkpoint within the first half of an epoch (94 steps; a step of this small model
    takes milliseconds, so the window spans many polls): a signal sent now lands before the
    epoch ends."""
    return 3 <= state.get("step", 0) <= 45


def _state_of(process):
    return _state(process.out)


def _start(out, *args):
    process = _zoo("--out", out, *args)
    process.out = out
    return process


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run; and one that a second run into its folder meets, stopped by
    Ctrl-C (SIGINT) within its first or second epoch, run again and killed (SIGKILL) within a
    later epoch after a ``--checkpoint-every`` checkpoint, and run again to its end."""
    root = tmp_path_factory.mktemp("resume")
    whole, resumed = str(root / "whole"), str(root / "resumed")
    assert _zoo("--out", whole).wait(timeout=600) == 0
    first = _start(resumed, "--checkpoint-every", "3")
    lock = os.path.join(resumed, ".zoo-run.lock")
    deadline = time.time() + 600
    while not (os.path.exists(lock) and open(lock).read()):
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.05)
    second = _zoo("--out", resumed).communicate(timeout=600)[0].decode().strip()
    at_int = _until(first, lambda s: _early(s) and s["epoch"] < 2, "the Ctrl-C")
    first.send_signal(signal.SIGINT)
    said = first.communicate(timeout=600)[0].decode().strip().splitlines()[-1]
    at_int = _state(resumed)
    assert first.returncode == 128 + signal.SIGINT, said

    def later(state):
        return _early(state) and state["epoch"] > at_int["epoch"]

    again = _start(resumed, "--checkpoint-every", "3")
    at_kill = _until(again, later, "the kill")
    again.send_signal(signal.SIGKILL)
    again.wait()
    at_kill = _state(resumed)
    best_at_kill = os.stat(os.path.join(resumed, "checkpoints", "best.keras")).st_ino
    last = _start(resumed, "--checkpoint-every", "3")
    log = last.communicate(timeout=600)[0].decode()
    assert last.returncode == 0, log[-3000:]
    return whole, resumed, (second, first.pid), (at_int, said), at_kill, best_at_kill, log


def test_a_second_run_into_a_running_runs_folder_is_refused(runs):
    _, resumed, (said, pid), *_ = runs
    assert said.splitlines()[-1].startswith(
        f"zoo: error: {resumed} is in use by another run (process {pid} on "
    ), said[-2000:]
    assert "wait for it to end, or choose another --out." in said


def test_ctrl_c_checkpoints_the_step_in_one_line(runs):
    _, resumed, _, (at_int, said), *_ = runs
    epoch, step = at_int["epoch"], at_int["step"]
    assert step > 0 and not at_int["finished"], at_int
    assert said == (
        f"zoo: interrupted by SIGINT in epoch {epoch + 1} after step {step}: saved "
        f"{resumed}/checkpoints/resume-{epoch:04d}-{step:06d}.keras; run the same command "
        "again to resume there"
    )


def test_an_interrupted_run_resumes_and_ends_where_an_uninterrupted_one_ends(runs):
    whole, resumed, _, (at_int, _), at_kill, _, log = runs
    assert at_int["epoch"] < at_kill["epoch"] < 3 and at_kill["step"] >= 3, at_kill
    assert f"resuming after epoch {at_kill['epoch']} and step {at_kill['step']}" in log
    assert f"Epoch {at_kill['epoch'] + 1}/3" in log and "Epoch 1/3" not in log
    expected, got = _history(whole), _history(resumed)
    assert [r["epoch"] for r in got] == [r["epoch"] for r in expected] == ["0", "1", "2"]
    # The epochs before the kill are kept as they were logged.
    for key in ("loss", "val_loss"):
        kept = [float(r[key]) for r in got[: at_kill["epoch"]]]
        assert kept == at_kill["history"][key]
    # After each stop, within an epoch: the same weights, optimizer state, data order, noise
    # and running means: the same figures, the two part-done epochs' training loss included.
    timed = "seconds_per_step"
    assert [{**r, timed: ""} for r in got] == [{**r, timed: ""} for r in expected]
    assert all(float(r[timed]) > 0 for r in got), got
    metrics = [json.load(open(os.path.join(out, "metrics.json"))) for out in (whole, resumed)]
    assert metrics[1]["epochs_run"] == 3
    assert metrics[1]["held_out_bits_per_dim"] == metrics[0]["held_out_bits_per_dim"]
    assert metrics[1]["held_out_bits_per_dim"] < float(got[0]["val_bits_per_dim"]) - 0.1


def test_the_best_checkpoint_and_value_survive_the_kill(runs):
    _, resumed, _, _, at_kill, best_at_kill, _ = runs
    folder = os.path.join(resumed, "checkpoints")
    state = _state(resumed)
    val = [float(r["val_loss"]) for r in _history(resumed)]
    assert math.isclose(state["best"], min(val), rel_tol=1e-6) and state["finished"]
    if min(val) == min(val[: at_kill["epoch"]]):  # no better epoch after the kill
        assert os.stat(os.path.join(folder, "best.keras")).st_ino == best_at_kill
    assert sorted(os.listdir(folder)) == [
        "best.keras",
        "last.keras",
        "resume-0003.keras",
        "state.json",
    ]


def test_a_finished_run_is_not_retrained_and_restart_starts_over(runs, capsys):
    _, resumed, *_ = runs
    before = json.load(open(os.path.join(resumed, "metrics.json")))
    again = cli.run([*TRAIN, "--out", resumed])
    assert again == before and "finished" in capsys.readouterr().out
    code = cli.main([*TRAIN, "--out", resumed, "--batch-size", "32"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds a run with other options (batch_size)" in err, err
    cli.run([*TRAIN, "--out", resumed, "--epochs", "1", "--restart"])
    assert [r["epoch"] for r in _history(resumed)] == ["0"]
    assert _state(resumed)["epoch"] == 1


def test_a_recipe_resumes_in_its_second_phase(tmp_path, monkeypatch, capsys):
    """Transfer (pretraining, then frozen and fine-tuned phases) interrupted after its first
    fine-tuning epoch: the rerun reuses the finished pretraining, replays the phase change and
    continues fine-tuning from the checkpoint with its optimizer state."""
    from zoo.training import resume

    out = str(tmp_path / "transfer")
    argv = ["train", "transfer", "--out", out, "--epochs", "2", "--no-export"]
    save = resume.RunState.save

    def interrupted(state, folder):
        save(state, folder)
        if state.phase == 1 and state.phase_epoch == 1 and folder.startswith(out + os.sep + "c"):
            raise KeyboardInterrupt

    monkeypatch.setattr(resume.RunState, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cli.run(argv)
    monkeypatch.setattr(resume.RunState, "save", save)
    capsys.readouterr()
    metrics = cli.run(argv)
    log = capsys.readouterr().out
    assert "backbone holds this run, finished" in log
    assert "resuming after epoch 3, in phase fine_tuned" in log and "Epoch 4/4" in log
    assert "Epoch 1/4" not in log and "Epoch 3/4" not in log
    assert metrics["epochs_run"] == 4 and set(metrics["phases"]) == {"frozen", "fine_tuned"}
    assert [r["epoch"] for r in _history(out)] == ["0", "1", "2", "3"]
    assert _state(out)["starts"] == [["frozen", 1], ["fine_tuned", 3]]


def test_the_random_state_is_checkpointed_with_the_weights(tmp_path):
    """Keras' checkpoints leave seed generators out: restored from the run state, a resumed
    model draws the training noise that the uninterrupted one draws next."""
    import numpy as np

    from zoo.models import autoencoders
    from zoo.models.noise import training_noise
    from zoo.training import resume

    def vae():
        model = autoencoders.VAE((8, 8, 1), num_levels=17, latent_dim=2, hidden_units=(8,))
        model.compile(**model.compile_defaults())
        return model

    model = vae()
    images = np.random.default_rng(0).random((16, 8, 8, 1), np.float32)
    model.fit(images, batch_size=8, verbose=0)
    path = str(tmp_path / "checkpoint.keras")
    model.save(path)
    seeds = resume.seed_states(model)
    resumed, unseeded = vae(), vae()
    resume.restore(resumed, path, seeds=seeds)
    resume.restore(unseeded, path)
    expected = training_noise(model.noise, [5]).numpy()
    np.testing.assert_array_equal(training_noise(resumed.noise, [5]).numpy(), expected)
    assert not np.array_equal(training_noise(unseeded.noise, [5]).numpy(), expected)
