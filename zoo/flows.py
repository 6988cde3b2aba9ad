"""NICE, RealNVP and Glow image flows as Keras models.

Both take dequantized images ``y = (x + u) / K`` in ``[0, 1)`` (``zoo.data.load`` makes them) and
report, besides the loss (negative log-likelihood in nats per image), ``bits_per_dim`` of the
*discrete* data: ``-(log p(y) - D log K) / (D log 2)``, with ``K`` the data's own number of levels
(``num_levels``). Logit preprocessing is a bijector inside the flow, so its log-det is part of
``log p(y)`` and the figure is comparable with the papers'.
"""

import math
import os

import keras
import tensorflow as tf
import tensorflow_probability as tfp

import tfflows
from tfflows import bijectors, checks, masks, nets
from tfflows.flow import weighted_mean
from zoo import plots, registry
from zoo.base import ZooModel, whole_number, whole_numbers

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
            message = f"{type(self).__name__} expects images with values in [0, 1]"
            x = checks.in_range(x, 0, 1, message)
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
        return self.log_prob((levels + noise) / self.num_levels, training) - log_q

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
        whole_number("samples", samples)
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

    def update_metrics(self, log_prob, sample_weight=None):
        super().update_metrics(log_prob, sample_weight)
        bits = tfflows.bits_per_dim(log_prob, self.num_dims, self.num_levels)
        mean, total = weighted_mean(bits, sample_weight)
        self.bits_tracker.update_state(mean, sample_weight=total)

    def sample(self, num_samples, temperature=1.0, seed=None):
        """Images in ``[0, 1]``: samples of the dequantized density, clipped to the pixel range.
        (``sample_and_log_prob`` gives the same draws unclipped, with their log-density.)"""
        return tf.clip_by_value(super().sample(num_samples, temperature, seed), 0.0, 1.0)

    def export_metadata(self):
        """What a user of the SavedModel needs beyond its signatures (e.g. Transflow)."""
        return {
            "base_distribution": self.base_distribution,
            "image_shape": list(self.image_shape),
            "latent_shape": list(self.latent_shape),
            "num_levels": self.num_levels,
        }

    def serving_endpoints(self):
        """Signatures for `zoo.export`: ``log_prob`` (also ``serving_default``), ``sample``,
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
        samples = self.sample(64, temperature=temperature, seed=[seed, 0])
        title = f"{self.name} samples, T = {temperature}"
        plots.sample_grid(samples, os.path.join(out, "samples.png"), title=title)
        return ["samples.png"]

    def headline(self, results):
        return {
            "held_out_loss_nats": round(float(results["loss"]), 4),
            "held_out_log_likelihood_nats": round(-float(results["loss"]), 4),
            "held_out_bits_per_dim": round(float(results["bits_per_dim"]), 4),
        }

    def _image_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "num_levels": self.num_levels,
            "validate_args": self.validate_args,
            "dequantization": self.dequantization,
        }


def _flatten(image_shape):
    """Inverse (data -> latent): ``[H, W, C] -> [H * W * C]``."""
    return tfb.Reshape(event_shape_out=list(image_shape), event_shape_in=[math.prod(image_shape)])


@keras.saving.register_keras_serializable(package="zoo")
class NICE(ImageFlow):
    """NICE (Dinh, Krueger and Bengio, 2014) on flattened images.

    Defaults are the paper's MNIST model: 4 additive couplings alternating odd and even units,
    each with a ReLU MLP of 5 hidden layers of 1000 units, a diagonal scaling on top, and a
    standard logistic prior. Images enter as they are (dequantized, in ``[0, 1)``), as in the
    paper.

    Args:
      image_shape: ``(H, W, C)``.
      num_levels: levels of the discrete data (256 for MNIST).
      num_couplings: number of additive coupling layers.
      hidden_units: widths of each coupling's MLP.
      prior: ``"logistic"`` (the paper) or ``"normal"``.
      data_init: start the scaling at the data's scale (`tfflows.bijectors.Scaling`'s
        ``data_init``: the first training batch sets it so that the latents have unit
        variance); False is the paper's identity start, with which NICE spends its first epochs
        learning the scale. Configs saved without this option load with False.
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        return True  # 1.40x (bench/train_step.py)

    @classmethod
    def from_config(cls, config):
        return super().from_config({"data_init": False, **config})

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        num_couplings=4,
        hidden_units=(1000,) * 5,
        prior="logistic",
        data_init=True,
        **kwargs,
    ):
        dims = math.prod(image_shape)
        self.data_init = bool(data_init)
        self.num_couplings = whole_number("num_couplings", num_couplings)
        self.hidden_units = list(whole_numbers("hidden_units", hidden_units))
        layers = [_flatten(image_shape)]
        for i in range(self.num_couplings):
            mask = masks.alternating(dims, parity=i % 2)
            units = mask.transformed_shape[-1]
            net = nets.MLP(self.hidden_units, units, dtype=kwargs.get("dtype"))
            layers.append(bijectors.AdditiveCoupling(mask, net))
        layers.append(bijectors.Scaling([dims], data_init=self.data_init))
        super().__init__(layers, image_shape, num_levels, base_distribution=prior, **kwargs)

    def get_config(self):
        return {
            **self._image_config(),
            "num_couplings": self.num_couplings,
            "hidden_units": self.hidden_units,
            "prior": self.base_distribution,
            "data_init": self.data_init,
        }


ARCHITECTURES = ("multiscale", "flat")


@keras.saving.register_keras_serializable(package="zoo")
class RealNVP(ImageFlow):
    """RealNVP (Dinh, Sohl-Dickstein and Bengio, 2016) for images.

    Data go through ``Logit(alpha)`` first, then one of two architectures:

    * ``"multiscale"`` (the paper's image model): per scale, 3 affine couplings with alternating
      checkerboard masks, a squeeze, 3 couplings with alternating channel masks, then half the
      channels are factored out to the latent and the next scale works on the rest; the last
      scale has 4 checkerboard couplings. Conditioners are ResNets (``filters`` wide,
      ``num_blocks`` residual blocks); a per-channel `BatchNorm` follows each coupling. Needs
      ``H`` and ``W`` divisible by ``2 ** (num_scales - 1)``.
    * ``"flat"``: the image is flattened and ``num_couplings`` affine couplings on alternating
      odd/even units, with MLP conditioners (``hidden_units``) and a `BatchNorm` after each
      coupling but the last; the structure used for small (e.g. 16x16) digits.

    Args:
      image_shape: ``(H, W, C)``.
      num_levels: levels of the discrete data.
      architecture: ``"multiscale"`` or ``"flat"``.
      num_scales, filters, num_blocks: multi-scale architecture size.
      num_couplings, hidden_units: flat architecture size.
      alpha: the logit's margin (0.05 in the paper's CIFAR-10 model, 1e-6 for MNIST).
      batch_norm: put `BatchNorm` bijectors after the couplings.
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        # Multi-scale: 1.98x; flat (MLPs): 1.07x (bench/train_step.py).
        return options.get("architecture", "multiscale") == "multiscale"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        architecture="multiscale",
        num_scales=2,
        filters=32,
        num_blocks=2,
        num_couplings=8,
        hidden_units=(256, 256),
        alpha=0.05,
        batch_norm=True,
        **kwargs,
    ):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}.")
        self.architecture = architecture
        self.num_scales = whole_number("num_scales", num_scales)
        self.filters = whole_number("filters", filters)
        self.num_blocks = whole_number("num_blocks", num_blocks, minimum=0)
        self.num_couplings = whole_number("num_couplings", num_couplings)
        self.hidden_units = list(whole_numbers("hidden_units", hidden_units))
        if not isinstance(alpha, int | float) or not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must be a number in [0, 0.5), got {alpha!r}.")
        self.alpha = float(alpha)
        self.batch_norm = bool(batch_norm)
        # Flat batch norm normalizes each unit over the batch alone.
        flat_norm = architecture == "flat" and self.batch_norm and self.num_couplings > 1
        self.min_batch_size = 2 if flat_norm else 1
        self._net_dtype = kwargs.get("dtype")
        image_shape = tuple(int(n) for n in image_shape)
        layers = [bijectors.Logit(self.alpha, validate_args=kwargs.get("validate_args", True))]
        if architecture == "flat":
            layers += [_flatten(image_shape), *self._flat(math.prod(image_shape))]
        else:
            factor = 2 ** (self.num_scales - 1)
            h, w, _ = image_shape
            if self.num_scales < 1 or h % factor or w % factor:
                raise ValueError(
                    f"A {self.num_scales}-scale RealNVP needs height and width divisible by "
                    f"{factor}; got an image of {h}x{w}. Resize the data or use fewer scales."
                )
            layers += self._scale(image_shape, 0)
        super().__init__(layers, image_shape, num_levels, **kwargs)

    def _coupling(self, mask):
        if mask.event_ndims == 1:
            net = nets.MLP(self.hidden_units, 2 * mask.transformed_shape[-1], dtype=self._net_dtype)
        else:
            channels = 2 * mask.transformed_shape[-1]
            net = nets.ResNet(self.filters, self.num_blocks, channels, dtype=self._net_dtype)
        return bijectors.AffineCoupling(mask, net)

    def _flat(self, dims):
        layers = []
        for i in range(self.num_couplings):
            layers.append(self._coupling(masks.alternating(dims, parity=i % 2)))
            if self.batch_norm and i < self.num_couplings - 1:
                layers.append(bijectors.BatchNorm([dims]))
        return layers

    def _couplings(self, make_mask, shape, count):
        layers = []
        for i in range(count):
            layers.append(self._coupling(make_mask(shape, parity=i % 2)))
            if self.batch_norm:
                layers.append(bijectors.BatchNorm(shape))
        return layers

    def _scale(self, shape, level):
        """The bijectors of scale ``level`` on events ``shape``; they map ``shape`` to itself."""
        if level == self.num_scales - 1:
            return self._couplings(masks.checkerboard, shape, 4)
        h, w, c = shape
        squeezed = (h // 2, w // 2, 4 * c)
        kept = (h // 2, w // 2, 4 * c - 2 * c)
        return [
            *self._couplings(masks.checkerboard, shape, 3),
            bijectors.Squeeze(),
            *self._couplings(masks.channel, squeezed, 3),
            bijectors.FactorOut(self._scale(kept, level + 1), squeezed),
            bijectors.Unsqueeze(),
        ]

    def get_config(self):
        return {
            **self._image_config(),
            "architecture": self.architecture,
            "num_scales": self.num_scales,
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "num_couplings": self.num_couplings,
            "hidden_units": self.hidden_units,
            "alpha": self.alpha,
            "batch_norm": self.batch_norm,
        }


MIXINGS = ("conv1x1", "alternate")


@keras.saving.register_keras_serializable(package="zoo")
class Glow(ImageFlow):
    """Glow (Kingma and Dhariwal, 2018) for images: multi-scale, each step ActNorm, invertible
    1x1 convolution, affine coupling.

    Data go through ``Logit(alpha)`` first. Each of the ``num_scales`` scales squeezes (2x2
    space-to-depth), runs ``steps_per_scale`` steps on the squeezed ``[H/2, W/2, 4C]``, then
    (but the last) factors half of the channels out to the latent; the next scale works on the
    rest. A step is

    ```none
    ActNorm (per-channel affine, initialized from the first batch so that its outputs have
      mean 0 and variance 1)
    -> InvertibleConv1x1 (a learned channel mixing; LU-decomposed by default)
    -> AffineCoupling on a channel split, ResNet conditioner (``filters`` wide,
      ``num_blocks`` residual blocks, zero-initialized output)
    ```

    Needs ``H`` and ``W`` divisible by ``2 ** num_scales``. For ablations: ``actnorm=False``
    drops the ActNorms; ``mixing="alternate"`` replaces the 1x1 convolutions by RealNVP's
    alternating channel masks (no learned mixing).

    Args:
      image_shape: ``(H, W, C)``.
      num_levels: levels of the discrete data.
      num_scales: squeeze-steps-split levels (2 for 28x28: 28 -> 14 -> 7).
      steps_per_scale: flow steps per scale (``K``).
      filters, num_blocks: each coupling's ResNet.
      lu_decomposed: parametrize the 1x1 convolutions by their LU decomposition.
      actnorm: put an ActNorm at the start of each step.
      mixing: ``"conv1x1"`` or ``"alternate"``.
      alpha: the logit's margin.
    """

    @classmethod
    def prefers_bfloat16(cls, options):
        return True  # convolutional conditioners, as the multi-scale RealNVP's

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        num_scales=2,
        steps_per_scale=4,
        filters=32,
        num_blocks=1,
        lu_decomposed=True,
        actnorm=True,
        mixing="conv1x1",
        alpha=0.05,
        **kwargs,
    ):
        if mixing not in MIXINGS:
            raise ValueError(f"mixing must be one of {MIXINGS}, got {mixing!r}.")
        self.num_scales = whole_number("num_scales", num_scales)
        self.steps_per_scale = whole_number("steps_per_scale", steps_per_scale)
        self.filters = whole_number("filters", filters)
        self.num_blocks = whole_number("num_blocks", num_blocks, minimum=0)
        self.lu_decomposed = bool(lu_decomposed)
        self.actnorm = bool(actnorm)
        self.mixing = mixing
        if not isinstance(alpha, int | float) or not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must be a number in [0, 0.5), got {alpha!r}.")
        self.alpha = float(alpha)
        self._net_dtype = kwargs.get("dtype")
        image_shape = tuple(int(n) for n in image_shape)
        factor = 2**self.num_scales
        h, w, _ = image_shape
        if h % factor or w % factor:
            raise ValueError(
                f"A {self.num_scales}-scale Glow needs height and width divisible by {factor}; "
                f"got an image of {h}x{w}. Resize the data or use fewer scales."
            )
        layers = [bijectors.Logit(self.alpha, validate_args=kwargs.get("validate_args", True))]
        layers += self._scale(image_shape, 0)
        super().__init__(layers, image_shape, num_levels, **kwargs)

    def _step(self, shape, index):
        layers = [bijectors.ActNorm(shape)] if self.actnorm else []
        parity = 0
        if self.mixing == "conv1x1":
            layers.append(bijectors.InvertibleConv1x1(shape, lu_decomposed=self.lu_decomposed))
        else:
            parity = index % 2
        mask = masks.channel(shape, parity=parity)
        channels = 2 * mask.transformed_shape[-1]
        net = nets.ResNet(self.filters, self.num_blocks, channels, dtype=self._net_dtype)
        layers.append(bijectors.AffineCoupling(mask, net))
        return layers

    def _scale(self, shape, level):
        """Scale ``level`` on events ``shape``: squeeze, steps, split; maps ``shape`` to itself."""
        h, w, c = shape
        squeezed = (h // 2, w // 2, 4 * c)
        steps = [b for i in range(self.steps_per_scale) for b in self._step(squeezed, i)]
        if level < self.num_scales - 1:
            kept = (h // 2, w // 2, 2 * c)
            steps.append(bijectors.FactorOut(self._scale(kept, level + 1), squeezed))
        return [bijectors.Squeeze(), *steps, bijectors.Unsqueeze()]

    def get_config(self):
        return {
            **self._image_config(),
            "num_scales": self.num_scales,
            "steps_per_scale": self.steps_per_scale,
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "lu_decomposed": self.lu_decomposed,
            "actnorm": self.actnorm,
            "mixing": self.mixing,
            "alpha": self.alpha,
        }


registry.register(
    "nice",
    NICE,
    task="density",
    description="NICE: additive couplings on alternating units, MLPs, scaling, logistic prior",
)
registry.register(
    "realnvp",
    RealNVP,
    task="density",
    description="multi-scale RealNVP: checkerboard / channel affine couplings, ResNets, squeeze",
    architecture="multiscale",
)
registry.register(
    "glow",
    Glow,
    task="density",
    description="Glow: multi-scale steps of actnorm, invertible 1x1 convolution, affine coupling",
)
registry.register(
    "realnvp_flat",
    RealNVP,
    task="density",
    description="flat RealNVP: affine couplings on alternating units with MLPs and batch norm",
    architecture="flat",
)
