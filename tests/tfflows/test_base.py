import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_config_round_trip, fresh, randomize
from tfflows import bijectors, masks, nets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_default_names_are_unique_and_restart_with_clear_session():
    """In a fresh process, since clearing the Keras session here would reset other tests'."""
    script = (
        "import json, keras; from tfflows import bijectors; "
        "names = [bijectors.Scaling([2]).name, bijectors.Scaling([2]).name, "
        "bijectors.Logit(0.05).name]; keras.backend.clear_session(); "
        "names.append(bijectors.Scaling([2]).name); print(json.dumps(names))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout
    first, second, logit, after_clear = json.loads(out.strip().splitlines()[-1])
    assert first != second and first.startswith("scaling") and logit.startswith("logit")
    assert after_clear == first


def _every_bijector():
    """One of each tfflows bijector, weights randomized, with an input in its domain."""
    image = (4, 4, 2)
    cb = masks.checkerboard(image)
    kept = [
        bijectors.AffineCoupling(masks.checkerboard((4, 4, 1)), nets.ResNet(4, 1, 2)),
        bijectors.BatchNorm((4, 4, 1)),
    ]
    cases = {
        "additive": (bijectors.AdditiveCoupling(masks.alternating(6), nets.MLP([8], 3)), (6,)),
        "affine": (bijectors.AffineCoupling(cb, nets.ResNet(4, 1, 4)), image),
        "batch_norm": (bijectors.BatchNorm([6], momentum=0.5, epsilon=1e-3), (6,)),
        "scaling": (bijectors.Scaling(image), image),
        "logit": (bijectors.Logit(0.1), image),
        "squeeze": (bijectors.Squeeze(), image),
        "unsqueeze": (bijectors.Unsqueeze(), (2, 2, 8)),
        "factor_out": (bijectors.FactorOut(kept, image), image),
        "act_norm": (bijectors.ActNorm(image), image),
        "conv1x1": (bijectors.InvertibleConv1x1(image, seed=1), image),
        "conv1x1_lu": (bijectors.InvertibleConv1x1([5], lu_decomposed=True, seed=2), (5,)),
        "scaling_data_init": (bijectors.Scaling(image, data_init=True), image),
    }
    for name, (bijector, shape) in cases.items():
        randomize(bijector.keras_layers, seed=len(name))
        x = tf.random.stateless_uniform((3, *shape), seed=[0, len(name)], minval=0.05, maxval=0.95)
        yield pytest.param(bijector, x, id=name)


def _num_weights(bijector):
    return sum(int(np.prod(w.shape)) for layer in bijector.keras_layers for w in layer.weights)


@pytest.mark.parametrize("bijector, x", list(_every_bijector()))
def test_every_bijector_rebuilds_from_its_config(bijector, x):
    """The config holds what a user wrote; with the weights copied by position (as a `.keras`
    file restores them) the clone computes the same function."""
    clone = assert_config_round_trip(bijector, _num_weights)
    assert clone.name == bijector.name
    assert set(bijector.get_config()) <= {*inspect.signature(type(bijector)).parameters}
    for mine, theirs in zip(clone.keras_layers, bijector.keras_layers, strict=True):
        mine.set_weights(theirs.get_weights())
    kwargs = {"training": False} if getattr(bijector, "takes_training", False) else {}
    event_ndims = len(x.shape) - 1
    z, log_det = bijector.inverse_and_log_det(x, event_ndims, **kwargs)
    want = [z, log_det, bijector.forward(z)]
    got = [*clone.inverse_and_log_det(fresh(x), event_ndims, **kwargs), clone.forward(fresh(z))]
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_configs_of_older_files_with_keras_state_still_load():
    scaling = bijectors.Scaling([3])
    old = {**scaling.get_config(), "state": {"class_name": "BijectorWeights", "config": {}}}
    assert bijectors.Scaling.from_config(old).get_config() == scaling.get_config()


@pytest.mark.parametrize("bijector, x", list(_every_bijector()))
def test_one_pass_methods_equal_the_separate_calls(bijector, x):
    """``inverse_and_log_det`` at ``x`` and ``forward_and_log_det`` at its latent give what
    ``inverse`` / ``forward`` and their ``*_log_det_jacobian`` give."""
    kwargs = {"training": False} if getattr(bijector, "takes_training", False) else {}
    event_ndims = len(x.shape) - 1
    z, ildj = bijector.inverse_and_log_det(x, event_ndims, **kwargs)
    np.testing.assert_allclose(z, bijector.inverse(fresh(x), **kwargs), rtol=1e-5, atol=1e-5)
    separate = bijector.inverse_log_det_jacobian(fresh(x), event_ndims, **kwargs)
    np.testing.assert_allclose(ildj, np.broadcast_to(separate, ildj.shape), rtol=1e-5, atol=1e-5)
    latent_ndims = bijector.inverse_event_ndims(event_ndims)
    y, fldj = bijector.forward_and_log_det(fresh(z), latent_ndims, **kwargs)
    np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-4)
    separate = bijector.forward_log_det_jacobian(fresh(z), latent_ndims, **kwargs)
    np.testing.assert_allclose(fldj, np.broadcast_to(separate, fldj.shape), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fldj, -np.broadcast_to(ildj, fldj.shape), rtol=1e-4, atol=1e-4)


def test_one_pass_log_dets_sum_over_outer_event_dimensions():
    """A bijector on ``[6]`` events run on ``[2, 6]`` ones: per-example and constant log-dets
    are both summed over the outer dimension."""
    x = tf.random.stateless_normal((3, 2, 6), seed=[4, 4])
    for bijector in (
        bijectors.AffineCoupling(masks.alternating(6), nets.MLP([8], 6)),
        bijectors.BatchNorm([6]),
    ):
        randomize(bijector.keras_layers, seed=3)
        kwargs = {"training": False} if getattr(bijector, "takes_training", False) else {}
        for one_pass, separate in (
            (bijector.forward_and_log_det, bijector.forward_log_det_jacobian),
            (bijector.inverse_and_log_det, bijector.inverse_log_det_jacobian),
        ):
            log_det = one_pass(x, 2, **kwargs)[1]
            assert log_det.shape == (3,)
            per_row = separate(fresh(x), 1, **kwargs)
            want = np.sum(np.broadcast_to(per_row, (3, 2)), axis=1)
            np.testing.assert_allclose(log_det, want, rtol=1e-5, atol=1e-5)
