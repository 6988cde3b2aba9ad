"""`ImageFlow`: the zoo's flows over images (NICE, RealNVP, Glow), on top of `tfflows.Flow`.

They take dequantized images ``y = (x + u) / K`` in ``[0, 1)`` (``zoo.data.load`` makes them)
and report, besides the loss (negative log-likelihood in nats per image), ``bits_per_dim`` of the
*discrete* data: ``-(log p(y) - D log K) / (D log 2)``, with ``K`` the data's own number of levels
(``num_levels``). Logit preprocessing is a bijector inside the flow, so its log-det is part of
``log p(y)`` and the figure is comparable with the papers'.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

import tfflows
from zoo import plots
from zoo.models import checks
from zoo.models.contract import ZooModel

tfb = tfp.bijectors

DEQUANTIZATIONS = ("uniform", "variational")


class ImageFlow(ZooModel, tfflows.Flow):
    """A `tfflows.Flow` over images in ``[0, 1]`` that also tracks bits/dim.

    With ``dequantization="variational"`` a `tfflows.VariationalDequantizer` ``q(u | x)``,
    trained with the flow, replaces the data's uniform noise: the model recovers each image's
    levels ``x = floor(K y)`` from its (uniformly dequantized or centred) input ``y``, draws
    ``u ~ q(u | x)``, and `fit` maximizes, `evaluate` and `bits_per_dim` report, the bound
    ``log p((x + u) / K) - log q(u | x)`` (one draw per image). ``log_prob`` stays the flow's
    density of the input it is given (so do the exported signatures).

    Args:
      bijectors: the flow's bijectors, data side first.
      image_shape: ``(H, W, C)`` of the images.
      num_levels: number of discrete levels per value of the original data (256 for 8-bit).
      base_distribution: ``"normal"`` or ``"logistic"``.
      dequantization: ``"uniform"`` or ``"variational"``.
    """

    def __init__(
        self,
        bijectors,
        image_shape,
        num_levels,
        base_distribution="normal",
        dequantization="uniform",
        **kwargs,
    ):
        kwargs.setdefault("validate_args", True)
        super().__init__(bijectors, image_shape, base_distribution=base_distribution, **kwargs)
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}.")
        if dequantization not in DEQUANTIZATIONS:
            raise ValueError(
                f"dequantization must be one of {DEQUANTIZATIONS}, got {dequantization!r}."
            )
        self.num_levels = int(num_levels)
        self.num_dims = math.prod(self.image_shape)
        self.dequantization = dequantization
        if dequantization == "variational":
            self.dequantizer = tfflows.VariationalDequantizer(
                self.image_shape, self.num_levels, dtype=kwargs.get("dtype")
            )
        self.bits_tracker = keras.metrics.Mean(name="bits_per_dim")

    @classmethod
    def from_data(cls, info, **options):
        return cls(image_shape=info.image_shape, num_levels=info.num_levels, **options)

    @property
    def image_shape(self):
        return self.event_shape

    @property
    def metrics(self):
        return [self.loss_tracker, self.bits_tracker, self.skipped_steps]

    def _validate(self, x):
        x = super()._validate(x)
        if self.validate_args:
            x = checks.unit_images(x, f"{type(self).__name__}'s input images")
        return x

    def bits_per_dim(self, x):
        """Bits/dim of each image's discrete original, from its dequantized value ``x``."""
        return tfflows.bits_per_dim(self.log_likelihood(x), self.num_dims, self.num_levels)

    def log_likelihood(self, x, training=False):
        """``log_prob``, or with variational dequantization the bound
        ``log p((x + u) / K) - log q(u | x)``, ``u ~ q(u | x)``, ``x = floor(K y)``."""
        if self.dequantization == "uniform":
            return super().log_likelihood(x, training)
        y = self._validate(x)
        if y.shape.rank and y.shape[0] == 0:
            return tf.zeros([0], tf.float32)
        levels = tf.clip_by_value(tf.floor(y * self.num_levels), 0.0, self.num_levels - 1.0)
        noise, log_q = self.dequantizer(levels)
        return self.log_prob((levels + noise) / self.num_levels, training=training) - log_q

    def importance_weighted_log_likelihood(self, x, samples=64, seed=None):
        """A tighter bound on each image's discrete log-likelihood than `log_likelihood`'s one
        draw: importance weighting over ``S = samples`` draws of the dequantization noise
        (Burda et al., 2016), in the units of ``log_prob`` (`tfflows.bits_per_dim` converts):

        ```none
        log P(x) + D log K >= E[log (1/S) sum_s p((x + u_s) / K) / q(u_s | x)],  u_s ~ q(u | x)
        ```

        ``q`` is the learned dequantizer, or ``U[0, 1)^D`` (``q = 1``) under uniform
        dequantization. ``S = 1`` is the training bound; the bound rises with ``S`` to
        ``log P(x) + D log K``. ``x``: dequantized (or centred) images, whose levels
        ``floor(K x)`` are scored; ``seed`` fixes uniform draws (a learned ``q`` draws from its
        own generator). Runs the flow on ``S`` times the batch.
        """
        checks.whole_number("samples", samples)
        y = self._validate(x)
        levels = tf.clip_by_value(tf.floor(y * self.num_levels), 0.0, self.num_levels - 1.0)
        repeated = tf.repeat(levels, samples, axis=0)  # image i's draws at i * S ... i * S + S - 1
        if self.dequantization == "variational":
            noise, log_q = self.dequantizer(repeated)
        else:
            shape, log_q = tf.shape(repeated), 0.0
            if seed is None:
                noise = tf.random.uniform(shape)
            else:
                noise = tf.random.stateless_uniform(shape, seed)
        log_w = self.log_prob((repeated + noise) / self.num_levels) - log_q
        log_w = tf.reshape(log_w, [-1, samples])
        return tf.reduce_logsumexp(log_w, axis=1) - math.log(samples)

    def statistics_layers(self):
        return [
            *super().statistics_layers(),
            *(b for b in self.all_bijectors if isinstance(b, tfflows.bijectors.BatchNorm)),
        ]

    def statistics_pass(self, batch):
        self.log_likelihood(keras.utils.unpack_x_y_sample_weight(batch)[0], training=True)

    def update_metrics(self, log_prob, sample_weight=None):
        super().update_metrics(log_prob, sample_weight)
        bits = tfflows.bits_per_dim(log_prob, self.num_dims, self.num_levels)
        mean, total = tfflows.weighted_mean(bits, sample_weight)
        self.bits_tracker.update_state(mean, sample_weight=total)

    def sample(self, num_samples, temperature=1.0, seed=None):
        """Images in ``[0, 1]``: samples of the dequantized density, clipped to the pixel range.
        (``sample_and_log_prob`` gives the same draws unclipped, with their log-density.)"""
        # The flow's own sampling, past the contract's default (which refuses).
        images = tfflows.Flow.sample(self, num_samples, temperature, seed)
        return tf.clip_by_value(images, 0.0, 1.0)

    def export_metadata(self):
        """What a user of the SavedModel needs beyond its signatures (e.g. Transflow)."""
        return {
            "base_distribution": self.base_distribution,
            "image_shape": list(self.image_shape),
            "latent_shape": list(self.latent_shape),
            "num_levels": self.num_levels,
        }

    def serving_endpoints(self):
        """Signatures for `zoo.serving.export`: ``log_prob`` (also ``serving_default``), ``sample``,
        ``encode``, ``decode``. Inputs ``images`` ``[batch, H, W, C]`` float32 in ``[0, 1]``
        (dequantized), ``z`` ``[batch, *latent_shape]``; to sample at a temperature ``T``, the
        caller draws ``z`` from the prior and multiplies it by ``T``. ``sample`` also returns
        each draw's ``log_prob`` (before clipping), ``decode`` the ``log_det``
        ``log|det dx/dz|``, from the one forward pass."""
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        latents = tf.TensorSpec([None, *self.latent_shape], tf.float32, name="z")

        def log_prob(images):
            log_prob = self.log_prob(images)
            bits = tfflows.bits_per_dim(log_prob, self.num_dims, self.num_levels)
            return {"log_prob": log_prob, "bits_per_dim": bits}

        def sample(z):
            images, log_prob = self.decode_and_log_prob(z)
            return {"images": tf.clip_by_value(images, 0.0, 1.0), "log_prob": log_prob}

        def encode(images):
            return {"z": self.encode(images)}

        def decode(z):
            images, log_det = self.decode_with_log_det(z)
            return {"images": images, "log_det": log_det}

        return {
            "log_prob": (log_prob, [images]),
            "sample": (sample, [latents]),
            "encode": (encode, [images]),
            "decode": (decode, [latents]),
        }

    def write_artifacts(self, out, data, seed=0, temperature=0.8):
        return [plots.model_samples(self, out, seed, temperature)]

    def headline(self, results):
        return {
            "held_out_bits_per_dim": round(float(results["bits_per_dim"]), 4),
            "held_out_log_likelihood_nats": round(-float(results["loss"]), 4),
            "held_out_loss_nats": round(float(results["loss"]), 4),
        }

    def _image_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "num_levels": self.num_levels,
            "validate_args": self.validate_args,
            "dequantization": self.dequantization,
        }


def flatten(image_shape):
    """Inverse (data -> latent): ``[H, W, C] -> [H * W * C]``."""
    return tfb.Reshape(event_shape_out=list(image_shape), event_shape_in=[math.prod(image_shape)])


def logit_alpha(alpha):
    """The logit's margin ``alpha``, checked: a number in ``[0, 0.5)``."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha < 0.5:
        raise ValueError(f"alpha must be a number in [0, 0.5), got {alpha!r}.")
    return float(alpha)
