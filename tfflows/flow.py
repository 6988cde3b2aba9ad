"""`Flow`: a chain of bijectors over a base distribution, as a trainable Keras model."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfflows.bijectors import _walk
from tfflows.bijectors._base import deserialize_config
from tfflows.checks import sampling_arguments
from tfflows.gradient_step import minimize, record_step, skipped_steps_metric, weighted_mean

tfd = tfp.distributions

BASE_DISTRIBUTIONS = ("normal", "logistic")


@keras.saving.register_keras_serializable(package="tfflows")
class Flow(keras.Model):
    """A normalizing flow ``x = f(z)``, ``z ~ base``, trained by maximum likelihood with `fit`.

    ``bijectors`` are listed as in ``tfb.Chain``: the first is nearest the data. The inverse
    pass (density evaluation) runs them first to last, the forward pass (sampling) last to first
    (``tfb.Chain(flow.bijectors)`` is the same map):

    ```none
    log p(x) = log p_base(f^{-1}(x)) + sum_k log|det J_{f_k^{-1}}|
    ```

    The model tracks the Keras layers of every bijector (``bijector.keras_layers``), so its
    ``trainable_weights`` hold every weight, `fit` trains them, and `.keras` files save them.
    Bijectors that take ``training`` (`BatchNorm`, `FactorOut`) get it from each call. All
    density arithmetic is float32 (``autocast=False``) while conditioners follow the dtype
    policy; under ``mixed_float16``, ``compile`` wraps the optimizer in a ``LossScaleOptimizer``
    and ``train_step`` scales the loss.

    Args:
      bijectors: list of bijectors, data side first. Bijectors without `get_config` (e.g. TFP's
        own) work, but the model can then not be saved to `.keras`.
      event_shape: shape of one data example.
      base_distribution: ``"normal"`` or ``"logistic"`` (NICE), standard, i.i.d. per latent unit.
      validate_args: check the model's inputs for NaN / Inf at run time. Each bijector's own
        run-time checks (e.g. `Logit`'s pixel range) are set by its own ``validate_args``.
    """

    def __init__(
        self, bijectors, event_shape, base_distribution="normal", validate_args=False, **kwargs
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if base_distribution not in BASE_DISTRIBUTIONS:
            raise ValueError(
                f"base_distribution must be one of {BASE_DISTRIBUTIONS}, got {base_distribution!r}."
            )
        self._bijectors = list(bijectors)
        self.event_shape = tuple(int(n) for n in event_shape)
        self.base_distribution = base_distribution
        self.validate_args = bool(validate_args)
        # Tracked list: Keras saves these layers by position and class name.
        self.bijector_layers = _walk.keras_layers(self._bijectors)
        chain = tfp.bijectors.Chain(self._bijectors)
        self.latent_shape = tuple(chain.inverse_event_shape(self.event_shape).as_list())
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.skipped_steps = skipped_steps_metric()
        self.built = True

    @property
    def bijectors(self):
        return list(self._bijectors)

    @property
    def metrics(self):
        return [self.loss_tracker, self.skipped_steps]

    def base(self, temperature=1.0):
        """The base distribution over latents, scaled by ``temperature`` (1 = the model's)."""
        loc = tf.zeros(self.latent_shape)
        scale = tf.fill(self.latent_shape, tf.cast(temperature, tf.float32))
        if self.base_distribution == "normal":
            dist = tfd.Normal(loc, scale)
        else:
            dist = tfd.Logistic(loc, scale)
        return tfd.Independent(dist, reinterpreted_batch_ndims=len(self.latent_shape))

    def _validate(self, x):
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            raise TypeError(
                f"{type(self).__name__} expects floating-point data, got dtype {x.dtype.name} "
                "(dequantize integer data first, e.g. tfflows.uniform_dequantize)."
            )
        n = len(self.event_shape)
        if x.shape.rank is not None and (
            x.shape.rank < n + 1 or not x.shape[-n:].is_compatible_with(self.event_shape)
        ):
            raise ValueError(
                f"{type(self).__name__} expects a batch of examples of shape "
                f"{list(self.event_shape)}, i.e. [batch, {', '.join(map(str, self.event_shape))}]"
                f"; got shape {x.shape.as_list()}."
            )
        x = tf.cast(x, tf.float32)
        if self.validate_args:
            x = tf.debugging.assert_all_finite(x, f"{type(self).__name__} input has NaN or Inf")
        return x

    def encode_with_log_det(self, x, training=False):
        """Data -> latent: ``(z, log|det dz/dx|)``, each bijector run once."""
        return _walk.inverse_and_log_det(
            self._bijectors, self._validate(x), len(self.event_shape), training
        )

    def encode(self, x, training=False):
        """Data -> latent: ``z = f^{-1}(x)``."""
        return self.encode_with_log_det(x, training)[0]

    def decode(self, z):
        """Latent -> data: ``x = f(z)``."""
        return _walk.forward(self._bijectors, tf.cast(z, tf.float32))

    def decode_with_log_det(self, z):
        """Latent -> data: ``(x, log|det dx/dz|)``, each bijector run once."""
        z = tf.cast(z, tf.float32)
        return _walk.forward_and_log_det(self._bijectors, z, len(self.latent_shape))

    def log_prob(self, x, training=False):
        """Log-density (nats) of each example of ``x``, in float32."""
        x = tf.convert_to_tensor(x)
        if x.shape.rank and x.shape[0] == 0:  # e.g. Conv2D's bias add fails on an empty batch
            return tf.zeros([0], tf.float32)
        z, log_det = self.encode_with_log_det(x, training)
        return self.base().log_prob(z) + log_det

    def sample(self, num_samples, temperature=1.0, seed=None):
        """Draws ``num_samples`` examples; ``temperature`` scales the base's spread.

        ``seed`` is an int (stateful: a new draw each call) or a shape-[2] stateless seed such as
        ``[1, 2]`` (the same draw every call).
        """
        num_samples, temperature = sampling_arguments(num_samples, temperature)
        z = self.base(temperature).sample(num_samples, seed=seed)
        return self.decode(z)

    def decode_and_log_prob(self, z):
        """``(x, log p(x))`` for ``x = f(z)``, without running the inverse:
        ``log p(x) = log p_base(z) - log|det dx/dz|``."""
        x, log_det = self.decode_with_log_det(z)
        return x, self.base().log_prob(tf.cast(z, tf.float32)) - log_det

    def sample_and_log_prob(self, num_samples, temperature=1.0, seed=None):
        """``(x, log p(x))``: draws as `sample` makes them, scored in the same forward pass,

        ```none
        z ~ base(temperature),   x = f(z),   log p(x) = log p_base(z) - log|det dx/dz|
        ```

        ``log p`` is the model's density (the base at temperature 1) whatever ``temperature``
        the draws were made at, so it equals ``log_prob(x)`` without running the inverse.
        """
        num_samples, temperature = sampling_arguments(num_samples, temperature)
        return self.decode_and_log_prob(self.base(temperature).sample(num_samples, seed=seed))

    def log_likelihood(self, x, training=False):
        """The per-example log-likelihood (nats) that `fit` maximizes and `evaluate` reports:
        ``log_prob``; a subclass that learns its dequantization returns its bound instead."""
        return self.log_prob(x, training=training)

    def call(self, x, training=None):
        return self.log_prob(x, training=bool(training))

    def update_metrics(self, log_prob, sample_weight=None):
        """Updates the tracked metrics from a batch's log-probs; subclasses add their own.

        Each batch counts by its number of examples (its total weight), so an epoch's figure is
        the per-example mean whatever the batch size.
        """
        nll, total = weighted_mean(-log_prob, sample_weight)
        self.loss_tracker.update_state(nll, sample_weight=total)

    def train_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

        def loss_fn():
            log_prob = self.log_likelihood(x, training=True)
            return weighted_mean(-log_prob, sample_weight)[0], log_prob

        _, log_prob, applied = minimize(
            self.optimizer, self.trainable_weights, loss_fn, state=self.non_trainable_weights
        )
        record_step(
            applied, self.skipped_steps, lambda: self.update_metrics(log_prob, sample_weight)
        )
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self.update_metrics(self.log_likelihood(x), sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.log_prob(x)

    def get_config(self):
        for b in self._bijectors:
            if not hasattr(b, "get_config"):
                raise TypeError(
                    f"Cannot serialize Flow: bijector {b.name!r} ({type(b).__name__}) has no "
                    "get_config; use tfflows bijectors to save a Flow to .keras."
                )
        return {
            "name": self.name,
            "trainable": self.trainable,
            "bijectors": [keras.saving.serialize_keras_object(b) for b in self._bijectors],
            "event_shape": list(self.event_shape),
            "base_distribution": self.base_distribution,
            "validate_args": self.validate_args,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_config(config))
