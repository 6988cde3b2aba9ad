"""zoo: Keras models built on tfflows, their data pipelines, training run, export and command.

The layers, bottom up (each imports only those below it; tests/test_layering.py checks):

* `zoo.plots` (drawing) and `zoo.data` (input pipelines): no other zoo module;
* `zoo.models`: the models, one package per family, on THE model contract
  (`zoo.models.contract`); ``zoo.registry`` lists them (`create_model`, `list_models`);
* `zoo.serving` (SavedModel export, presets) and `zoo.training` (the one training run);
* `zoo.cli`: the ``zoo`` command, argument parsing only.

`from_preset(name)` loads a trained model (`list_presets()`).
"""

from zoo import _moved
from zoo.models.autoencoders import VAE, Autoencoder
from zoo.models.flows import MAF, NICE, Glow, ImageFlow, RealNVP
from zoo.models.gan import DCGAN, GAN, FeatureClassifier
from zoo.models.transfer import ConvClassifier, TransferClassifier
from zoo.models.transflow import Transflow
from zoo.registry import create_model, list_models
from zoo.serving.presets import from_preset, list_presets

_moved.install()

__all__ = [
    "DCGAN",
    "GAN",
    "MAF",
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
