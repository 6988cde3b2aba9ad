"""tfflows bijectors: each a `tfp.bijectors.Bijector` whose weights live in Keras layers."""

from tfflows.bijectors._base import BijectorWeights, FlowBijector
from tfflows.bijectors.additive_coupling import AdditiveCoupling
from tfflows.bijectors.affine_coupling import AffineCoupling, LogScaleBound
from tfflows.bijectors.batch_norm import BatchNorm
from tfflows.bijectors.factor_out import FactorOut
from tfflows.bijectors.logit import Logit
from tfflows.bijectors.scaling import Scaling
from tfflows.bijectors.squeeze import Squeeze, Unsqueeze

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "BatchNorm",
    "BijectorWeights",
    "FactorOut",
    "FlowBijector",
    "LogScaleBound",
    "Logit",
    "Scaling",
    "Squeeze",
    "Unsqueeze",
]
