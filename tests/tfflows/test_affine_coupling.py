import numpy as np
import pytest
import tensorflow_probability as tfp

from tests.checks import fresh
from tests.tfflows.coupling_cases import make_coupling, sample
from tfflows import bijectors, masks

tfb = tfp.bijectors


@pytest.mark.parametrize("mask", [masks.half(6), masks.half(6, 1)], ids=repr)
def test_affine_coupling_equals_tfp_real_nvp(mask):
    coupling = make_coupling(bijectors.AffineCoupling, mask)
    if mask.parity == 0:
        real_nvp = tfb.RealNVP(
            num_masked=3, shift_and_log_scale_fn=lambda x_a, _: coupling.shift_and_log_scale(x_a)
        )
    else:
        # tfb.RealNVP keeps the first units; parity 1 keeps the last ones: reverse around it.
        def reversed_fn(x_a, _):
            return tuple(t[..., ::-1] for t in coupling.shift_and_log_scale(x_a[..., ::-1]))

        reverse = tfb.Permute(list(range(5, -1, -1)))
        real_nvp = tfb.Chain(
            [reverse, tfb.RealNVP(num_masked=3, shift_and_log_scale_fn=reversed_fn), reverse]
        )
    x = sample(mask)
    np.testing.assert_allclose(real_nvp.forward(x), coupling.forward(x), atol=1e-6)
    np.testing.assert_allclose(real_nvp.inverse(fresh(x)), coupling.inverse(fresh(x)), atol=1e-6)
    np.testing.assert_allclose(
        real_nvp.forward_log_det_jacobian(x, 1),
        coupling.forward_log_det_jacobian(fresh(x), 1),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        real_nvp.inverse_log_det_jacobian(x, 1),
        coupling.inverse_log_det_jacobian(fresh(x), 1),
        atol=1e-5,
    )


def test_log_scale_stays_bounded_by_the_learned_factor():
    mask = masks.half(6)
    coupling = make_coupling(bijectors.AffineCoupling, mask)
    huge = 1e4 * sample(masks.half(3))
    _, log_scale = coupling.shift_and_log_scale(huge)
    assert np.all(np.abs(log_scale) <= 1.0 + 1e-6)  # factor starts at 1
    assert np.all(np.isfinite(coupling.forward(1e4 * sample(mask))))
