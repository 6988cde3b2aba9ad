"""zoo: Keras models built on tfflows, their data pipelines, the `zoo` command and export.

Importing `zoo` registers every model (`zoo.list_models()`, `zoo.create_model(name, info)`);
`zoo.from_preset(name)` loads a trained one (`zoo.list_presets()`).
"""

from zoo.autoencoder import VAE, Autoencoder
from zoo.feature_classifier import FeatureClassifier
from zoo.flows import NICE, Glow, ImageFlow, RealNVP
from zoo.gan import DCGAN, GAN
from zoo.presets import from_preset, list_presets
from zoo.registry import create_model, list_models
from zoo.transfer import ConvClassifier, TransferClassifier
from zoo.transflow import Transflow

__all__ = [
    "DCGAN",
    "GAN",
    "NICE",
    "VAE",
    "Autoencoder",
    "ConvClassifier",
    "FeatureClassifier",
    "Glow",
    "ImageFlow",
    "RealNVP",
    "TransferClassifier",
    "Transflow",
    "create_model",
    "from_preset",
    "list_models",
    "list_presets",
]
