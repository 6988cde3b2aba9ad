"""The image flows: `ImageFlow` over `tfflows.Flow`, and one module per family (NICE, RealNVP,
Glow, MAF). A new flow is a module here: an `ImageFlow` subclass that builds its bijectors."""

from zoo.models.flows.glow import Glow
from zoo.models.flows.image_flow import ImageFlow
from zoo.models.flows.maf import MAF
from zoo.models.flows.nice import NICE
from zoo.models.flows.realnvp import RealNVP

__all__ = ["MAF", "NICE", "Glow", "ImageFlow", "RealNVP"]
