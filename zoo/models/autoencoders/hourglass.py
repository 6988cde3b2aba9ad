"""`Hourglass`: what the `Autoencoder` and the `VAE` share.

An encoder ``f`` from ``x`` to a small code (or to a posterior's parameters) and a decoder ``g``
back to the data's shape (`zoo.models.nets.encoder_network` / `decoder_network`), trained by a
per-example objective ``l(x)`` averaged over the batch:

```none
loss = sum_i w_i l(x_i) / sum_i w_i        (w: Keras' sample weights, 1 by default)
```

with `tfflows.minimize`'s guarded step. A subclass says what its networks output, how one step
draws its noise (`_step_noise`), what its objective is (`_objective`) and what it logs
(`_update_metrics`); the step skeleton, the image endpoints, the reconstruction picture, the
features for transfer and the common config live here. Both take images scaled to ``[0, 1]``
(``DataSpec(scaling="unit")``), or vectors: the dense architecture takes any ``image_shape``.
"""

import math
import os

import keras
import tensorflow as tf

from tfflows import minimize, record_step, skipped_steps_metric, weighted_mean
from zoo import plots
from zoo.models import nets
from zoo.models.checks import whole_number, whole_numbers
from zoo.models.contract import DataSpec, ZooModel

ARCHITECTURES = ("dense", "conv")


def check_activation(name, what):
    """``name`` if it names a Keras activation (or is None); a ValueError naming ``what``."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValueError(f"{what} must be the name of a Keras activation, got {name!r}.")
    try:
        keras.activations.get(name)
    except ValueError:
        raise ValueError(f"{what} {name!r} is not a Keras activation.") from None
    return name


def per_example_mean(values):
    """Mean over every axis but the first."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def per_example_sum(values):
    """Sum over every axis but the first."""
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


class Hourglass(ZooModel, keras.Model):
    """An encoder and a decoder over examples of ``image_shape`` (see the module docstring).

    Args:
      image_shape: shape of one example: ``(H, W, C)`` images, or any shape (e.g. ``(8,)``)
        with ``architecture="dense"``.
      architecture: ``"dense"`` (flatten -> ``hidden_units`` -> code, mirrored) or ``"conv"``
        (stride-2 3x3 convolutions down to a small map, as many as
        `zoo.models.nets.upsampling_stages` allows, ``hidden_units``, dense to the code;
        mirrored with transposed convolutions).
      latent_dim: size of the code ``z``.
      hidden_units: widths of the dense hidden layers (encoder order; the decoder mirrors them).
      filters: width of the first convolution (doubling per stage), for ``"conv"``.
      activation: hidden activation.
      encoder_outputs: the encoder's outputs per code unit (2 for a mean and a log-variance).
      values_per_pixel: the decoder's outputs per value of the data (2 for a logistic's mean
        and log-scale).
    """

    data_spec = DataSpec(scaling="unit")

    def __init__(
        self,
        image_shape,
        architecture,
        latent_dim,
        hidden_units,
        filters,
        activation,
        encoder_outputs=1,
        values_per_pixel=1,
        metric_names=("loss",),
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape = tuple(int(n) for n in image_shape)
        if not image_shape or min(image_shape) < 1:
            raise ValueError(f"image_shape must be positive sizes, got {list(image_shape)}.")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}.")
        if architecture == "conv" and len(image_shape) != 3:
            raise ValueError(
                f"architecture='conv' needs image_shape (H, W, C), got {list(image_shape)}."
            )
        self._image_shape = image_shape
        self.architecture = architecture
        self.latent_dim = whole_number("latent_dim", latent_dim)
        self.hidden_units = whole_numbers("hidden_units", hidden_units)
        self.filters = whole_number("filters", filters)
        self.activation = check_activation(activation, "activation")
        net = {
            "architecture": architecture,
            "hidden_units": self.hidden_units,
            "filters": self.filters,
            "activation": self.activation,
            "dtype": kwargs.get("dtype"),
        }
        self.encoder = nets.encoder_network(image_shape, encoder_outputs * self.latent_dim, **net)
        self.decoder = nets.decoder_network(image_shape, self.latent_dim, values_per_pixel, **net)
        self.trackers = [keras.metrics.Mean(name=n) for n in metric_names]
        self.skipped_steps = skipped_steps_metric()
        self.noise = keras.random.SeedGenerator(name="noise")
        self.built = True

    @property
    def image_shape(self):
        return self._image_shape

    @property
    def num_dims(self):
        return math.prod(self._image_shape)

    @property
    def metrics(self):
        return [*self.trackers, self.skipped_steps]

    def encoded(self, x, training=False):
        """The encoder's float32 output for images ``x`` (checked: `ZooModel.images`)."""
        return tf.cast(self.encoder(self.images(x), training=training), tf.float32)

    def decoded(self, z, training=False):
        """The decoder's float32 output for codes ``z``."""
        return tf.cast(self.decoder(z, training=training), tf.float32)

    def reconstruct(self, x):
        """``decode(encode(x))``, without noise: images in ``[0, 1]``."""
        return self.decode(self.encode(x))

    def call(self, x, training=False):
        return self.reconstruct(x)

    def bits(self, nats):
        """Nats per example as bits per value: ``nats / (D log 2)``."""
        return nats / (self.num_dims * math.log(2.0))

    # One step.

    def _step_noise(self, x, training):
        """The noise one train (``training``) or test step draws, from the model's seed
        generator, or None."""
        return None

    def _objective(self, x, noise, training=False):
        """``(per-example loss, aux)``: the objective of each example, and what
        `_update_metrics` needs."""
        raise NotImplementedError

    def _update_metrics(self, x, aux, sample_weight):
        raise NotImplementedError

    def _log(self, figures, sample_weight):
        """Each tracker takes the per-example mean of its figure (in ``figures``' order)."""
        for tracker, values in zip(self.trackers, figures, strict=True):
            mean, total = weighted_mean(values, sample_weight)
            tracker.update_state(mean, sample_weight=total)

    def train_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        noise = self._step_noise(x, training=True)

        def loss_fn():
            per_example, aux = self._objective(x, noise, training=True)
            return weighted_mean(per_example, sample_weight)[0], aux

        _, aux, applied = minimize(
            self.optimizer, self.trainable_weights, loss_fn, state=self.non_trainable_weights
        )
        record_step(
            applied, self.skipped_steps, lambda: self._update_metrics(x, aux, sample_weight)
        )
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        _, aux = self._objective(x, self._step_noise(x, training=False))
        self._update_metrics(x, aux, sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.reconstruct(x)

    # What the shared paths ask.

    def _specs(self):
        return (
            tf.TensorSpec([None, *self.image_shape], tf.float32, name="images"),
            tf.TensorSpec([None, self.latent_dim], tf.float32, name="z"),
        )

    def serving_endpoints(self):
        """``reconstruct`` (also ``serving_default``): ``images`` -> ``images``; ``encode``:
        ``images`` -> the code (see `_encoding`); ``decode``: ``z`` -> ``images``; and the
        subclass's `_more_endpoints`. ``images`` are ``[batch, *image_shape]`` float32 in
        ``[0, 1]``, ``z`` ``[batch, latent_dim]``."""
        images_spec, z_spec = self._specs()

        def reconstruct(images):
            return {"images": self.reconstruct(images)}

        return {
            "reconstruct": (reconstruct, [images_spec]),
            "encode": (self._encoding, [images_spec]),
            "decode": (self._decoding, [z_spec]),
            **self._more_endpoints(images_spec, z_spec),
        }

    def _encoding(self, images):
        """The ``encode`` endpoint's outputs."""
        raise NotImplementedError

    def _decoding(self, z):
        """The ``decode`` endpoint's outputs."""
        return {"images": self.decode(z)}

    def _more_endpoints(self, images_spec, z_spec):
        return {}

    def feature_extractor(self):
        """The encoder: images in ``[0, 1]`` -> its outputs (codes, or the posterior's means
        and log-variances)."""
        return self.encoder, "unit"

    def _reconstructions(self, out, data):
        """``reconstructions.png``: the first batch's images (up to 32) above their
        reconstructions."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(next(iter(data)))
        x = tf.cast(x, tf.float32)[:32]
        title = f"{self.name}: originals above reconstructions"
        path = os.path.join(out, "reconstructions.png")
        plots.reconstruction_grid(x, self.reconstruct(x), path, title)
        return "reconstructions.png"

    def _hourglass_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "architecture": self.architecture,
            "latent_dim": self.latent_dim,
            "hidden_units": list(self.hidden_units),
            "filters": self.filters,
            "activation": self.activation,
        }
