# ruff: noqa: E501  (tables of cases read best one per line)
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo import cli
from zoo.serving import export, presets
from zoo.training import precision

TINY = ["--set", "filters=8", "--set", "num_blocks=1", "--epochs", "1", "--batch-size", "128"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    try:
        metrics = cli.run(["train", "realnvp", "--out", out, *TINY])
    finally:
        keras.config.set_dtype_policy("float32")
    return out, metrics


def test_train_writes_every_artifact(trained):
    out, metrics = trained
    for name in [
        "model.keras",
        "checkpoints/last.keras",
        "checkpoints/best.keras",
        "history.csv",
        "metrics.json",
        "export/realnvp/1/saved_model.pb",
    ]:
        assert os.path.exists(os.path.join(out, name)), name
    for picture in ["samples.png", "loss_curve.png"]:
        with open(os.path.join(out, picture), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in os.listdir(out) if "tmp" in n]
    with open(os.path.join(out, "metrics.json")) as f:
        saved = json.load(f)
    assert saved["num_levels"] == 17 and saved["dataset"] == "digits"
    assert saved["held_out_bits_per_dim"] == metrics["held_out_bits_per_dim"]
    assert saved["dtype_policy"] == precision.choose("auto")[0]  # RealNVP prefers bfloat16
    # One epoch already beats the uniform density over 17 levels (log2 17 = 4.09 bits/dim).
    assert saved["held_out_bits_per_dim"] < 4.0


def summaries(folder):
    """``{(subfolder, tag): [(step, value), ...]}`` of the TensorBoard event files in ``folder``."""
    import tensorflow as tf

    found = {}
    for root, _, files in os.walk(folder):
        for name in sorted(f for f in files if f.startswith("events.out.tfevents")):
            for record in tf.data.TFRecordDataset(os.path.join(root, name)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    key = (os.path.relpath(root, folder), value.tag)
                    found.setdefault(key, []).append((event.step, tf.make_ndarray(value.tensor)))
    return found


def test_tensorboard_logs_hold_each_epochs_scalars_and_pictures(trained):
    import tensorflow as tf

    out, _ = trained
    found = summaries(os.path.join(out, "logs"))
    with open(os.path.join(out, "history.csv")) as f:
        header, row = f.read().splitlines()[:2]
    history = dict(zip(header.split(","), map(float, row.split(",")), strict=True))
    [(step, loss)] = found["train", "epoch_loss"]
    assert step == 0 and float(loss) == pytest.approx(history["loss"], rel=1e-6)
    [(_, bits)] = found["validation", "epoch_bits_per_dim"]
    assert float(bits) == pytest.approx(history["val_bits_per_dim"], rel=1e-6)
    [(step, picture)] = found["pictures", "samples"]  # [width, height, PNG]
    grid = tf.io.decode_png(picture[2]).numpy()
    assert step == 0 and grid.shape[:2] == (int(picture[1]), int(picture[0]))
    assert grid.std() > 10  # a drawn grid, not a blank image


def test_evaluate_reproduces_the_training_figure(trained, capsys):
    out, metrics = trained
    result = cli.run(["evaluate", os.path.join(out, "model.keras")])
    assert abs(result["bits_per_dim"] - metrics["held_out_bits_per_dim"]) < 1e-3
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["split"] == "test"


def test_a_binarized_vae_is_evaluated_on_binarized_data(tmp_path):
    """`--binarize` trains on 2-level data; `zoo evaluate` binarizes the same way by default (a
    model of 2-level data asks for it), else the digits' 17 levels would not fit the model."""
    out = str(tmp_path / "vae")
    options = [
        "--set",
        "likelihood=bernoulli",
        "hidden_units=(32,)",
        "latent_dim=4",
        "iw_samples=3",
    ]
    quiet = ["--no-export", "--no-tensorboard", "--mixed-precision", "off"]
    metrics = cli.run(
        ["train", "vae", "--binarize", "--epochs", "2", *options, *quiet, "--out", out]
    )
    assert metrics["num_levels"] == 2 and metrics["config"]["iw_samples"] == 3
    result = cli.run(["evaluate", os.path.join(out, "model.keras")])
    assert result["loss"] == pytest.approx(metrics["held_out"]["loss"], rel=0.02)
    assert result["bits_per_dim"] == pytest.approx(result["loss"] / (64 * np.log(2)), rel=1e-5)


def test_a_model_file_option_takes_a_preset_name(tmp_path):
    out = str(tmp_path / "transflow")
    command = ["train", "transflow", "--set", "flow=realnvp_digits", "--labels-per-class", "3"]
    metrics = cli.run([*command, "--epochs", "1", "--no-export", "--no-tensorboard", "--out", out])
    assert metrics["config"]["flow"] == presets.model_file("realnvp_digits")
    assert metrics["held_out_accuracy"] > 0.3  # 10 classes: chance is 0.1


def test_sample_and_export_commands(trained, tmp_path, monkeypatch):
    out, _ = trained
    model_path = os.path.join(out, "model.keras")
    cli.run(["sample", model_path, "-n", "9", "--out", str(tmp_path / "s.png")])
    with open(tmp_path / "s.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"
    cli.run(["export", model_path, "--base-dir", str(tmp_path / "serve"), "--name", "digits"])
    cli.run(["export", model_path, "--base-dir", str(tmp_path / "serve"), "--name", "digits"])
    assert sorted(os.listdir(tmp_path / "serve" / "digits")) == ["1", "2"]
    # --jit-compile reaches the export (which tests/zoo/serving/test_export.py checks compiled).
    calls = []
    monkeypatch.setattr(export, "export", lambda *args, **kwargs: calls.append(kwargs))
    cli.run(["export", model_path, "--base-dir", str(tmp_path / "x"), "--jit-compile"])
    cli.run(["export", model_path, "--base-dir", str(tmp_path / "x")])
    assert [c["jit_compile"] for c in calls] == [True, False]


def test_bad_arguments_are_explained(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="No model file"):
        cli.run(["sample", str(tmp_path / "missing.keras")])
    with pytest.raises(SystemExit):
        cli.run(["train", "waveglow"])
    assert "invalid choice: 'waveglow'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="key=value"):
        cli.parse_set(["filters"], "nice")


@pytest.mark.parametrize(
    "model, items, expected",
    [
        ("nice", ["num_couplings=8", "hidden_units=(4, 4)", "prior=normal"], {"num_couplings": 8, "hidden_units": (4, 4), "prior": "normal"}),
        ("nice", ["hidden_units=16,16"], {"hidden_units": (16, 16)}),
        ("realnvp", ["batch_norm=false", "alpha=0.1"], {"batch_norm": False, "alpha": 0.1}),
        ("realnvp", ["batch_norm=False"], {"batch_norm": False}),
        ("realnvp", ["batch_norm=yes"], {"batch_norm": True}),
        ("glow", ["lu_decomposed=0", "actnorm=off"], {"lu_decomposed": False, "actnorm": False}),
        ("realnvp", ["dequantization=variational"], {"dequantization": "variational"}),
        ("transfer", ["fine_tune_epochs=3", "backbone=runs/x/model.keras"], {"fine_tune_epochs": 3, "backbone": "runs/x/model.keras"}),
        ("dcgan", ["loss=hinge"], {"loss": "hinge"}),
    ],
)  # fmt: skip
def test_set_parses_each_option_as_its_type(model, items, expected):
    """A boolean option given "false" is False (a non-empty string would be truthy)."""
    got = cli.parse_set(items, model)
    assert got == expected and all(type(got[k]) is type(v) for k, v in expected.items())


@pytest.mark.parametrize(
    "model, item, message",
    [
        ("realnvp", "batch_norm=maybe", "--set batch_norm=maybe: realnvp's batch_norm is true or false (default True); 'maybe' is not one."),
        ("nice", "num_couplings=4.5", "nice's num_couplings is a whole number (default 4); '4.5' is not one."),
        ("glow", "alpha=abc", "glow's alpha is a number (default 0.05); 'abc' is not one."),
        ("glow", "alpha=nan", "glow's alpha is a finite number"),
        ("nice", "hidden_units=[256", "nice's hidden_units is a list, e.g. (256, 256)"),
        ("dcgan", "filtres=8", "--set filtres: dcgan has no option 'filtres'; it has "),
    ],
)  # fmt: skip
def test_set_values_that_do_not_parse_name_the_option(model, item, message):
    with pytest.raises(ValueError) as error:
        cli.parse_set([item], model)
    assert message in str(error.value)


def test_console_entry_point_exits_zero(trained, tmp_path):
    out, _ = trained
    assert (
        cli.main(
            [
                "sample",
                os.path.join(out, "model.keras"),
                "-n",
                "4",
                "--out",
                str(tmp_path / "s.png"),
            ]
        )
        == 0
    )


def test_python_dash_m_zoo_help_lists_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "train", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for option in ["--dataset", "--epochs", "--batch-size", "--mixed-precision", "--out"]:
        assert option in result.stdout
    assert np.all([m in result.stdout for m in ["nice", "realnvp", "realnvp_flat"]])


@pytest.fixture(scope="module")
def trained_gan(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("gan"))
    gan_options = ["--set", "filters=8", "--set", "latent_dim=16", "--set", "pack=2"]
    metrics = cli.run(["train", "dcgan", "--out", out, "--epochs", "2", *gan_options])
    return out, metrics


def test_a_gan_goes_through_the_same_training_path(trained_gan):
    out, _ = trained_gan
    for name in ["model.keras", "checkpoints/last.keras", "history.csv", "export/dcgan/1"]:
        assert os.path.exists(os.path.join(out, name)), name
    pictures = ["samples.png", "loss_curve.png", "epochs/epoch_001.png", "epochs/epoch_002.png"]
    for picture in pictures:
        with open(os.path.join(out, picture), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", picture
    # No monitored figure for a GAN: no best.keras, only the last.
    assert not os.path.exists(os.path.join(out, "checkpoints", "best.keras"))
    with open(os.path.join(out, "metrics.json")) as f:
        saved = json.load(f)
    assert saved["held_out_judge_accuracy"] > 0.8  # the judge really classifies held-out digits
    covered = saved["held_out_classes_covered"]
    assert covered == int(covered) and 0 < covered <= 10, covered  # a count of digit classes
    assert saved["held_out_frechet_distance"] > 0
    assert saved["epochs_run"] == 2 and saved["config"]["pack"] == 2


def test_evaluate_and_sample_a_gan(trained_gan, tmp_path):
    out, metrics = trained_gan
    model_path = os.path.join(out, "model.keras")
    result = cli.run(["evaluate", model_path])
    assert abs(result["judge_accuracy"] - metrics["held_out_judge_accuracy"]) < 1e-3
    cli.run(["sample", model_path, "-n", "9", "--out", str(tmp_path / "g.png")])
    with open(tmp_path / "g.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_list_names_every_model(capsys):
    rows = cli.run(["list"])
    names = {r[0] for r in rows}
    assert {"nice", "realnvp", "realnvp_flat", "dcgan"} <= names
    printed = capsys.readouterr().out
    assert all(name in printed for name in names)


@pytest.fixture(scope="module")
def trained_transfer(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("transfer"))
    metrics = cli.run(["train", "transfer", "--out", out, "--epochs", "2"])
    return out, metrics


def test_transfer_pretrains_then_transfers_with_few_labels(trained_transfer):
    out, metrics = trained_transfer
    for name in ["backbone/model.keras", "model.keras", "export/transfer/1/saved_model.pb"]:
        assert os.path.exists(os.path.join(out, name)), name
    for picture in ["confusion_matrix.png", "loss_curve.png", "backbone/confusion_matrix.png"]:
        with open(os.path.join(out, picture), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", picture
    with open(os.path.join(out, "backbone", "metrics.json")) as f:
        pretrained = json.load(f)
    assert pretrained["classes"] == [0, 1, 2, 3, 4] and pretrained["train_examples"] > 500
    assert metrics["classes"] == [5, 6, 7, 8, 9] and metrics["train_examples"] == 50
    assert list(metrics["phases"]) == ["frozen", "fine_tuned"] and metrics["epochs_run"] == 4
    assert metrics["held_out_accuracy"] == metrics["phases"]["fine_tuned"]["held_out_accuracy"]
    assert metrics["config"]["class_labels"] == [5, 6, 7, 8, 9]
    assert metrics["config"]["trainable_layers"] > 0
    with open(os.path.join(out, "history.csv")) as f:
        assert len(f.read().strip().splitlines()) == 1 + 4  # both phases, one log


def test_evaluate_a_transfer_model_on_its_own_classes(trained_transfer):
    out, metrics = trained_transfer
    result = cli.run(["evaluate", os.path.join(out, "model.keras")])
    assert abs(result["accuracy"] - metrics["held_out"]["accuracy"]) < 1e-6


@pytest.mark.parametrize(
    "option, message",
    [
        (["--epochs", "0"], "epochs must be a whole number >= 1, got 0"),
        (["--batch-size", "0"], "batch_size must be a whole number >= 1, got 0"),
        (["--learning-rate", "nan"], "learning_rate must be a finite number > 0, got nan"),
        (["--temperature", "-1"], "temperature must be a finite number > 0, got -1.0"),
        (["--train-split", "train[5:2]"], "Split 'train[5:2]' is empty"),
    ],
)
def test_user_errors_print_one_line_and_exit_2_before_writing(option, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "realnvp", "--out", str(out), *option]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo: error: ") and message in err, err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_stale_checkpoint_temporaries_are_removed_and_checkpoints_kept(tmp_path):
    from zoo.training import callbacks

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / ".best.keras.123.tmp.keras").write_bytes(b"half a zip")  # a killed save
    (folder / "best.keras").write_bytes(b"the previous checkpoint")
    callbacks.AtomicCheckpoint(str(folder)).on_train_begin()
    assert os.listdir(folder) == ["best.keras"]
    assert (folder / "best.keras").read_bytes() == b"the previous checkpoint"


def test_a_diverging_run_stops_with_exit_1_and_exports_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    # 24 steps an epoch: the first step blows the weights up, then every step is skipped, and
    # the run of skipped steps reaches 25 in the second epoch.
    options = ["--epochs", "3", "--batch-size", "64"]
    status = cli.main(["train", "nice", "--out", str(out), "--learning-rate", "1e30", *options])
    err = capsys.readouterr().err.strip()
    assert status == 1, err
    assert err.startswith("zoo: error: training stopped in epoch 2: 25 steps in a row") and (
        "Nothing was exported" in err
    ), err
    assert not (out / "export").exists() and not (out / "model.keras").exists()


def test_export_refuses_non_finite_weights(tmp_path):
    from zoo.models import flows

    model = flows.NICE((4, 4, 1), 4, num_couplings=2, hidden_units=[8])
    model.trainable_weights[0].assign(np.full(model.trainable_weights[0].shape, np.nan))
    with pytest.raises(ValueError, match=r"Not exporting .* 1 variables hold NaN or inf"):
        export.export(model, str(tmp_path), model_name="m")
    assert not os.listdir(tmp_path)


def test_the_skipped_steps_guard_counts_replica_shares_and_whole_epochs():
    from zoo.training import callbacks

    class Model:
        stop_training = False

    guard = callbacks.SkippedStepsGuard(patience=3)
    guard.set_model(Model())
    guard.on_epoch_begin(0)
    for i in range(3):  # under two replicas a batch's log rises by half a step
        guard.on_train_batch_end(i, {"skipped_steps": 0.5 * (i + 1)})
    assert guard.model.stop_training and "3 steps in a row" in guard.failure
    guard = callbacks.SkippedStepsGuard(patience=100)
    guard.set_model(Model())
    guard.on_epoch_begin(0)
    for i in range(4):
        guard.on_train_batch_end(i, {"skipped_steps": float(i + 1)})
    guard.on_epoch_end(0, {"skipped_steps": 4.0})
    assert "all 4 steps of the epoch" in guard.failure
