"""`Flow`: a chain of bijectors over a base distribution, as a trainable Keras model."""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfflows.bijectors import _walk
from tfflows.bijectors._base import deserialize_config
from tfflows.checks import sampling_arguments
from tfflows.gradient_step import (
    build_optimizer,
    minimize,
    record_step,
    skipped_steps_metric,
    weighted_mean,
)

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

    A conditional flow models ``p(x | c)`` for a context ``c`` ``[batch, context_size]`` (a
    one-hot class, features): its conditional couplings and autoregressive transforms get ``c``
    in every call (`tfflows.bijectors._walk`), and with ``conditional_base`` the base is
    ``N(mu(c), diag(sigma(c)^2))`` with ``(mu, log sigma)`` a linear map of ``c`` (Glow's
    class-conditional prior; it starts as the standard base). With a conditional base and no
    conditional bijector (the class-conditional prior alone, as in Glow's and FlowGMM's
    classifiers), ``x -> z`` does not depend on the context: `encode` and `decode` need none.
    ``log_prob(x, context)``,
    ``sample(n, context=c)`` and ``fit(x, c)`` take it; integer class labels ``[batch]`` are
    one-hot encoded to ``context_size`` classes.

    #### Examples

    RealNVP on 2-D points: affine couplings on alternating halves, batch norm between:

    ```python
    import keras
    import numpy as np
    import tfflows
    from tfflows import bijectors, masks, nets

    layers = []
    for i in range(4):
        layers.append(bijectors.AffineCoupling(masks.half(2, parity=i % 2), nets.MLP([32, 32], 2)))
        layers.append(bijectors.BatchNorm([2]))
    flow = tfflows.Flow(layers[:-1], event_shape=[2])
    flow.compile(optimizer=keras.optimizers.Adam(1e-3))
    points = np.random.default_rng(0).normal(size=(512, 2)).astype("float32")
    flow.fit(points, batch_size=128, epochs=2, verbose=0)  # maximum likelihood
    flow.log_prob(points[:4])  # [4], nats
    x, log_prob = flow.sample_and_log_prob(3, temperature=0.7, seed=[1, 2])  # one forward pass
    ```

    #### References

    1. Danilo Jimenez Rezende and Shakir Mohamed. Variational Inference with Normalizing Flows. In
       *Proceedings of the 32nd International Conference on Machine Learning (ICML)*, 2015.
       [arXiv:1505.05770](https://arxiv.org/abs/1505.05770).
    2. George Papamakarios, Eric Nalisnick, Danilo Jimenez Rezende, Shakir Mohamed and Balaji
       Lakshminarayanan. Normalizing Flows for Probabilistic Modeling and Inference. *Journal of
       Machine Learning Research*, 22(57):1-64, 2021.
       [arXiv:1912.02762](https://arxiv.org/abs/1912.02762).

    Args:
      bijectors: list of bijectors, data side first. Bijectors without `get_config` (e.g. TFP's
        own) work, but the model can then not be saved to `.keras`.
      event_shape: shape of one data example.
      base_distribution: ``"normal"`` or ``"logistic"`` (NICE), standard, i.i.d. per latent unit.
      validate_args: check the model's inputs for NaN / Inf at run time. Each bijector's own
        run-time checks (e.g. `Logit`'s pixel range) are set by its own ``validate_args``.
      context_size: width of the context (0: an unconditional flow). Conditional bijectors
        must have the same.
      conditional_base: the base's location and scale depend on the context.
    """

    def __init__(
        self,
        bijectors,
        event_shape,
        base_distribution="normal",
        validate_args=False,
        context_size=0,
        conditional_base=False,
        **kwargs,
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
        self.context_size = int(context_size)
        self.conditional_base = bool(conditional_base)
        self._check_context_sizes()
        # Tracked list: Keras saves these layers by position and class name.
        self.bijector_layers = _walk.keras_layers(self._bijectors)
        chain = tfp.bijectors.Chain(self._bijectors)
        self.latent_shape = tuple(chain.inverse_event_shape(self.event_shape).as_list())
        self.base_layer = None
        if self.conditional_base:
            units = 2 * int(np.prod(self.latent_shape))
            self.base_layer = keras.layers.Dense(
                units, kernel_initializer="zeros", dtype="float32", name="conditional_base"
            )
            self.base_layer.build((None, self.context_size))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.skipped_steps = skipped_steps_metric()
        self.built = True

    @property
    def bijectors(self):
        return list(self._bijectors)

    @property
    def all_bijectors(self):
        """`bijectors` and, after each, those it holds (a ``FactorOut``'s sub-flow)."""
        return list(_walk.nested(self._bijectors))

    @property
    def metrics(self):
        return [self.loss_tracker, self.skipped_steps]

    def _check_context_sizes(self):
        if self.context_size < 0:
            raise ValueError(f"context_size must be >= 0, got {self.context_size}.")
        if self.conditional_base and not self.context_size:
            raise ValueError("conditional_base needs a context: set context_size > 0.")
        for b in self.all_bijectors:
            size = getattr(b, "context_size", 0)
            if size and size != self.context_size:
                raise ValueError(
                    f"bijector {b.name!r} takes a context of {size}, the flow's context_size "
                    f"is {self.context_size}."
                )

    def as_context(self, context, batch=None):
        """``context`` checked and as float32 ``[batch, context_size]`` (None for an
        unconditional flow): integer labels ``[batch]`` one-hot encoded; one context ``[c]``
        broadcast to ``batch`` rows when given. Raises ValueError naming what is wrong."""
        name = type(self).__name__
        if not self.context_size:
            if context is not None:
                raise ValueError(f"This {name} is unconditional (context_size=0): no context.")
            return None
        if context is None:
            raise ValueError(
                f"This {name} is conditional (context_size={self.context_size}): pass a context "
                f"[batch, {self.context_size}] or integer class labels [batch]."
            )
        context = tf.convert_to_tensor(context)
        if context.dtype.is_integer:
            labels = tf.cast(context, tf.int32)
            if labels.shape.rank == 2 and labels.shape[-1] == 1:
                labels = labels[:, 0]
            checks = [
                tf.debugging.assert_non_negative(labels, f"{name}: class labels must be >= 0"),
                tf.debugging.assert_less(
                    labels, self.context_size, f"{name}: class labels must be < {self.context_size}"
                ),
            ]
            with tf.control_dependencies(checks):
                context = tf.one_hot(labels, self.context_size)
        elif not context.dtype.is_floating:
            raise TypeError(f"{name} context must be numbers, got dtype {context.dtype.name}.")
        if context.shape.rank is not None and (
            context.shape.rank == 0 or context.shape[-1] != self.context_size
        ):
            raise ValueError(
                f"{name} context must be [batch, {self.context_size}] (or integer labels "
                f"[batch]); got shape {context.shape.as_list()}."
            )
        context = tf.cast(context, tf.float32)
        if batch is not None:
            context = tf.broadcast_to(
                tf.reshape(context, [-1, self.context_size]), [batch, self.context_size]
            )
        if self.validate_args:
            context = tf.debugging.assert_all_finite(context, f"{name} context has NaN or Inf")
        return context

    def base(self, temperature=1.0, context=None):
        """The base distribution over latents, scaled by ``temperature`` (1 = the model's);
        for a conditional base, one per row of the (checked) ``context``."""
        if self.base_layer is not None:
            if context is None:
                raise ValueError("The conditional base needs a context.")
            params = tf.reshape(self.base_layer(context), [-1, 2, *self.latent_shape])
            loc = params[:, 0]
            scale = tf.exp(params[:, 1]) * tf.cast(temperature, tf.float32)
        else:
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

    def encode_with_log_det(self, x, training=False, context=None):
        """Data -> latent: ``(z, log|det dz/dx|)``, each bijector run once."""
        context = self._map_context(context)
        return self._encode(self._validate(x), training, context)

    @property
    def maps_with_context(self):
        """Whether any bijector conditions on the context (not only the base)."""
        return _walk.takes_context(self._bijectors)

    def _map_context(self, context):
        """The bijectors' context, checked; None when none of them takes one."""
        if context is None and not self.maps_with_context:
            return None
        return self.as_context(context)

    def _encode(self, x, training, context):
        return _walk.inverse_and_log_det(
            self._bijectors, x, len(self.event_shape), training, context
        )

    def encode(self, x, training=False, context=None):
        """Data -> latent: ``z = f^{-1}(x)``."""
        return self.encode_with_log_det(x, training, context)[0]

    def decode(self, z, context=None):
        """Latent -> data: ``x = f(z)``."""
        z = tf.cast(z, tf.float32)
        return _walk.forward(self._bijectors, z, self._map_context(context))

    def decode_with_log_det(self, z, context=None):
        """Latent -> data: ``(x, log|det dx/dz|)``, each bijector run once."""
        z = tf.cast(z, tf.float32)
        return _walk.forward_and_log_det(
            self._bijectors, z, len(self.latent_shape), self._map_context(context)
        )

    def log_prob(self, x, context=None, training=False):
        """Log-density (nats) of each example of ``x`` (given its ``context`` for a conditional
        flow), in float32."""
        x = tf.convert_to_tensor(x)
        if x.shape.rank and x.shape[0] == 0:  # e.g. Conv2D's bias add fails on an empty batch
            return tf.zeros([0], tf.float32)
        context = self.as_context(context)
        z, log_det = self._encode(self._validate(x), training, context)
        return self.base(context=context).log_prob(z) + log_det

    def _draw(self, num_samples, temperature, seed, context):
        """Latents for `sample`: ``num_samples`` of them, one per row of the context."""
        num_samples, temperature = sampling_arguments(num_samples, temperature)
        context = self.as_context(context, num_samples if context is not None else None)
        base = self.base(temperature, context)
        shape = () if self.base_layer is not None else num_samples  # a draw per context row
        return base.sample(shape, seed=seed), context

    def sample(self, num_samples, temperature=1.0, seed=None, *, context=None):
        """Draws ``num_samples`` examples; ``temperature`` scales the base's spread.

        ``seed`` is an int (stateful: a new draw each call) or a shape-[2] stateless seed such as
        ``[1, 2]`` (the same draw every call). A conditional flow takes a ``context``: one
        ``[context_size]`` (or one class label) for every draw, or one row per draw.
        """
        z, context = self._draw(num_samples, temperature, seed, context)
        return _walk.forward(self._bijectors, z, context)

    def decode_and_log_prob(self, z, context=None):
        """``(x, log p(x))`` for ``x = f(z)``, without running the inverse:
        ``log p(x) = log p_base(z) - log|det dx/dz|``."""
        context = self.as_context(context)
        z = tf.cast(z, tf.float32)
        x, log_det = _walk.forward_and_log_det(self._bijectors, z, len(self.latent_shape), context)
        return x, self.base(context=context).log_prob(z) - log_det

    def sample_and_log_prob(self, num_samples, temperature=1.0, seed=None, *, context=None):
        """``(x, log p(x))``: draws as `sample` makes them, scored in the same forward pass,

        ```none
        z ~ base(temperature),   x = f(z),   log p(x) = log p_base(z) - log|det dx/dz|
        ```

        ``log p`` is the model's density (the base at temperature 1) whatever ``temperature``
        the draws were made at, so it equals ``log_prob(x)`` without running the inverse.
        """
        z, context = self._draw(num_samples, temperature, seed, context)
        return self.decode_and_log_prob(z, context)

    def log_likelihood(self, x, training=False, context=None):
        """The per-example log-likelihood (nats) that `fit` maximizes and `evaluate` reports:
        ``log_prob``; a subclass that learns its dequantization returns its bound instead."""
        return self.log_prob(x, context, training=training)

    def call(self, x, training=None, context=None):
        return self.log_prob(x, context, training=bool(training))

    def _context_of(self, y):
        """The context of a batch ``(x, y)`` that `fit` / `evaluate` / `predict` get: ``y``
        for a conditional flow, nothing otherwise (an unconditional flow ignores labels)."""
        if not self.context_size:
            return {}
        if y is None:
            raise ValueError(
                f"This {type(self).__name__} is conditional: give fit / evaluate / predict "
                "(x, context) pairs, e.g. fit(x, labels)."
            )
        return {"context": y}

    def update_metrics(self, log_prob, sample_weight=None):
        """Updates the tracked metrics from a batch's log-probs; subclasses add their own.

        Each batch counts by its number of examples (its total weight), so an epoch's figure is
        the per-example mean whatever the batch size.
        """
        nll, total = weighted_mean(-log_prob, sample_weight)
        self.loss_tracker.update_state(nll, sample_weight=total)

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, its optimizer built before the step is traced
        (`build_optimizer`: one trace instead of two)."""
        build_optimizer(self)
        return super().fit(*args, **kwargs)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        context = self._context_of(y)

        def loss_fn():
            log_prob = self.log_likelihood(x, training=True, **context)
            return weighted_mean(-log_prob, sample_weight)[0], log_prob

        _, log_prob, applied = minimize(
            self.optimizer, self.trainable_weights, loss_fn, state=self.non_trainable_weights
        )
        record_step(
            applied, self.skipped_steps, lambda: self.update_metrics(log_prob, sample_weight)
        )
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self.update_metrics(self.log_likelihood(x, **self._context_of(y)), sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def predict_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.log_prob(x, **self._context_of(y))

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
            "context_size": self.context_size,
            "conditional_base": self.conditional_base,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_config(config))
