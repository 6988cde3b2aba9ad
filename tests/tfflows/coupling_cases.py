"""Couplings with random weights on every kind of mask, for the coupling tests."""

import tensorflow as tf

from tests.checks import randomize
from tfflows import bijectors, masks, nets

VECTOR_MASKS = [masks.half(6), masks.half(6, 1), masks.alternating(6), masks.alternating(6, 1)]
IMAGE_MASKS = [
    masks.checkerboard((4, 4, 2)),
    masks.checkerboard((4, 4, 2), 1),
    masks.packed_checkerboard((4, 4, 2)),
    masks.packed_checkerboard((4, 4, 2), 1),
    masks.channel((4, 4, 2)),
    masks.channel((4, 4, 2), 1),
]


# Conditioner outputs per transformed unit.
OUTPUTS = {
    bijectors.AdditiveCoupling: 1,
    bijectors.AffineCoupling: 2,
    bijectors.RationalQuadraticCoupling: 3 * 8 - 1,
}


def make_coupling(cls, mask, seed=0):
    units = mask.transformed_shape[-1] * OUTPUTS[cls]
    if mask.event_ndims == 1:
        net = nets.MLP([16, 16], units, activation="tanh")
    else:
        net = nets.ResNet(8, 1, units, activation="tanh")
    coupling = cls(mask, net)
    # Smaller weights for the spline: at 0.3 its bins get so steep that float32's rounding of y,
    # magnified by dx/dy, exceeds the round trip's tolerance.
    randomize(
        coupling.keras_layers, seed, 0.1 if cls is bijectors.RationalQuadraticCoupling else 0.3
    )
    return coupling


def sample(mask, n=5, seed=1):
    return tf.random.stateless_normal((n, *mask.event_shape), seed=[seed, 0])
