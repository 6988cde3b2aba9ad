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
