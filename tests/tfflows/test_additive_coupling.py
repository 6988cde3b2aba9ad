import numpy as np
import tensorflow_probability as tfp

from tests.checks import fresh
from tests.tfflows.coupling_cases import make_coupling, sample
from tfflows import bijectors, masks

tfb = tfp.bijectors


def test_additive_coupling_equals_shift_only_tfp_real_nvp():
    mask = masks.half(6)
    coupling = make_coupling(bijectors.AdditiveCoupling, mask)
    nice = tfb.RealNVP(
        num_masked=3,
        is_constant_jacobian=True,
        shift_and_log_scale_fn=lambda x_a, _: (coupling.shift(x_a), None),
    )
    x = sample(mask)
    np.testing.assert_allclose(nice.forward(x), coupling.forward(x), atol=1e-6)
    np.testing.assert_allclose(nice.inverse(fresh(x)), coupling.inverse(fresh(x)), atol=1e-6)
    assert coupling.is_constant_jacobian
    np.testing.assert_allclose(coupling.forward_log_det_jacobian(x, 1), 0.0)
