"""Autoencoders: the plain / denoising `Autoencoder` and the variational `VAE`.

`Autoencoder` squeezes ``x`` through a bottleneck ``z = f(x)`` and rebuilds ``x_hat = g(z)``,
minimizing a reconstruction loss averaged over the examples (``D`` values per example):

```none
mse:  l(x) = (1/D) sum_d (x_d - x_hat_d)^2
bce:  l(x) = -(1/D) sum_d [x_d log x_hat_d + (1 - x_d) log(1 - x_hat_d)]
cce:  l(x) = -(1/P) sum_p sum_c x_pc log x_hat_pc     (softmax over the last axis, P = D / C)
```

With ``noise_std = s > 0`` it is a denoising autoencoder (Vincent et al., 2008): training feeds
``x + s eps``, ``eps ~ N(0, I)``, and scores the reconstruction against the clean ``x``;
evaluation and inference never add noise.

`VAE` (Kingma and Welling, 2014) has an encoder that gives ``q(z | x) = N(mu, diag sigma^2)``, a
prior ``p(z) = N(0, I)`` and a decoder likelihood ``p(x | z)``, and maximizes the evidence lower
bound with one reparameterized sample ``z = mu + sigma * eps``:

```none
log p(x) >= ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z)),
KL = 0.5 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2).
```

Both take images scaled to ``[0, 1]`` (``DataSpec(scaling="unit")``), or vectors: the dense
architecture takes any ``image_shape``.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from tfflows import minimize
from tfflows.flow import sampling_arguments, weighted_mean
from tfflows.gradient_step import record_step, skipped_steps_metric
from zoo import plots, registry
from zoo.base import (
    DataSpec,
    ZooModel,
    standard_normal,
    training_noise,
    whole_number,
    whole_numbers,
)
from zoo.gan import upsampling_stages

ARCHITECTURES = ("dense", "conv")
RECONSTRUCTION_LOSSES = ("mse", "bce", "cce")
LIKELIHOODS = ("discretized_logistic", "bernoulli")
MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on the logistic's log-scale
_MIN_MSE = 1e-10  # caps the PSNR of a perfect reconstruction at 100 dB


# The networks, shared by both models.


def _check_architecture(image_shape, architecture, latent_dim, hidden_units, filters):
    """Validated ``(image_shape, latent_dim, hidden_units, filters)``."""
    image_shape = tuple(int(n) for n in image_shape)
    if not image_shape or min(image_shape) < 1:
        raise ValueError(f"image_shape must be positive sizes, got {list(image_shape)}.")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}.")
    if architecture == "conv" and len(image_shape) != 3:
        raise ValueError(
            f"architecture='conv' needs image_shape (H, W, C), got {list(image_shape)}."
        )
    return (
        image_shape,
        whole_number("latent_dim", latent_dim),
        whole_numbers("hidden_units", hidden_units),
        whole_number("filters", filters),
    )


def _check_activation(name, what):
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValueError(f"{what} must be the name of a Keras activation, got {name!r}.")
    try:
        keras.activations.get(name)
    except ValueError:
        raise ValueError(f"{what} {name!r} is not a Keras activation.") from None
    return name


def _conv_plan(image_shape, filters):
    """``(stages, widths, (h, w) of the smallest map)``: the stride-2 stages of
    `zoo.gan.upsampling_stages` (8x8 -> 2x2, 28x28 -> 7x7), widths doubling per stage; with no
    stage (an odd-sized image) one stride-1 convolution."""
    h, w, _ = image_shape
    n = upsampling_stages(h, w)
    widths = [filters * 2**i for i in range(n)] or [filters]
    return n, widths, (h >> n, w >> n)


def encoder_network(
    image_shape,
    num_outputs,
    architecture="dense",
    hidden_units=(256,),
    filters=32,
    activation="relu",
    dtype=None,
    name="encoder",
):
    """``[batch, *image_shape] -> [batch, num_outputs]`` float32.

    ``"dense"``: flatten -> ``Dense(hidden_units)`` -> ``Dense(num_outputs)``; ``"conv"``: 3x3
    stride-2 convolutions (see `_conv_plan`) -> flatten -> ``Dense(hidden_units)`` ->
    ``Dense(num_outputs)``, linear.
    """
    layers = [keras.Input(tuple(image_shape))]
    if architecture == "conv":
        n, widths, _ = _conv_plan(image_shape, filters)
        layers += [
            keras.layers.Conv2D(
                width, 3, strides=2 if n else 1, padding="same", activation=activation, dtype=dtype
            )
            for width in widths
        ]
    layers.append(keras.layers.Flatten(dtype=dtype))
    layers += [keras.layers.Dense(u, activation=activation, dtype=dtype) for u in hidden_units]
    layers += [
        keras.layers.Dense(num_outputs, dtype=dtype),
        keras.layers.Activation("linear", dtype="float32"),
    ]
    return keras.Sequential(layers, name=name)


def decoder_network(
    image_shape,
    latent_dim,
    values_per_pixel=1,
    architecture="dense",
    hidden_units=(256,),
    filters=32,
    activation="relu",
    dtype=None,
    name="decoder",
):
    """``[batch, latent_dim] -> [batch, *image_shape[:-1], values_per_pixel * C]`` float32,
    linear (``C = image_shape[-1]``): the mirror of `encoder_network`, with stride-2 transposed
    convolutions for ``"conv"``. ``values_per_pixel`` is the number of parameters per value of
    the output distribution (2 for a logistic's mean and log-scale)."""
    image_shape = tuple(image_shape)
    out_shape = (*image_shape[:-1], values_per_pixel * image_shape[-1])
    layers = [keras.Input((latent_dim,))]
    layers += [
        keras.layers.Dense(u, activation=activation, dtype=dtype) for u in reversed(hidden_units)
    ]
    if architecture == "conv":
        n, widths, (h, w) = _conv_plan(image_shape, filters)
        layers += [
            keras.layers.Dense(h * w * widths[-1], activation=activation, dtype=dtype),
            keras.layers.Reshape((h, w, widths[-1]), dtype=dtype),
        ]
        layers += [
            keras.layers.Conv2DTranspose(
                width, 4, strides=2, padding="same", activation=activation, dtype=dtype
            )
            for width in (reversed(widths) if n else [])
        ]
        layers.append(keras.layers.Conv2D(out_shape[-1], 3, padding="same", dtype=dtype))
    else:
        layers += [
            keras.layers.Dense(math.prod(out_shape), dtype=dtype),
            keras.layers.Reshape(out_shape, dtype=dtype),
        ]
    layers.append(keras.layers.Activation("linear", dtype="float32"))
    return keras.Sequential(layers, name=name)


# Shared helpers.


def _update_trackers(trackers, figures, sample_weight):
    """Each tracker takes the per-example mean of its figure; returns the logs."""
    for tracker, values in zip(trackers, figures, strict=True):
        mean, total = weighted_mean(values, sample_weight)
        tracker.update_state(mean, sample_weight=total)
    return {m.name: m.result() for m in trackers}


def _per_example_mean(values):
    """Mean over every axis but the first."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def _per_example_sum(values):
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def psnr(mse):
    """Peak signal-to-noise ratio in dB for data range 1: ``10 log10(1 / mse)``, with ``mse``
    floored at 1e-10 (a perfect reconstruction scores 100 dB)."""
    mse = tf.maximum(tf.cast(mse, tf.float32), _MIN_MSE)
    return -10.0 * tf.math.log(mse) / math.log(10.0)


def _images_of(data):
    batch = next(iter(data))
    x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
    return tf.cast(x, tf.float32)


def reconstruction_grid(originals, reconstructions, path, title=None, columns=8):
    """Writes a PNG of rows of ``originals`` each above the row of their ``reconstructions``
    (images ``[N, H, W, C]`` in ``[0, 1]``)."""
    originals = np.clip(np.asarray(originals, np.float32), 0.0, 1.0)
    reconstructions = np.clip(np.asarray(reconstructions, np.float32), 0.0, 1.0)
    n, h, w, c = originals.shape
    cols = min(columns, n)
    rows = -(-n // cols)
    pair = 2 * h + 1 + max(h // 2, 2)  # a wider gap between pairs of rows than within one
    mosaic = np.ones((rows * pair - max(h // 2, 2), cols * (w + 1) - 1, c), np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = r * pair, q * (w + 1)
        mosaic[top : top + h, left : left + w] = originals[i]
        mosaic[top + h + 1 : top + 2 * h + 1, left : left + w] = reconstructions[i]
    plots.sample_grid(mosaic[None], path, title=title)


# The plain and denoising autoencoder.


@keras.saving.register_keras_serializable(package="zoo")
class Autoencoder(ZooModel, keras.Model):
    """An hourglass autoencoder ``x -> z = encode(x) -> x_hat = decode(z)``, optionally denoising.

    Objective (per example, averaged over the batch): ``mse``, ``bce`` or ``cce`` as written in
    the module docstring, of ``x_hat = g(f(x + s eps))`` against the clean ``x``
    (``s = noise_std``; no noise outside ``train_step``). Metrics, means over examples whatever
    the batch size: ``loss``, ``mse`` (per-example mean squared error, averaged), and ``psnr``:
    per-example ``10 log10(1 / mse_i)`` dB (data range 1), averaged over examples (not the PSNR
    of the average MSE).

    Args:
      image_shape: shape of one example: ``(H, W, C)`` images, or any shape (e.g. ``(8,)``)
        with ``architecture="dense"``.
      architecture: ``"dense"`` (flatten -> ``hidden_units`` -> ``latent_dim``, mirrored) or
        ``"conv"`` (stride-2 3x3 convolutions down to a small map, as many as
        `zoo.gan.upsampling_stages` allows, ``hidden_units``, dense to ``latent_dim``; mirrored
        with transposed convolutions).
      latent_dim: size of the code ``z``.
      hidden_units: widths of the dense hidden layers (encoder order; the decoder mirrors them).
      filters: width of the first convolution (doubling per stage), for ``"conv"``.
      activation: hidden activation.
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

    data_spec = DataSpec(scaling="unit")

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
        super().__init__(**kwargs)
        image_shape, latent_dim, hidden_units, filters = _check_architecture(
            image_shape, architecture, latent_dim, hidden_units, filters
        )
        self.activation = _check_activation(activation, "activation")
        self.latent_activation = _check_activation(latent_activation, "latent_activation")
        self.output_activation = _check_activation(output_activation, "output_activation")
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
        self._image_shape = image_shape
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.hidden_units = hidden_units
        self.filters = filters
        self.reconstruction_loss = reconstruction_loss
        self.noise_std = float(noise_std)
        self.code_noise_std = float(code_noise_std)
        net = {
            "architecture": architecture,
            "hidden_units": hidden_units,
            "filters": filters,
            "activation": self.activation,
            "dtype": kwargs.get("dtype"),
        }
        self.encoder = encoder_network(image_shape, latent_dim, **net)
        self.decoder = decoder_network(image_shape, latent_dim, **net)
        self._latent = keras.activations.get(latent_activation or "linear")
        self._output = keras.activations.get(output_activation or "linear")
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "mse", "psnr")]
        self.skipped_steps = skipped_steps_metric()
        self.noise = keras.random.SeedGenerator(name="noise")
        self.built = True

    @property
    def image_shape(self):
        return self._image_shape

    @property
    def metrics(self):
        return [*self.trackers, self.skipped_steps]

    def encode(self, x, training=False):
        """The code ``z = f(x)``, float32 ``[batch, latent_dim]``; in training, with the code
        noise."""
        h = tf.cast(self.encoder(self.images(x), training=training), tf.float32)
        if training and self.code_noise_std:
            h += self.code_noise_std * training_noise(self.noise, tf.shape(h))
        return self._latent(h)

    def decode(self, z, training=False):
        """``x_hat = g(z)``, float32 ``[batch, *image_shape]``."""
        return self._output(self._logits(z, training))

    def reconstruct(self, x):
        """``g(f(x))``, without noise."""
        return self.decode(self.encode(x))

    def call(self, x, training=False):
        return self.decode(self.encode(x, training), training)

    def _logits(self, z, training=False):
        return tf.cast(self.decoder(z, training=training), tf.float32)

    def per_example_loss(self, x, logits):
        """The reconstruction loss of each example of ``x`` given the decoder's output."""
        x = tf.cast(x, tf.float32)
        if self.reconstruction_loss == "mse":
            return _per_example_mean(tf.square(x - self._output(logits)))
        if self.reconstruction_loss == "cce":
            return -_per_example_mean(tf.reduce_sum(x * tf.nn.log_softmax(logits), axis=-1))
        if self.output_activation == "sigmoid":
            return _per_example_mean(tf.nn.softplus(logits) - x * logits)
        p = tf.clip_by_value(self._output(logits), 1e-7, 1.0 - 1e-7)
        return -_per_example_mean(x * tf.math.log(p) + (1.0 - x) * tf.math.log(1.0 - p))

    def _update_metrics(self, x, logits, sample_weight):
        squared = _per_example_mean(tf.square(tf.cast(x, tf.float32) - self._output(logits)))
        figures = (self.per_example_loss(x, logits), squared, psnr(squared))
        return _update_trackers(self.trackers, figures, sample_weight)

    def train_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x = tf.cast(x, tf.float32)
        inputs = x
        if self.noise_std:
            inputs = x + self.noise_std * training_noise(self.noise, tf.shape(x))

        def loss_fn():
            logits = self._logits(self.encode(inputs, training=True), training=True)
            return weighted_mean(self.per_example_loss(x, logits), sample_weight)[0], logits

        _, logits, applied = minimize(
            self.optimizer, self.trainable_weights, loss_fn, state=self.non_trainable_weights
        )
        record_step(
            applied, self.skipped_steps, lambda: self._update_metrics(x, logits, sample_weight)
        )
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._update_metrics(x, self._logits(self.encode(x)), sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.reconstruct(x)

    # What the shared training path asks.

    def serving_endpoints(self):
        """``reconstruct`` (also ``serving_default``): ``images`` -> ``images``; ``encode``:
        ``images`` -> ``z``; ``decode``: ``z`` -> ``images``. ``images`` are
        ``[batch, *image_shape]`` float32 in ``[0, 1]``, ``z`` ``[batch, latent_dim]``."""
        images_spec = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        z_spec = tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")

        def reconstruct(images):
            return {"images": self.reconstruct(images)}

        def encode(images):
            return {"z": self.encode(images)}

        def decode(z):
            return {"images": self.decode(z)}

        return {
            "reconstruct": (reconstruct, [images_spec]),
            "encode": (encode, [images_spec]),
            "decode": (decode, [z_spec]),
        }

    def feature_extractor(self):
        """The encoder: images in ``[0, 1]`` -> codes."""
        return self.encoder, "unit"

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """``reconstructions.png``: the first batch's images (up to 32) above their
        reconstructions; nothing for data that are not images."""
        if len(self.image_shape) != 3:
            return []
        x = _images_of(data)[:32]
        title = f"{self.name}: originals above reconstructions"
        reconstruction_grid(x, self.reconstruct(x), os.path.join(out, "reconstructions.png"), title)
        return ["reconstructions.png"]

    def headline(self, results):
        return {f"held_out_{k}": round(float(results[k]), 4) for k in ("mse", "psnr")}

    def get_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "architecture": self.architecture,
            "latent_dim": self.latent_dim,
            "hidden_units": list(self.hidden_units),
            "filters": self.filters,
            "activation": self.activation,
            "latent_activation": self.latent_activation,
            "output_activation": self.output_activation,
            "reconstruction_loss": self.reconstruction_loss,
            "noise_std": self.noise_std,
            "code_noise_std": self.code_noise_std,
        }


# The 8-3-8 encoder problem.


def one_hot_data():
    """The 8 one-hot vectors of length 8, float32 ``[8, 8]``."""
    return np.eye(8, dtype=np.float32)


def eight_three_eight(**kwargs):
    """The classic 8-3-8 encoder problem (Rumelhart, Hinton and Williams, 1986): 8 one-hot
    inputs through 3 sigmoid hidden units and back. The only way to pass 8 patterns through 3
    nearly binary units is a 3-bit code, so a solved net gives each input its own corner of the
    cube: thresholded at 0.5, the 8 codes are the 8 distinct binary words.

    The preset decodes with a softmax and the categorical cross-entropy (the inputs are one-hot,
    i.e. categorical), and adds noise of standard deviation 1 to the codes' pre-activations in
    training (``code_noise_std``): without it the net often reconstructs perfectly from codes that
    sit mid-way between corners. Keyword arguments override the preset."""
    preset = {
        "image_shape": (8,),
        "architecture": "dense",
        "hidden_units": (),
        "latent_dim": 3,
        "latent_activation": "sigmoid",
        "output_activation": "softmax",
        "reconstruction_loss": "cce",
        "code_noise_std": 1.0,
        "name": "eight_three_eight",
    }
    return Autoencoder(**{**preset, **kwargs})


def eight_three_eight_solved(model):
    """Whether ``model`` reconstructs each one-hot input by argmax and gives the 8 inputs 8
    distinct binary codes (its 3 code units thresholded at 0.5)."""
    x = one_hot_data()
    exact = np.array_equal(np.argmax(model.reconstruct(x), axis=-1), np.arange(8))
    codes = {tuple(code) for code in (np.asarray(model.encode(x)) > 0.5).astype(int)}
    return bool(exact and len(codes) == 8)


def train_eight_three_eight(
    steps=2000, learning_rate=0.05, weight_decay=1e-2, seed=0, attempts=3, **kwargs
):
    """Builds `eight_three_eight` (``kwargs`` override it) and fits it on `one_hot_data`: one
    ``fit`` of ``steps`` full-batch AdamW steps (about 3 s of CPU); returns the model. Sets the
    global random seeds (`keras.utils.set_random_seed`).

    About 1 initialization in 25 ends in a local minimum where two inputs share an octant (one
    of them on a mid-way code); the net is then trained afresh from seed ``seed + 1``, up to
    ``attempts`` tries in all. Returns the last model trained, solved or not
    (`eight_three_eight_solved` tells)."""
    data = tf.data.Dataset.from_tensors(one_hot_data()).repeat()
    for attempt in range(int(attempts)):
        keras.utils.set_random_seed(seed + attempt)
        model = eight_three_eight(**kwargs)
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay))
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        if eight_three_eight_solved(model):
            break
    return model


# The variational autoencoder.


def _log1mexp(d):
    """``log(1 - exp(-d))`` for ``d > 0``, accurate for small and large ``d`` (Maechler 2012)."""
    return tf.where(
        d < math.log(2.0),
        tf.math.log(-tf.math.expm1(-tf.maximum(d, 1e-30))),
        tf.math.log1p(-tf.exp(-tf.maximum(d, math.log(2.0)))),
    )


def discretized_logistic_log_prob(x, mean, log_scale, num_levels):
    """Log-probability of each value of ``x`` under a logistic discretized to ``K`` levels.

    ``x`` holds levels ``k / (K - 1)``, ``k = 0 .. K-1`` (unit scaling). With ``h = 1/(2(K-1))``,
    ``s = exp(log_scale)`` and ``sigma`` the logistic sigmoid (its CDF),

    ```none
    P(k) = sigma((x + h - m) / s) - sigma((x - h - m) / s),
    ```

    the first bin taking ``(-inf, x + h]`` and the last ``[x - h, +inf)``, so the ``K``
    probabilities sum to 1. The difference is computed as in PixelCNN++ but without cases:
    ``log(sigma(a) - sigma(b)) = log sigma(a) + log sigma(-b) + log(1 - exp(b - a))``, all in
    float32 (``log sigma(a) = -softplus(-a)``). ``log_scale`` is floored at -7.
    """
    x, mean, log_scale = (tf.cast(t, tf.float32) for t in (x, mean, log_scale))
    log_scale = tf.maximum(log_scale, MIN_LOG_SCALE)
    top = float(num_levels - 1)
    half = 0.5 / top
    inv_scale = tf.exp(-log_scale)
    upper = inv_scale * (x - mean + half)
    lower = inv_scale * (x - mean - half)
    level = tf.round(x * top)
    first, last = level <= 0.0, level >= top
    log_cdf_upper = tf.where(last, 0.0, -tf.nn.softplus(-upper))
    log_sf_lower = tf.where(first, 0.0, -tf.nn.softplus(lower))
    gap = tf.where(first | last, 0.0, _log1mexp(2.0 * half * inv_scale))
    return log_cdf_upper + log_sf_lower + gap


def bernoulli_log_prob(x, logits):
    """``x log p + (1 - x) log(1 - p)`` with ``p = sigmoid(logits)``, per value."""
    x, logits = tf.cast(x, tf.float32), tf.cast(logits, tf.float32)
    return x * logits - tf.nn.softplus(logits)


def gaussian_kl(mean, log_var):
    """``KL(N(mean, diag exp(log_var)) || N(0, I))`` per example:
    ``0.5 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)``."""
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=-1)


def _standard_normal_log_prob(z):
    return -0.5 * tf.reduce_sum(tf.square(z) + math.log(2.0 * math.pi), axis=-1)


@keras.saving.register_keras_serializable(package="zoo")
class VAE(ZooModel, keras.Model):
    """Variational autoencoder (Kingma and Welling, 2014) over images in ``[0, 1]``.

    Encoder: ``x -> (mu, log sigma^2)`` of ``q(z | x) = N(mu, diag sigma^2)``; prior
    ``N(0, I)``; decoder ``z -> `` parameters of ``p(x | z)``, independent per value:

    * ``"discretized_logistic"``: mean ``m`` and log-scale per value, a proper probability mass
      function over the data's ``K = num_levels`` levels (`discretized_logistic_log_prob`), so
      ``-ELBO`` bounds the negative log-likelihood of the discrete data and
      ``bits_per_dim = -ELBO / (D log 2)`` is comparable to a flow's bits/dim;
    * ``"bernoulli"``: logits, scored by cross-entropy against the intensities. It is a proper
      likelihood only for binary data (``num_levels == 2``); only then is ``bits_per_dim``
      reported.

    Loss: ``-ELBO = E_q[-log p(x | z)] + KL`` in nats per example, one sample
    ``z = mu + sigma eps`` (reparameterized), KL in closed form (module docstring). Metrics,
    means over examples: ``loss``, ``reconstruction`` (``-log p(x | z)``), ``kl``,
    ``bits_per_dim``. The tighter importance-weighted bound is `iw_log_likelihood`.

    Args:
      image_shape: ``(H, W, C)``, or any shape with ``architecture="dense"``.
      num_levels: number of discrete levels ``K`` of the data (``x = k / (K - 1)``).
      latent_dim: size of ``z``.
      architecture, hidden_units, filters, activation: the networks, as in `Autoencoder`.
      likelihood: ``"discretized_logistic"`` or ``"bernoulli"``.
    """

    data_spec = DataSpec(scaling="unit")

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_levels=256,
        latent_dim=32,
        architecture="dense",
        hidden_units=(256,),
        filters=32,
        activation="relu",
        likelihood="discretized_logistic",
        **kwargs,
    ):
        super().__init__(**kwargs)
        image_shape, latent_dim, hidden_units, filters = _check_architecture(
            image_shape, architecture, latent_dim, hidden_units, filters
        )
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}.")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
        self._image_shape = image_shape
        self.num_levels = int(num_levels)
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden_units = hidden_units
        self.filters = filters
        self.activation = _check_activation(activation, "activation")
        self.likelihood = likelihood
        self.num_dims = math.prod(image_shape)
        net = {
            "architecture": architecture,
            "hidden_units": hidden_units,
            "filters": filters,
            "activation": self.activation,
            "dtype": kwargs.get("dtype"),
        }
        self.encoder = encoder_network(image_shape, 2 * latent_dim, **net)
        self.decoder = decoder_network(
            image_shape, latent_dim, 2 if likelihood == "discretized_logistic" else 1, **net
        )
        names = ["loss", "reconstruction", "kl"]
        if self.reports_bits:
            names.append("bits_per_dim")
        self.trackers = [keras.metrics.Mean(name=n) for n in names]
        self.skipped_steps = skipped_steps_metric()
        self.noise = keras.random.SeedGenerator(name="noise")
        self.built = True

    @classmethod
    def from_data(cls, info, **options):
        return cls(image_shape=info.image_shape, num_levels=info.num_levels, **options)

    @property
    def image_shape(self):
        return self._image_shape

    @property
    def reports_bits(self):
        """Whether ``-ELBO`` bounds a discrete log-likelihood (so bits/dim mean something)."""
        return self.likelihood == "discretized_logistic" or self.num_levels == 2

    @property
    def metrics(self):
        return [*self.trackers, self.skipped_steps]

    # The model.

    def posterior(self, x, training=False):
        """``(mu, log sigma^2)`` of ``q(z | x)``, float32 ``[batch, latent_dim]`` each."""
        h = tf.cast(self.encoder(self.images(x), training=training), tf.float32)
        return tf.split(h, 2, axis=-1)

    def _likelihood_params(self, z, training=False):
        params = tf.cast(self.decoder(z, training=training), tf.float32)
        if self.likelihood == "discretized_logistic":
            return tf.split(params, 2, axis=-1)
        return [params]

    def log_likelihood(self, x, z, training=False):
        """``log p(x | z)`` per example (nats), summed over the ``D`` values."""
        params = self._likelihood_params(z, training)
        if self.likelihood == "discretized_logistic":
            values = discretized_logistic_log_prob(x, *params, self.num_levels)
        else:
            values = bernoulli_log_prob(x, *params)
        return _per_example_sum(values)

    def elbo_terms(self, x, eps, training=False):
        """``(log p(x | z), KL)`` per example at ``z = mu + sigma * eps``; the ELBO estimate is
        their difference."""
        x = tf.cast(x, tf.float32)
        mean, log_var = self.posterior(x, training)
        z = mean + tf.exp(0.5 * log_var) * tf.cast(eps, tf.float32)
        return self.log_likelihood(x, z, training), gaussian_kl(mean, log_var)

    def elbo(self, x, seed=None):
        """One-sample estimate of the ELBO of each example (nats); ``seed`` as in `sample`."""
        eps = standard_normal([tf.shape(x)[0], self.latent_dim], seed)
        log_likelihood, kl = self.elbo_terms(x, eps)
        return log_likelihood - kl

    def iw_log_likelihood(self, x, num_samples=50, seed=None):
        """The importance-weighted bound (Burda, Grosse and Salakhutdinov, 2016) per example:

        ```none
        log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i | x),   z_i ~ q(z | x),
        ```

        by ``logsumexp`` in float32; ``k = num_samples``. It equals the ELBO in expectation for
        ``k = 1`` and grows towards ``log p(x)`` with ``k``. For the discretized likelihood it is
        a log-probability of the discrete data (so <= 0). Decodes ``k`` times the batch at once.
        """
        x = tf.cast(x, tf.float32)
        k = whole_number("num_samples", num_samples)
        n = tf.shape(x)[0]
        mean, log_var = self.posterior(x)
        eps = standard_normal([k, n, self.latent_dim], seed)
        z = mean + tf.exp(0.5 * log_var) * eps
        log_prior = _standard_normal_log_prob(z)
        log_q = _standard_normal_log_prob(eps) - 0.5 * tf.reduce_sum(log_var, axis=-1)
        repeated = tf.reshape(
            tf.broadcast_to(x, tf.concat([[k], tf.shape(x)], 0)),
            tf.concat([[k * n], tf.shape(x)[1:]], 0),
        )
        log_likelihood = tf.reshape(
            self.log_likelihood(repeated, tf.reshape(z, [k * n, self.latent_dim])), [k, n]
        )
        log_w = log_likelihood + log_prior - log_q
        return tf.reduce_logsumexp(log_w, axis=0) - math.log(k)

    def iw_bits_per_dim(self, x, num_samples=50, seed=None):
        """``-iw_log_likelihood / (D log 2)``: bits/dim of the discrete data (an upper bound)."""
        bound = self.iw_log_likelihood(x, num_samples, seed)
        return -bound / (self.num_dims * math.log(2.0))

    def encode(self, x):
        """The posterior mean ``mu(x)``."""
        return self.posterior(x)[0]

    def decode(self, z):
        """The decoder's mean image in ``[0, 1]``: the logistic's ``m`` clipped (discretized),
        or ``sigmoid(logits)`` (Bernoulli)."""
        params = self._likelihood_params(tf.cast(z, tf.float32))
        if self.likelihood == "discretized_logistic":
            return tf.clip_by_value(params[0], 0.0, 1.0)
        return tf.sigmoid(params[0])

    def reconstruct(self, x):
        """``decode(encode(x))``: the mean image at the posterior mean."""
        return self.decode(self.encode(x))

    def call(self, x, training=False):
        return self.reconstruct(x)

    def sample(self, num_samples, temperature=1.0, seed=None):
        """``num_samples`` images in ``[0, 1]``: decoder means at ``z ~ N(0, T^2 I)``. ``seed``:
        an int (stateful) or a shape-[2] stateless seed."""
        num_samples, temperature = sampling_arguments(num_samples, temperature)
        z = standard_normal([num_samples, self.latent_dim], seed)
        return self.decode(temperature * z)

    # Training.

    def _update_metrics(self, log_likelihood, kl, sample_weight):
        loss = kl - log_likelihood
        figures = [loss, -log_likelihood, kl]
        if self.reports_bits:
            figures.append(loss / (self.num_dims * math.log(2.0)))
        return _update_trackers(self.trackers, figures, sample_weight)

    def train_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        eps = training_noise(self.noise, [tf.shape(x)[0], self.latent_dim])

        def loss_fn():
            log_likelihood, kl = self.elbo_terms(x, eps, training=True)
            return weighted_mean(kl - log_likelihood, sample_weight)[0], (log_likelihood, kl)

        _, (log_likelihood, kl), applied = minimize(
            self.optimizer, self.trainable_weights, loss_fn, state=self.non_trainable_weights
        )
        record_step(
            applied,
            self.skipped_steps,
            lambda: self._update_metrics(log_likelihood, kl, sample_weight),
        )
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        eps = training_noise(self.noise, [tf.shape(x)[0], self.latent_dim])
        self._update_metrics(*self.elbo_terms(x, eps), sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.reconstruct(x)

    # What the shared training path asks.

    def serving_endpoints(self):
        """``reconstruct`` (also ``serving_default``): ``images`` -> ``images``; ``encode``:
        ``images`` -> ``z_mean``, ``z_log_var``; ``decode`` and ``sample``: ``z`` -> ``images``
        (for samples the caller draws ``z ~ N(0, T^2 I)``); ``elbo``: ``images`` -> ``elbo``
        (nats) and, where defined, ``bits_per_dim``, per example. Every endpoint is
        deterministic: ``elbo`` uses one fixed ``eps`` (stateless seed ``[0, 0]``) shared by all
        rows, so an image's figure does not depend on its batch."""
        images_spec = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        z_spec = tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")

        def reconstruct(images):
            return {"images": self.reconstruct(images)}

        def encode(images):
            mean, log_var = self.posterior(images)
            return {"z_mean": mean, "z_log_var": log_var}

        def decode(z):
            return {"images": self.decode(z)}

        def elbo(images):
            eps = tf.random.stateless_normal([1, self.latent_dim], seed=[0, 0])
            log_likelihood, kl = self.elbo_terms(images, eps)
            out = {"elbo": log_likelihood - kl}
            if self.reports_bits:
                out["bits_per_dim"] = (kl - log_likelihood) / (self.num_dims * math.log(2.0))
            return out

        return {
            "reconstruct": (reconstruct, [images_spec]),
            "encode": (encode, [images_spec]),
            "decode": (decode, [z_spec]),
            "sample": (decode, [z_spec]),
            "elbo": (elbo, [images_spec]),
        }

    def feature_extractor(self):
        """The encoder: images in ``[0, 1]`` -> the posterior's means and log-variances."""
        return self.encoder, "unit"

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """``samples.png`` (64 samples at ``temperature``) and ``reconstructions.png``; nothing
        for data that are not images."""
        if len(self.image_shape) != 3:
            return []
        samples = self.sample(64, temperature=temperature, seed=[seed, 0])
        title = f"{self.name} samples (decoder means), T = {temperature}"
        plots.sample_grid(samples, os.path.join(out, "samples.png"), title=title)
        x = _images_of(data)[:32]
        title = f"{self.name}: originals above reconstructions"
        reconstruction_grid(x, self.reconstruct(x), os.path.join(out, "reconstructions.png"), title)
        return ["samples.png", "reconstructions.png"]

    def headline(self, results):
        figures = {
            "held_out_bits_per_dim": results.get("bits_per_dim"),
            "held_out_loss_nats": results["loss"],
            "held_out_kl": results["kl"],
            "held_out_reconstruction": results["reconstruction"],
        }
        return {k: round(float(v), 4) for k, v in figures.items() if v is not None}

    def get_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "num_levels": self.num_levels,
            "latent_dim": self.latent_dim,
            "architecture": self.architecture,
            "hidden_units": list(self.hidden_units),
            "filters": self.filters,
            "activation": self.activation,
            "likelihood": self.likelihood,
        }


registry.register(
    "autoencoder",
    Autoencoder,
    task="representation",
    description="Dense hourglass autoencoder (MSE / BCE; denoising with noise_std)",
)
registry.register(
    "conv_autoencoder",
    Autoencoder,
    task="representation",
    description="Convolutional autoencoder: stride-2 convs down, transposed convs up",
    architecture="conv",
)
registry.register(
    "vae",
    VAE,
    task="density",
    description="Variational autoencoder (Kingma & Welling): discretized logistic, ELBO / IW bits",
)
