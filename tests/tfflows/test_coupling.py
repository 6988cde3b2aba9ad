"""What the couplings share (tfflows/bijectors/_coupling.py): round trips, log-dets, the
conditioning part, identity start, batch ranks, one-pass inverse, TFP composition, input checks."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tests.checks import assert_log_dets_match_autodiff, assert_round_trip, fresh
from tests.tfflows.coupling_cases import (
    IMAGE_MASKS,
    OUTPUTS,
    VECTOR_MASKS,
    make_coupling,
    sample,
)
from tfflows import bijectors, masks, nets

tfb = tfp.bijectors
tfd = tfp.distributions

CASES = [(cls, m) for cls in OUTPUTS for m in VECTOR_MASKS + IMAGE_MASKS]
IDS = [f"{cls.__name__}-{m.kind}-{m.parity}" for cls, m in CASES]


@pytest.mark.parametrize("cls, mask", CASES, ids=IDS)
def test_round_trip(cls, mask):
    coupling = make_coupling(cls, mask)
    assert_round_trip(coupling, sample(mask))


@pytest.mark.parametrize("cls, mask", CASES, ids=IDS)
def test_log_dets_match_autodiff_jacobian(cls, mask):
    assert_log_dets_match_autodiff(make_coupling(cls, mask), sample(mask))


@pytest.mark.parametrize("cls, mask", CASES, ids=IDS)
def test_conditioning_part_passes_through_unchanged(cls, mask):
    x = sample(mask)
    y = make_coupling(cls, mask).forward(x)
    np.testing.assert_array_equal(mask.split(y)[0], mask.split(x)[0])


@pytest.mark.parametrize("cls", list(OUTPUTS))
def test_starts_as_the_identity_with_zero_initialized_nets(cls):
    mask = masks.checkerboard((4, 4, 2))
    coupling = cls(mask, nets.ResNet(8, 2, 2 * OUTPUTS[cls]))
    x = sample(mask)
    np.testing.assert_allclose(coupling.forward(x), x, atol=1e-6)
    np.testing.assert_allclose(coupling.forward_log_det_jacobian(x, 3), 0.0, atol=1e-6)


def test_batch_dims_of_any_rank():
    mask = masks.checkerboard((4, 4, 2))
    coupling = make_coupling(bijectors.AffineCoupling, mask)
    x = tf.random.normal((2, 3, 4, 4, 2))
    y = coupling.forward(x)
    np.testing.assert_allclose(
        tf.reshape(y, (6, 4, 4, 2)), coupling.forward(tf.reshape(x, (6, 4, 4, 2))), atol=1e-6
    )
    assert coupling.forward_log_det_jacobian(x, 3).shape == (2, 3)


def test_inverse_and_log_det_agrees_with_separate_calls():
    mask = masks.channel((4, 4, 2))
    coupling = make_coupling(bijectors.AffineCoupling, mask)
    y = sample(mask)
    x, ildj = coupling.inverse_and_log_det(y, event_ndims=3)
    np.testing.assert_allclose(x, coupling.inverse(fresh(y)), atol=1e-6)
    np.testing.assert_allclose(ildj, coupling.inverse_log_det_jacobian(fresh(y), 3), atol=1e-6)


def test_composes_with_chain_invert_and_transformed_distribution():
    first = make_coupling(bijectors.AffineCoupling, masks.alternating(6), seed=1)
    second = make_coupling(bijectors.AdditiveCoupling, masks.alternating(6, 1), seed=2)
    chain = tfb.Chain([first, tfb.Invert(second)])
    base = tfd.MultivariateNormalDiag(tf.zeros(6))
    dist = tfd.TransformedDistribution(base, chain)
    x = sample(masks.half(6))
    z = second.forward(first.inverse(x))
    expected = base.log_prob(z) + first.inverse_log_det_jacobian(fresh(x), 1)
    np.testing.assert_allclose(dist.log_prob(fresh(x)), expected, atol=1e-5)
    assert dist.sample(4, seed=1).shape == (4, 6)


def test_bad_input_errors_name_the_problem():
    coupling = make_coupling(bijectors.AffineCoupling, masks.half(6))
    with pytest.raises(ValueError, match=r"events of shape \[6\].*\[5, 8\]"):
        coupling.forward(tf.zeros((5, 8)))
    with pytest.raises(TypeError, match=r"floating-point.*int32"):
        coupling.forward(tf.zeros((5, 6), tf.int32))
    image = make_coupling(bijectors.AffineCoupling, masks.checkerboard((4, 4, 2)))
    with pytest.raises(ValueError, match=r"\[4, 4, 2\].*\[5, 4, 2\]"):
        image.inverse(tf.zeros((5, 4, 2)))
    checked = bijectors.AffineCoupling(masks.half(6), nets.MLP([4], 6), validate_args=True)
    bad = np.zeros((2, 6), np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        checked.inverse(bad)


def test_conditioner_with_wrong_output_size_is_refused():
    with pytest.raises(ValueError, match=r"conditioner maps .* \[3\] to shape \[3\].* \[6\]"):
        bijectors.AffineCoupling(masks.half(6), nets.MLP([4], 3))
