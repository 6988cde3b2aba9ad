"""tfflows bijectors: each a `tfp.bijectors.Bijector` whose weights live in Keras layers."""

from tfflows.bijectors._base import BijectorWeights, FlowBijector
from tfflows.bijectors.additive_coupling import AdditiveCoupling
from tfflows.bijectors.affine_coupling import AffineCoupling, LogScaleBound
from tfflows.bijectors.batch_norm import BatchNorm
from tfflows.bijectors.logit import Logit
from tfflows.bijectors.scaling import Scaling
from tfflows.bijectors.squeeze import Squeeze

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "BatchNorm",
    "BijectorWeights",
    "FlowBijector",
    "LogScaleBound",
    "Logit",
    "Scaling",
    "Squeeze",
]
