"""Generative adversarial networks: `GAN` (any players; WGAN-GP with ``loss="wasserstein"``),
`DCGAN`, and their judge: a small
classifier (`judge`) in whose features the classifier-Frechet distance and mode coverage
(`metrics`) score the samples."""

from zoo.models.gan.dcgan import DCGAN
from zoo.models.gan.gan import GAN, critic_loss, discriminator_loss, generator_loss
from zoo.models.gan.judge import ChannelwiseClassifier, FeatureClassifier
from zoo.models.gan.metrics import FrechetDistance, ModeCoverage, sample_figures

__all__ = [
    "DCGAN",
    "GAN",
    "ChannelwiseClassifier",
    "FeatureClassifier",
    "FrechetDistance",
    "ModeCoverage",
    "critic_loss",
    "discriminator_loss",
    "generator_loss",
    "sample_figures",
]
