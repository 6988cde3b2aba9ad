import numpy as np
import pytest
import tensorflow as tf

from tests.checks import assert_config_round_trip, randomize
from tfflows import nets

CASES = {
    "mlp": (lambda: nets.MLP([16, 8], 5, activation="tanh"), (7,)),
    "resnet": (lambda: nets.ResNet(8, 2, 6, kernel_size=3), (4, 4, 3)),
}


def _built(name):
    make, shape = CASES[name]
    net = make()
    net.build((None, *shape))
    x = tf.random.stateless_normal((5, *shape), seed=[3, 1])
    return net, x


@pytest.mark.parametrize("name", list(CASES))
def test_a_fresh_net_outputs_zeros_so_couplings_start_as_the_identity(name):
    net, x = _built(name)
    out = net(x)
    assert out.shape == (*x.shape[:-1], net.output_channels if name == "resnet" else 5)
    np.testing.assert_array_equal(out, 0.0)
    randomize([net], seed=1)
    assert np.max(np.abs(net(x))) > 1e-3  # only the last layer's zeros made them zero


@pytest.mark.parametrize("name", list(CASES))
def test_rebuilds_from_its_config_and_computes_the_same_function(name):
    net, x = _built(name)
    randomize([net], seed=2)

    def size(n):
        if not n.built:
            n.build((None, *x.shape[1:]))
        return n.count_params()

    clone = assert_config_round_trip(net, size)
    clone.set_weights(net.get_weights())
    np.testing.assert_allclose(clone(x), net(x), rtol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_each_example_is_computed_alone(name):
    """No batch statistics inside: a coupling's inverse is exact in training and inference."""
    net, x = _built(name)
    randomize([net], seed=3)
    whole = net(x, training=True)
    alone = tf.concat([net(x[i : i + 1], training=True) for i in range(len(x))], axis=0)
    np.testing.assert_allclose(whole, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_computes_in_the_policy_dtype_and_keeps_float32_weights(name, dtype_policy):
    dtype_policy("mixed_bfloat16")
    net, x = _built(name)
    assert net(x).dtype == tf.bfloat16
    assert {w.dtype for w in net.weights} == {"float32"}
