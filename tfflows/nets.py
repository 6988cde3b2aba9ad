"""Conditioner networks for coupling bijectors.

Both end in a layer whose kernel and bias start at zero, so a coupling built on them starts as
the identity (shift 0, log-scale 0) and training departs from there. Under a mixed-precision
policy they compute in float16 / bfloat16; the couplings cast their outputs back to float32.
"""

import keras


@keras.saving.register_keras_serializable(package="tfflows")
class MLP(keras.layers.Layer):
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
        return (*input_shape[:-1], self.output_units)

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
