"""tfflows bijectors: each a `tfp.bijectors.Bijector` whose weights live in Keras layers."""

from tfflows.bijectors._base import BijectorWeights, FlowBijector
from tfflows.bijectors.act_norm import ActNorm
from tfflows.bijectors.additive_coupling import AdditiveCoupling
from tfflows.bijectors.affine_coupling import AffineCoupling, LogScaleBound
from tfflows.bijectors.batch_norm import BatchNorm
from tfflows.bijectors.factor_out import FactorOut
from tfflows.bijectors.invertible_conv import InvertibleConv1x1
from tfflows.bijectors.logit import Logit
from tfflows.bijectors.masked_autoregressive import MaskedAutoregressive
from tfflows.bijectors.rational_quadratic_coupling import RationalQuadraticCoupling
from tfflows.bijectors.scaling import Scaling
from tfflows.bijectors.squeeze import Squeeze, Unsqueeze

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "BatchNorm",
    "BijectorWeights",
    "FactorOut",
    "FlowBijector",
    "InvertibleConv1x1",
    "LogScaleBound",
    "Logit",
    "MaskedAutoregressive",
    "RationalQuadraticCoupling",
    "Scaling",
    "Squeeze",
    "Unsqueeze",
]
