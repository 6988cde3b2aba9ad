# What `import zoo` offers; zoo/__init__.py loads each name on first use (lazy_loader reads this).
from .models.autoencoders import VAE as VAE, Autoencoder as Autoencoder
from .models.flows import (
    MAF as MAF,
    NICE as NICE,
    Glow as Glow,
    ImageFlow as ImageFlow,
    RealNVP as RealNVP,
)
from .models.gan import DCGAN as DCGAN, GAN as GAN, FeatureClassifier as FeatureClassifier
from .models.transfer import (
    ConvClassifier as ConvClassifier,
    TransferClassifier as TransferClassifier,
)
from .models.transflow import Transflow as Transflow
from .registry import create_model as create_model, list_models as list_models
from .serving.presets import from_preset as from_preset, list_presets as list_presets
