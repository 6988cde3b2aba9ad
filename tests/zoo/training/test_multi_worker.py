"""`zoo train --strategy multi-worker` with two worker processes on localhost ports: both end
with the same weights; a flow's figures are one process's over the same global batches, to
float round-off (a GAN's replicas draw their own noise, so its figures have no exact match)."""

import json
import os
import socket
import subprocess
import sys

import pytest

MODELS = {
    # Without the scaling's data-dependent start: its initial values average the workers'
    # batch statistics, which differ from one process's statistics of the whole batch.
    "nice": (
        [
            "nice",
            "--set",
            "num_couplings=2",
            "--set",
            "hidden_units=[32]",
            "--set",
            "data_init=False",
        ],
        # Two workers sum the same gradients in another order than one process (round-off).
        ("bits_per_dim", 1e-4),
    ),
    # Each replica draws its own noise: no figure to match one process's.
    "dcgan": (["dcgan", "--set", "filters=8", "--set", "latent_dim=8"], None),
}
DATA = [
    "--batch-size",
    "64",
    "--epochs",
    "1",
    "--train-split",
    "train[:512]",
    "--test-split",
    "test[:128]",
    "--no-tensorboard",
]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_workers_train_in_lockstep_and_match_one_process(model, tmp_path):
    options, compared = MODELS[model]
    train = ["train", *options, *DATA]
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    out = str(tmp_path / "cluster")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "zoo", *train, "--strategy", "multi-worker", "--out", out],
            env=_env(
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        logs = [w.communicate(timeout=300)[0].decode() for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    reports = [json.load(open(os.path.join(out, f"worker-{i}.json"))) for i in range(2)]
    assert (
        reports[0]["workers"] == 2 and reports[0]["weights_sha256"] == reports[1]["weights_sha256"]
    )
    # Only the chief writes the run's files.
    assert {"worker-0.json", "worker-1.json", "metrics.json", "export"} <= set(os.listdir(out))
    assert not [n for n in os.listdir(out) if n.startswith("zoo-worker")]
    assert json.load(open(os.path.join(out, "metrics.json")))["epochs_run"] == 1
    if compared is None:
        return
    figure, tolerance = compared
    single = str(tmp_path / "single")
    result = subprocess.run(
        [sys.executable, "-m", "zoo", *train, "--out", single, "--no-export"],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    expected = json.load(open(os.path.join(single, "metrics.json")))["held_out"][figure]
    got = reports[0]["held_out"][figure]
    print(model, "two workers", got, "one process", expected)
    assert abs(got - expected) < tolerance, (got, expected)
