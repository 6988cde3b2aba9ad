"""Conditioner networks for coupling and autoregressive bijectors.

All end in a layer whose kernel and bias start at zero, so a coupling built on them starts as
the identity (shift 0, log-scale 0) and training departs from there. Under a mixed-precision
policy they compute in float16 / bfloat16; the couplings cast their outputs back to float32.
"""

import keras
import numpy as np
import tensorflow as tf


class _DenseStack(keras.layers.Layer):
    """Dense layers ``self.hidden`` then ``self.out``, which subclasses create."""

    def build(self, input_shape):
        for layer in self.hidden:
            layer.build(input_shape)
            input_shape = layer.compute_output_shape(input_shape)
        self.out.build(input_shape)

    def call(self, x):
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.out.units)


@keras.saving.register_keras_serializable(package="tfflows")
class MLP(_DenseStack):
    """Dense conditioner for vector events: ``[batch, d_in] -> [batch, output_units]``.

    Args:
      hidden_units: widths of the hidden layers, e.g. ``[1000] * 5`` for NICE on MNIST.
      output_units: width of the output (``|B|`` for `AdditiveCoupling`, ``2 |B|`` for
        `AffineCoupling`).
      activation: hidden activation.
    """

    def __init__(self, hidden_units, output_units, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = [int(u) for u in hidden_units]
        self.output_units = int(output_units)
        self.activation = activation
        self.hidden = [
            keras.layers.Dense(u, activation=activation, dtype=self.dtype_policy)
            for u in self.hidden_units
        ]
        self.out = keras.layers.Dense(
            self.output_units, kernel_initializer="zeros", dtype=self.dtype_policy
        )

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "output_units": self.output_units,
            "activation": self.activation,
        }


@keras.saving.register_keras_serializable(package="tfflows")
class ResNet(keras.layers.Layer):
    """Convolutional residual conditioner for image events, as in RealNVP.

    ``[batch, H, W, C_in] -> [batch, H, W, output_channels]``: a 3x3 input convolution to
    ``filters`` channels, ``num_blocks`` residual blocks ``h + conv(act(conv(act(h))))``, then an
    activation and a zero-initialized 3x3 output convolution. No batch statistics inside: the
    conditioner is a pure function of its input, so a coupling's inverse is exact in training
    and inference alike.

    Args:
      filters: width of the residual stream.
      num_blocks: number of residual blocks.
      output_channels: channels of the output (``C_B`` for `AdditiveCoupling`, ``2 C_B`` for
        `AffineCoupling`).
      kernel_size: spatial size of every convolution.
      activation: activation inside the blocks.
    """

    def __init__(
        self, filters, num_blocks, output_channels, kernel_size=3, activation="relu", **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.num_blocks = int(num_blocks)
        self.output_channels = int(output_channels)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self._act = keras.activations.get(activation)

        def conv(channels, **kw):
            return keras.layers.Conv2D(
                channels, self.kernel_size, padding="same", dtype=self.dtype_policy, **kw
            )

        self.conv_in = conv(self.filters)
        self.blocks = [[conv(self.filters), conv(self.filters)] for _ in range(self.num_blocks)]
        self.conv_out = conv(self.output_channels, kernel_initializer="zeros")

    def build(self, input_shape):
        self.conv_in.build(input_shape)
        hidden = (*input_shape[:-1], self.filters)
        for first, second in self.blocks:
            first.build(hidden)
            second.build(hidden)
        self.conv_out.build(hidden)

    def call(self, x):
        h = self.conv_in(x)
        for first, second in self.blocks:
            h = h + second(self._act(first(self._act(h))))
        return self.conv_out(self._act(h))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "output_channels": self.output_channels,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
        }


def autoregressive_degrees(event_size, order="natural"):
    """The degree (1-based position in the autoregressive order) of each input unit:
    ``"natural"`` 1..D, ``"reversed"`` D..1, or an explicit permutation of 1..D."""
    if isinstance(order, str):
        if order not in ("natural", "reversed"):
            raise ValueError(
                f"order must be 'natural', 'reversed' or a permutation, got {order!r}."
            )
        degrees = np.arange(1, event_size + 1)
        return degrees[::-1].copy() if order == "reversed" else degrees
    degrees = np.asarray(order, dtype=np.int64)
    if sorted(degrees.tolist()) != list(range(1, event_size + 1)):
        raise ValueError(f"order must be a permutation of 1..{event_size}, got {list(order)}.")
    return degrees


def made_masks(input_degrees, hidden_units, context=False):
    """MADE's connectivity masks (Germain, Gregor, Murray and Larochelle, "MADE: Masked
    Autoencoder for Distribution Estimation", ICML 2015), ``mask[i, j] = 1`` where input unit
    ``i`` of a layer may feed its output unit ``j``.

    With input degrees ``m(d)`` (a permutation of 1..D) and hidden degrees cycling through
    1..D-1 (``m(k) = 1 + (k mod max(1, D - 1))``), or with a ``context`` through 0..D-1
    (``m(k) = k mod D``: units of degree 0 see the context alone and feed every output, the
    first unit's too):

    ```none
    hidden: m_l(k') >= m_{l-1}(k)          output for unit d:  m(d) > m_L(k)
    ```

    so every path from input ``i`` to the outputs of unit ``d`` has ``m(i) < m(d)``: output
    ``d`` depends on the units before it in the order only, and the Jacobian of the
    autoregressive transform it parameterizes is triangular in that order. Returns the masks
    and the last hidden layer's degrees.
    """
    size = len(input_degrees)
    degrees, masks = np.asarray(input_degrees), []
    for units in hidden_units:
        hidden = _hidden_degrees(size, units, context)
        masks.append((hidden[None, :] >= degrees[:, None]).astype(np.float32))
        degrees = hidden
    return masks, (np.asarray(input_degrees)[None, :] > degrees[:, None]).astype(np.float32)


def _hidden_degrees(size, units, context):
    """A hidden layer's degrees (`made_masks`)."""
    return np.arange(units) % size if context else 1 + np.arange(units) % max(1, size - 1)


@keras.saving.register_keras_serializable(package="tfflows")
class MaskedDense(keras.layers.Dense):
    """``Dense`` with MADE's 0/1 connectivity mask ``[d_in, units]`` on its kernel:
    ``mask[i, j] = 1`` where ``output_degrees[j] >= input_degrees[i]`` (``>`` if ``strict``).

    The kernel is *stored masked*, as TFP's ``AutoregressiveNetwork`` stores it, so a call is a
    plain ``x @ kernel``: the peers (nflows, normflows, zuko) compute ``kernel * mask`` in every
    call, which for an MNIST MADE layer (784 -> 1024 -> 1568) cost more than its matmul at
    batch 1 (2.0 against 0.8 ms) and a fifth of the call at batch 256. What keeps it masked:
    `build`, `load_own_variables` and `set_weights` zero the masked entries (`enforce_mask`),
    and the kernel's gradient is masked (``dL/dW = (x^T dL/dy) * mask``, a custom gradient), so
    gradient-based training never moves them: the zeros are exact, and so is the
    autoregressive structure. Code that assigns the kernel directly (a whole model's
    ``set_weights`` included, which assigns each variable) must call `enforce_mask` after.

    The mask itself is built in the graph from the two degree vectors, so a traced or exported
    call holds ``d_in + units`` integers, not the ``d_in x units`` mask (for an MNIST MAF, a
    SavedModel of 277 MB held 190 MB of masks, repeated in every signature).
    """

    def __init__(self, units, input_degrees, output_degrees, strict=False, **kwargs):
        super().__init__(units, **kwargs)
        self.input_degrees = np.asarray(input_degrees, dtype=np.int32)
        self.output_degrees = np.asarray(output_degrees, dtype=np.int32)
        self.strict = bool(strict)
        if self.output_degrees.shape != (units,):
            raise ValueError(f"output_degrees must have {units} entries (units).")

    @property
    def mask(self):
        """The connectivity mask as a NumPy array ``[d_in, units]``."""
        compare = np.greater if self.strict else np.greater_equal
        return compare(self.output_degrees[None, :], self.input_degrees[:, None]).astype(np.float32)

    def _mask(self, dtype):
        compare = tf.greater if self.strict else tf.greater_equal
        mask = compare(
            tf.constant(self.output_degrees)[None, :], tf.constant(self.input_degrees)[:, None]
        )
        return tf.cast(mask, dtype)

    def enforce_mask(self):
        """Zeroes the kernel where the mask is 0."""
        self.kernel.assign(self.kernel * self._mask(self.kernel.dtype))

    def build(self, input_shape):
        super().build(input_shape)
        self.enforce_mask()

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self.enforce_mask()

    def set_weights(self, weights):
        super().set_weights(weights)
        self.enforce_mask()

    def call(self, x):
        y = self._matmul(x, tf.cast(self.kernel, x.dtype))
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return self.activation(y) if self.activation is not None else y

    def _matmul(self, x, kernel):
        """``x @ kernel`` whose gradient for ``kernel`` is masked."""

        @tf.custom_gradient
        def matmul(x, kernel):
            def grad(dy):
                x_2d = tf.reshape(x, [-1, kernel.shape[0]])
                dy_2d = tf.reshape(dy, [-1, kernel.shape[1]])
                d_kernel = tf.matmul(x_2d, dy_2d, transpose_a=True) * self._mask(dy.dtype)
                return tf.matmul(dy, kernel, transpose_b=True), d_kernel

            return tf.matmul(x, kernel), grad

        return matmul(x, kernel)

    def get_config(self):
        return {
            **super().get_config(),
            "input_degrees": self.input_degrees.tolist(),
            "output_degrees": self.output_degrees.tolist(),
            "strict": self.strict,
        }


@keras.saving.register_keras_serializable(package="tfflows")
class MADE(_DenseStack):
    """Masked autoregressive conditioner (MADE, see `made_masks`) for autoregressive flows:
    ``[batch, D (+ context_size)] -> [batch, D * params_per_unit]``, the ``params_per_unit``
    outputs of unit ``d`` consecutive and depending on the units before ``d`` in ``order`` (and
    on all of the context, appended after the D units, which feeds every hidden unit).

    Written for Keras 3: ``tfb.AutoregressiveNetwork`` is built on the legacy tf_keras. Its
    output layer starts at zero, as `MLP`'s does.

    Args:
      event_size: ``D``.
      params_per_unit: outputs per unit (2 for an affine transform: shift and log-scale).
      hidden_units: widths of the hidden layers (at least one).
      context_size: width of a context vector appended to the input (0: none).
      order: ``"natural"``, ``"reversed"`` or a permutation of 1..D (`autoregressive_degrees`).
      activation: hidden activation.
    """

    def __init__(
        self,
        event_size,
        params_per_unit,
        hidden_units,
        context_size=0,
        order="natural",
        activation="relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.event_size, self.params_per_unit = int(event_size), int(params_per_unit)
        self.hidden_units = [int(u) for u in hidden_units]
        self.context_size = int(context_size)
        self.activation = activation
        if not self.hidden_units:
            raise ValueError("MADE needs at least one hidden layer.")
        self.order = order if isinstance(order, str) else [int(o) for o in order]
        self.degrees = autoregressive_degrees(self.event_size, self.order)
        # The masks of `made_masks`, as degrees. The context's units have degree 0 and feed
        # every first-layer hidden unit (whose degrees are >= 0 with a context).
        context = self.context_size > 0
        inputs = np.concatenate([self.degrees, np.zeros(self.context_size, np.int64)])
        policy = self.dtype_policy
        self.hidden = []
        for units in self.hidden_units:
            hidden = _hidden_degrees(self.event_size, units, context)
            self.hidden.append(
                MaskedDense(units, inputs, hidden, activation=activation, dtype=policy)
            )
            inputs = hidden
        self.out = MaskedDense(
            self.event_size * self.params_per_unit,
            inputs,
            np.repeat(self.degrees, self.params_per_unit),
            strict=True,
            kernel_initializer="zeros",
            dtype=policy,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "event_size": self.event_size,
            "params_per_unit": self.params_per_unit,
            "hidden_units": self.hidden_units,
            "context_size": self.context_size,
            "order": self.order,
            "activation": self.activation,
        }
