"""Autoencoders: the plain / denoising `Autoencoder`, the variational `VAE` and what they share
(`hourglass`), the VAE's likelihoods, and the 8-3-8 encoder problem."""

from zoo.models.autoencoders.autoencoder import RECONSTRUCTION_LOSSES, Autoencoder, psnr
from zoo.models.autoencoders.eight_three_eight import (
    eight_three_eight,
    eight_three_eight_solved,
    one_hot_data,
    train_eight_three_eight,
)
from zoo.models.autoencoders.hourglass import ARCHITECTURES, Hourglass
from zoo.models.autoencoders.likelihoods import (
    MIN_LOG_SCALE,
    bernoulli_log_prob,
    discretized_logistic_log_prob,
    gaussian_kl,
)
from zoo.models.autoencoders.vae import LIKELIHOODS, VAE

__all__ = [
    "ARCHITECTURES",
    "LIKELIHOODS",
    "MIN_LOG_SCALE",
    "RECONSTRUCTION_LOSSES",
    "VAE",
    "Autoencoder",
    "Hourglass",
    "bernoulli_log_prob",
    "discretized_logistic_log_prob",
    "eight_three_eight",
    "eight_three_eight_solved",
    "gaussian_kl",
    "one_hot_data",
    "psnr",
    "train_eight_three_eight",
]
