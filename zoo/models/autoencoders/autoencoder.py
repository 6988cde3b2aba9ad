"""`Autoencoder`: the plain and the denoising autoencoder.

It squeezes ``x`` through a bottleneck ``z = f(x)`` and rebuilds ``x_hat = g(z)``, minimizing a
reconstruction loss averaged over the examples (``D`` values per example):

```none
mse:  l(x) = (1/D) sum_d (x_d - x_hat_d)^2
bce:  l(x) = -(1/D) sum_d [x_d log x_hat_d + (1 - x_d) log(1 - x_hat_d)]
cce:  l(x) = -(1/P) sum_p sum_c x_pc log x_hat_pc     (softmax over the last axis, P = D / C)
```

With ``noise_std = s > 0`` it is a denoising autoencoder (Vincent et al., 2008): training feeds
``x + s eps``, ``eps ~ N(0, I)``, and scores the reconstruction against the clean ``x``;
evaluation and inference never add noise.
"""

import math

import keras
import tensorflow as tf

from zoo.models.autoencoders.hourglass import Hourglass, check_activation, per_example_mean
from zoo.models.noise import training_noise

RECONSTRUCTION_LOSSES = ("mse", "bce", "cce")
_MIN_MSE = 1e-10  # caps the PSNR of a perfect reconstruction at 100 dB


def psnr(mse):
    """Peak signal-to-noise ratio in dB for data range 1: ``10 log10(1 / mse)``, with ``mse``
    floored at 1e-10 (a perfect reconstruction scores 100 dB)."""
    mse = tf.maximum(tf.cast(mse, tf.float32), _MIN_MSE)
    return -10.0 * tf.math.log(mse) / math.log(10.0)


@keras.saving.register_keras_serializable(package="zoo")
class Autoencoder(Hourglass):
    """An hourglass autoencoder ``x -> z = encode(x) -> x_hat = decode(z)``, optionally denoising.

    Objective (per example, averaged over the batch): ``mse``, ``bce`` or ``cce`` as written in
    the module docstring, of ``x_hat = g(f(x + s eps))`` against the clean ``x``
    (``s = noise_std``; no noise outside ``train_step``). Metrics, means over examples whatever
    the batch size: ``loss``, ``mse`` (per-example mean squared error, averaged), and ``psnr``:
    per-example ``10 log10(1 / mse_i)`` dB (data range 1), averaged over examples (not the PSNR
    of the average MSE).

    Args:
      image_shape, architecture, latent_dim, hidden_units, filters, activation: the networks
        (`zoo.models.autoencoders.Hourglass`).
      latent_activation: the code's activation (None: linear; ``"sigmoid"`` for the 8-3-8 net).
      output_activation: activation of ``x_hat``, applied to the decoder's float32 output
        (``"sigmoid"`` for data in ``[0, 1]``; ``"softmax"`` is over the last axis; None: linear).
      reconstruction_loss: ``"mse"``, ``"bce"`` (needs outputs in (0, 1): ``"sigmoid"`` or
        ``"softmax"``; with sigmoid it is computed from the logits) or ``"cce"`` (categorical
        cross-entropy over the last axis, for one-hot data; needs ``"softmax"``).
      noise_std: standard deviation of the Gaussian noise added to training inputs.
      code_noise_std: standard deviation of Gaussian noise added to the code's pre-activation in
        training (Salakhutdinov and Hinton's semantic hashing): the decoder then only trusts
        saturated units, which drives sigmoid codes to binary ones.

    ``encoder`` and ``decoder`` are Keras sub-models giving float32 pre-activations: ``encode``
    applies ``latent_activation``, ``decode`` ``output_activation``.
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        # Convolutional: 1.66x; dense: 1.06x (bench/train_step.py).
        return options.get("architecture", "dense") == "conv"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        architecture="dense",
        latent_dim=32,
        hidden_units=(256,),
        filters=32,
        activation="relu",
        latent_activation=None,
        output_activation="sigmoid",
        reconstruction_loss="mse",
        noise_std=0.0,
        code_noise_std=0.0,
        **kwargs,
    ):
        check_activation(latent_activation, "latent_activation")
        check_activation(output_activation, "output_activation")
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}, "
                f"got {reconstruction_loss!r}."
            )
        if reconstruction_loss == "bce" and output_activation not in ("sigmoid", "softmax"):
            raise ValueError(
                "reconstruction_loss='bce' needs outputs in (0, 1): output_activation 'sigmoid' "
                f"or 'softmax', got {output_activation!r}."
            )
        if reconstruction_loss == "cce" and output_activation != "softmax":
            raise ValueError(
                "reconstruction_loss='cce' needs output_activation 'softmax', "
                f"got {output_activation!r}."
            )
        if not float(noise_std) >= 0.0:
            raise ValueError(f"noise_std must be non-negative, got {noise_std}.")
        if not float(code_noise_std) >= 0.0:
            raise ValueError(f"code_noise_std must be non-negative, got {code_noise_std}.")
        network = (image_shape, architecture, latent_dim, hidden_units, filters, activation)
        super().__init__(*network, metric_names=("loss", "mse", "psnr"), **kwargs)
        self.latent_activation = latent_activation
        self.output_activation = output_activation
        self.reconstruction_loss = reconstruction_loss
        self.noise_std = float(noise_std)
        self.code_noise_std = float(code_noise_std)
        self._latent = keras.activations.get(latent_activation or "linear")
        self._output = keras.activations.get(output_activation or "linear")

    def encode(self, x, training=False):
        """The code ``z = f(x)``, float32 ``[batch, latent_dim]``; in training, with the code
        noise."""
        h = self.encoded(x, training)
        if training and self.code_noise_std:
            h += self.code_noise_std * training_noise(self.noise, tf.shape(h))
        return self._latent(h)

    def decode(self, z, training=False):
        """``x_hat = g(z)``, float32 ``[batch, *image_shape]``."""
        return self._output(self._logits(z, training))

    def call(self, x, training=False):
        return self.decode(self.encode(x, training), training)

    def _logits(self, z, training=False):
        return self.decoded(z, training)

    def per_example_loss(self, x, logits):
        """The reconstruction loss of each example of ``x`` given the decoder's output."""
        x = tf.cast(x, tf.float32)
        if self.reconstruction_loss == "mse":
            return per_example_mean(tf.square(x - self._output(logits)))
        if self.reconstruction_loss == "cce":
            return -per_example_mean(tf.reduce_sum(x * tf.nn.log_softmax(logits), axis=-1))
        if self.output_activation == "sigmoid":
            return per_example_mean(tf.nn.softplus(logits) - x * logits)
        p = tf.clip_by_value(self._output(logits), 1e-7, 1.0 - 1e-7)
        return -per_example_mean(x * tf.math.log(p) + (1.0 - x) * tf.math.log(1.0 - p))

    # One step (`Hourglass`): the input noise, then the code noise inside `encode`.

    def _step_noise(self, x, training):
        if training and self.noise_std:
            return training_noise(self.noise, tf.shape(x))
        return None

    def _objective(self, x, noise, training=False):
        inputs = x if noise is None else x + self.noise_std * noise
        logits = self._logits(self.encode(inputs, training=training), training=training)
        loss = self.per_example_loss(x, logits)
        return loss, (loss, logits)

    def _update_metrics(self, x, terms, sample_weight):
        loss, logits = terms
        squared = per_example_mean(tf.square(x - self._output(logits)))
        self._log((loss, squared, psnr(squared)), sample_weight)

    # What the shared paths ask.

    def _encoding(self, images):
        return {"z": self.encode(images)}

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """``reconstructions.png``: the first batch's images (up to 32) above their
        reconstructions; nothing for data that are not images."""
        return [self._reconstructions(out, data)] if len(self.image_shape) == 3 else []

    def headline(self, results):
        return {f"held_out_{k}": round(float(results[k]), 4) for k in ("mse", "psnr")}

    def get_config(self):
        return {
            **self._hourglass_config(),
            "latent_activation": self.latent_activation,
            "output_activation": self.output_activation,
            "reconstruction_loss": self.reconstruction_loss,
            "noise_std": self.noise_std,
            "code_noise_std": self.code_noise_std,
        }
