"""zoo: Keras models built on tfflows, their data pipelines, the `zoo` command and export."""

from zoo.flows import NICE, ImageFlow, RealNVP
from zoo.registry import create_model, list_models

__all__ = ["NICE", "ImageFlow", "RealNVP", "create_model", "list_models"]
