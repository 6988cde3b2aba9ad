"""A file system that refuses (a file in the way, read-only, full) ends a command in one line
naming the path and the cause, before training where it can be checked, and leaves the previous
checkpoint or export intact."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from zoo import cli, storage
from zoo.models import flows
from zoo.serving import export
from zoo.training import callbacks

TINY = ["train", "nice", "--set", "num_couplings=2", "--set", "hidden_units=(8,)"]
TINY += ["--batch-size", "32", "--no-tensorboard", "--mixed-precision", "off"]


@pytest.mark.parametrize(
    "error, cause",
    [
        (OSError(errno.ENOSPC, "No space left on device", "x/.staging"), "No space left on device"),
        (OSError(errno.EROFS, "Read-only file system"), "Read-only file system"),
        (
            tf.errors.ResourceExhaustedError(
                None,
                None,
                "x/variables/variables_temp/part-00000-of-00001.data-00000-of-00001; "
                "No space left on device\n\t [[{{node SaveV2}}]]",
            ),
            "No space left on device",
        ),
    ],
)
def test_a_refused_write_is_one_line_naming_the_file(error, cause):
    with pytest.raises(storage.WriteFailed) as failed:
        with storage.writing("run/model.keras", "the previous one is intact"):
            raise error
    assert (
        str(failed.value) == f"could not write run/model.keras: {cause}; the previous one is intact"
    )
    assert isinstance(failed.value, OSError)


@pytest.fixture(scope="module")
def model():
    return flows.NICE((4, 4, 1), 4, num_couplings=2, hidden_units=[8])


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, model, monkeypatch):
    path = str(tmp_path / "resume-0001.keras")
    callbacks.save_atomically(model, path)
    before = open(path, "rb").read()

    def save(self, target, **kwargs):
        with open(target, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(type(model), "save", save)
    with pytest.raises(storage.WriteFailed, match=r"resume-0001\.keras: No space left on device"):
        callbacks.save_atomically(model, path, callbacks.KEPT)
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["resume-0001.keras"]


def test_a_failed_export_leaves_no_version_and_no_staging(tmp_path, model, monkeypatch):
    import keras

    def write_out(self, path, **kwargs):
        os.makedirs(os.path.join(path, "variables"))
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device [[SaveV2]]")

    # ExportArchive() is the backend's subclass, whose write_out this replaces.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", write_out)
    with pytest.raises(storage.WriteFailed) as failed:
        export.export(model, str(tmp_path), model_name="nice")
    assert str(failed.value) == (
        f"could not write {tmp_path}/nice/1: No space left on device; nothing was exported"
    )
    assert os.listdir(tmp_path / "nice") == []


def test_an_output_folder_under_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("in the way")
    out = str(tmp_path / "file" / "run")
    assert cli.main([*TINY, "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"zoo: error: could not write {out}: Not a directory; cannot use it as the output folder"
    )


# Run inside a private mount namespace (`unshare`), where it mounts small tmpfs file systems:
# a read-only one, one that fills up at the second epoch's checkpoint, and one too small for an
# export. Prints what each command said.
DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, os, subprocess, sys
    from zoo import cli

    root, tiny = sys.argv[1], json.loads(sys.argv[2])
    said = {}

    def zoo(key, *argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(list(argv))
        said[key] = [code, err.getvalue().strip()]

    def mount(path, options):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True)

    mount(f"{root}/ro", "ro,size=1m")
    zoo("read_only", *tiny, "--epochs", "1", "--out", f"{root}/ro/run")
    zoo("normal", *tiny, "--epochs", "1", "--out", f"{root}/normal")
    size = os.path.getsize(f"{root}/normal/checkpoints/resume-0001.keras")
    mount(f"{root}/full", f"size={int(1.5 * size) + 16384}")
    zoo("full", *tiny, "--epochs", "3", "--out", f"{root}/full/run")
    said["left"] = sorted(os.listdir(f"{root}/full/run/checkpoints"))
    with open(f"{root}/full/run/checkpoints/state.json") as f:
        said["state"] = json.load(f)["checkpoint"]
    subprocess.run(["mount", "-o", "remount,size=16m", f"{root}/full"], check=True)
    zoo("freed", *tiny, "--epochs", "3", "--out", f"{root}/full/run")
    mount(f"{root}/small", "size=64k")
    zoo("export", "export", f"{root}/normal/model.keras", "--base-dir", f"{root}/small")
    said["small"] = sorted(os.listdir(f"{root}/small/nice"))
    print("SAID", json.dumps(said))
    """
)


def _namespaces():
    unshare = shutil.which("unshare")
    return unshare and subprocess.run([unshare, "-Urm", "true"]).returncode == 0


@pytest.mark.skipif(not _namespaces(), reason="needs mount namespaces (unshare -Urm)")
def test_read_only_and_full_file_systems_for_real(tmp_path):
    """On real tmpfs file systems: a read-only output folder is refused before training; a disk
    that fills up at the second checkpoint stops the run in one line with the first checkpoint
    intact, from which the run resumes once there is room; an export that does not fit leaves
    no version folder and no staging folder."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        ["unshare", "-Urm", sys.executable, "-c", DRIVER, str(tmp_path), json.dumps(TINY)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("SAID ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    said = json.loads(lines[0][5:])
    root = str(tmp_path)
    assert said["read_only"] == [
        2,
        f"zoo: error: could not write {root}/ro/run: Read-only file system; cannot use it as the "
        "output folder",
    ]
    assert said["full"] == [
        2,
        f"zoo: error: could not write {root}/full/run/checkpoints/resume-0002.keras: No space "
        "left on device; the previous checkpoint is intact",
    ]
    assert said["state"] == "resume-0001.keras" and "resume-0001.keras" in said["left"]
    assert not [name for name in said["left"] if name.startswith(".")], said["left"]
    assert said["freed"] == [0, ""]
    code, message = said["export"]
    assert code == 2 and message.startswith(
        f"zoo: error: could not write {root}/small/nice/1: No space left on device"
    ), message
    assert said["small"] == []
