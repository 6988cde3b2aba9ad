# ruff: noqa: E501  (tables of cases read best one per line)
"""Nonsense options, counts and data get one clear error naming the problem, before anything is
written; empty batches get empty answers."""

import numpy as np
import pytest

from tfflows import bijectors
from zoo import cli, data
from zoo.models import flows, gan
from zoo.models.autoencoders import VAE


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: flows.NICE((4, 4, 1), 4, num_couplings=0), "num_couplings must be a whole number >= 1, got 0"),
        (lambda: flows.NICE((4, 4, 1), 4, hidden_units=32), "hidden_units must be a list of whole numbers >= 1, e.g. [256, 256]; got 32"),
        (lambda: flows.RealNVP((4, 4, 1), 4, num_blocks=-1), "num_blocks must be a whole number >= 0, got -1"),
        (lambda: flows.RealNVP((4, 4, 1), 4, num_scales=2.7), "num_scales must be a whole number >= 1, got 2.7"),
        (lambda: flows.RealNVP((4, 4, 1), 4, num_scales=0), "num_scales must be a whole number >= 1, got 0"),
        (lambda: flows.RealNVP((4, 4, 1), 4, filters="abc"), "filters must be a whole number >= 1, got 'abc'"),
        (lambda: flows.RealNVP((4, 4, 1), 4, alpha=0.7), "alpha must be a number in [0, 0.5), got 0.7"),
        (lambda: gan.DCGAN((8, 8, 1), latent_dim=0), "latent_dim must be a whole number >= 1, got 0"),
        (lambda: VAE((4, 4, 1), 4, hidden_units=[16, -2]), "hidden_units must be a whole number >= 1, got -2"),
    ],
)  # fmt: skip
def test_nonsense_model_options_are_named(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value)


@pytest.fixture(scope="module")
def samplers():
    return [
        flows.RealNVP((4, 4, 1), 4, num_scales=1, filters=4, num_blocks=1),
        gan.DCGAN((8, 8, 1), latent_dim=4, filters=4),
        VAE((4, 4, 1), 4, latent_dim=2, hidden_units=[8]),
    ]


@pytest.mark.parametrize(
    "n, temperature, message",
    [
        (0, 1.0, "num_samples must be a whole number >= 1, got 0"),
        (-3, 1.0, "num_samples must be a whole number >= 1, got -3"),
        (2.5, 1.0, "num_samples must be a whole number >= 1, got 2.5"),
        (2, float("nan"), "temperature must be a finite number >= 0, got nan"),
        (2, -1.0, "temperature must be a finite number >= 0, got -1.0"),
    ],
)
def test_sampling_arguments_are_checked_by_every_sampler(samplers, n, temperature, message):
    for model in samplers:
        with pytest.raises(ValueError) as error:
            model.sample(n, temperature=temperature)
        assert message in str(error.value), type(model).__name__
    assert samplers[0].sample(2, temperature=0.0).shape == (2, 4, 4, 1)


def test_an_empty_batch_has_an_empty_log_prob():
    for model in (
        flows.RealNVP((8, 8, 1), 4, num_scales=2, filters=4, num_blocks=1),
        flows.NICE((8, 8, 1), 4, num_couplings=2, hidden_units=[8]),
    ):
        assert model.log_prob(np.zeros((0, 8, 8, 1), np.float32)).shape == (0,)
        model.compile(**model.compile_defaults())
        with pytest.raises(ValueError, match="fit got no training data: the dataset is empty"):
            model.fit(np.zeros((0, 8, 8, 1), np.float32), verbose=0)


def test_flat_batch_norm_refuses_a_batch_of_one_in_training():
    norm = bijectors.BatchNorm([6])
    with pytest.raises(ValueError, match="at least 2 values per unit"):
        norm.inverse(np.ones((1, 6), np.float32), training=True)
    np.testing.assert_allclose(
        norm.inverse(np.ones((1, 6), np.float32), training=False).shape, (1, 6)
    )


def _npz(tmp_path, images):
    path = str(tmp_path / "images.npz")
    np.savez(path, x_train=images, y_train=np.zeros(len(images), np.int64))
    return path


@pytest.mark.parametrize(
    "images, levels, message",
    [
        (np.random.default_rng(0).random((4, 3, 3)), None, "non-integer float64 pixels in [0"),
        (np.array([[[1, 100000]]] * 2), None, "pixels in [1, 100000]; say how many levels they have with num_levels (--num-levels)"),
        (np.array([[[1.0, np.nan]]] * 2), None, "NaN or infinite pixels"),
        (np.array([[[1, 300]]] * 2), 256, "pixels in [1, 300], outside the 256 levels 0 .. 255"),
        (np.array([[[1, 3]]] * 2, np.uint8), 1, "num_levels must be a whole number >= 2, got 1"),
    ],
)  # fmt: skip
def test_levels_are_inferred_only_where_safe(tmp_path, images, levels, message):
    with pytest.raises(ValueError) as error:
        data.load(_npz(tmp_path, images), "train", num_levels=levels)
    assert message in str(error.value)


def test_levels_given_or_implied_by_the_dtype(tmp_path):
    wide = np.array([[[0, 200], [17, 255]]] * 3, np.int64)
    assert data.load(_npz(tmp_path, wide), "train", num_levels=256)[1].num_levels == 256
    binary = np.array([[[True, False]]] * 3)
    assert data.load(_npz(tmp_path, binary), "train")[1].num_levels == 2
    with pytest.raises(ValueError, match="num_levels is for local files"):
        data.load("digits", "train", num_levels=256)


def _one_line_error(argv, capsys):
    status = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith("zoo: error: "), err
    return err


def test_an_unknown_dataset_is_one_line_with_suggestions(tmp_path, capsys):
    err = _one_line_error(
        ["train", "nice", "--dataset", "mnistt", "--out", str(tmp_path / "r")], capsys
    )
    assert "Unknown dataset 'mnistt'" in err and "Did you mean mnist" in err
    assert not (tmp_path / "r").exists()


def test_damaged_model_files_are_named_as_such(tmp_path, capsys):
    truncated, noise = tmp_path / "truncated.keras", tmp_path / "noise.keras"
    model = flows.NICE((4, 4, 1), 4, num_couplings=2, hidden_units=[8])
    model.save(str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:2000])
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    for path in (truncated, noise):
        err = _one_line_error(["evaluate", str(path)], capsys)
        assert "not a .keras file: not a zip archive (truncated or corrupt?)" in err, err
    err = _one_line_error(["evaluate", str(tmp_path / "missing.keras")], capsys)
    assert "No model file at" in err


def test_a_plain_keras_model_is_refused_as_not_a_zoo_model(tmp_path, capsys):
    import keras

    path = tmp_path / "plain.keras"
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    plain.save(str(path))
    for argv in (
        ["sample", str(path), "--out", str(tmp_path / "s.png")],
        ["evaluate", str(path)],
        ["export", str(path), "--base-dir", str(tmp_path / "serving")],
    ):
        err = _one_line_error(argv, capsys)
        assert f"{path} holds a keras Sequential, not a zoo model (written by `zoo train`)" in err
    assert not (tmp_path / "serving").exists() and not (tmp_path / "s.png").exists()


def test_a_corrupt_preset_card_is_named(tmp_path, capsys):
    import zoo

    folder = tmp_path / "broken_preset"
    folder.mkdir()
    flows.NICE((4, 4, 1), 4, num_couplings=2, hidden_units=[8]).save(str(folder / "model.keras"))
    (folder / "card.json").write_text('{"model": "nice", "dataset": ')
    err = _one_line_error(["evaluate", str(folder)], capsys)
    assert f"{folder / 'card.json'} is not a valid preset card (JSON): Expecting value" in err
    with pytest.raises(ValueError, match=r"card\.json is not a valid preset card"):
        zoo.from_preset(str(folder))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "any.keras", "-n", "0"], "num_samples must be a whole number >= 1, got 0"),
        (["sample", "any.keras", "--temperature", "nan"], "temperature must be a finite number >= 0"),
        (["export", "any.keras", "--base-dir", "x", "--version", "0"], "--version must be a whole number >= 1, got 0"),
        (["export", "any.keras", "--base-dir", "x", "--version", "-4"], "--version must be a whole number >= 1, got -4"),
        (["train", "realnvp", "--set", "filters=abc"], "realnvp's filters is a whole number (default 32); 'abc' is not one."),
        (["train", "realnvp", "--set", "batch_norm=flase"], "realnvp's batch_norm is true or false (default True); 'flase' is not one."),
        (["train", "realnvp", "--image-size", "0", "0"], "image_size must be two whole numbers >= 1 (--image-size H W), got (0, 0)."),
        (["train", "nice", "--checkpoint-every", "0"], "checkpoint_every must be a whole number >= 1, got 0"),
        (["train", "realnvp_flat", "--batch-size", "1"], "realnvp_flat needs batches of at least 2 examples"),
        (["train", "nice", "--set", "num_couplings"], "--set expects key=value, got 'num_couplings'"),
    ],
)  # fmt: skip
def test_command_line_nonsense_is_one_line_before_writing(
    argv, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    err = _one_line_error([*argv, *(["--out", "run"] if argv[0] == "train" else [])], capsys)
    assert message in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "x").exists()


def test_help_explains_every_option_with_its_default(capsys):
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in subparsers.items():
        for action in sub._actions:
            assert action.help, (name, action.dest)
    with pytest.raises(SystemExit):
        cli.run(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "examples per batch (default: 64)" in text and "(default: 30)" in text
