import numpy as np
import pytest

from zoo import plots


def test_loss_curve_draws_whatever_curves_the_history_has(tmp_path):
    history = {
        "d_loss": [1.3, 1.2],
        "g_loss": [0.7, 0.8],
        "val_d_loss": [1.35, 1.25],
        "val_frechet_distance": [40.0, 30.0],
    }
    plots.loss_curve(history, str(tmp_path / "gan.png"))
    with open(tmp_path / "gan.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"
    with pytest.raises(ValueError, match="at least one non-empty curve"):
        plots.loss_curve({}, str(tmp_path / "empty.png"))


def test_sample_grid_writes_a_png(tmp_path):
    plots.sample_grid(np.random.default_rng(0).uniform(size=(5, 4, 4, 3)), str(tmp_path / "g.png"))
    with open(tmp_path / "g.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"


def test_confusion_matrix_counts_true_against_predicted(tmp_path):
    rng = np.random.default_rng(0)
    true, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    counts = plots.confusion_matrix(true, predicted, str(tmp_path / "c.png"), list("abcd"))
    for r in range(4):
        for c in range(4):
            assert counts[r, c] == np.sum((true == r) & (predicted == c))
    with open(tmp_path / "c.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"
    with pytest.raises(ValueError, match="non-empty"):
        plots.confusion_matrix([], [], str(tmp_path / "e.png"), list("ab"))


def test_loss_curve_marks_the_phases(tmp_path):
    history = {"loss": [3.0, 2.0, 1.5, 1.0], "val_loss": [3.1, 2.2, 1.8, 1.4]}
    plots.loss_curve(history, str(tmp_path / "p.png"), phases=[("frozen", 1), ("fine_tuned", 3)])
    with open(tmp_path / "p.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"
