"""The networks the zoo's models share, in one place: each a `keras.Sequential` built from the
image shape, every layer under the given ``dtype`` policy (None: the global one) and any output
that feeds a loss in float32.

* `upsampling_stages`: how many stride-2 stages an image allows (the DCGAN's and the conv
  autoencoder's depth);
* `encoder_network` / `decoder_network`: the autoencoders' and the VAE's hourglass halves;
* `dcgan_generator` / `dcgan_discriminator`: the DCGAN's players;
* `conv_net`: the conv-BN-ReLU backbone of `zoo.ConvClassifier` (and of transfer learning).
"""

import math

import keras


def upsampling_stages(height, width, max_stages=3, min_size=2):
    """Stride-2 stages a DCGAN can use: the most (up to ``max_stages``) that halve both sides
    exactly while leaving at least ``min_size``: 8x8 -> 2, 28x28 -> 2 (7x7), 32x32 -> 3."""
    stages = 0
    while (
        stages < max_stages
        and height % 2 ** (stages + 1) == 0
        and width % 2 ** (stages + 1) == 0
        and min(height, width) // 2 ** (stages + 1) >= min_size
    ):
        stages += 1
    return stages


def _conv_plan(image_shape, filters):
    """``(stages, widths, (h, w) of the smallest map)``: the stride-2 stages of
    `upsampling_stages` (8x8 -> 2x2, 28x28 -> 7x7), widths doubling per stage; with no
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


def dcgan_generator(image_shape, latent_dim, filters, dtype=None):
    """Dense -> reshape -> stride-2 transposed convs with batch norm and ReLU -> tanh. The batch
    norms take their statistics over the global batch under `tf.distribute` (``synchronized``),
    so several replicas train as one device would."""
    h, w, c = image_shape
    n = upsampling_stages(h, w)
    width = [filters * 2 ** (n - 1 - i) for i in range(n)] or [filters]
    layers = [
        keras.Input((latent_dim,)),
        keras.layers.Dense((h >> n) * (w >> n) * width[0], use_bias=False, dtype=dtype),
        keras.layers.BatchNormalization(synchronized=True, dtype=dtype),
        keras.layers.ReLU(dtype=dtype),
        keras.layers.Reshape((h >> n, w >> n, width[0]), dtype=dtype),
    ]
    for i in range(n):
        out = width[i + 1] if i + 1 < n else max(filters // 2, 8)
        layers += [
            keras.layers.Conv2DTranspose(
                out, 4, strides=2, padding="same", use_bias=False, dtype=dtype
            ),
            keras.layers.BatchNormalization(synchronized=True, dtype=dtype),
            keras.layers.ReLU(dtype=dtype),
        ]
    layers += [
        keras.layers.Conv2D(c, 3, padding="same", dtype=dtype),
        keras.layers.Activation("tanh", dtype="float32"),
    ]
    return keras.Sequential(layers, name="generator")


def dcgan_discriminator(image_shape, filters, pack=1, dropout=0.3, dtype=None):
    """Stride-2 convs with LeakyReLU(0.2) and dropout -> one float32 logit."""
    h, w, c = image_shape
    n = max(upsampling_stages(h, w), 1)
    layers = [keras.Input((h, w, c * pack))]
    for i in range(n):
        layers += [
            keras.layers.Conv2D(filters * 2**i, 4, strides=2, padding="same", dtype=dtype),
            keras.layers.LeakyReLU(0.2, dtype=dtype),
            keras.layers.Dropout(dropout, dtype=dtype),
        ]
    layers += [keras.layers.Flatten(dtype=dtype), keras.layers.Dense(1, dtype="float32")]
    return keras.Sequential(layers, name="discriminator")


def conv_net(image_shape, filters=32, stages=2, dtype=None, name="convnet"):
    """The zoo's small backbone: per stage, a 3x3 conv and a stride-2 3x3 conv, each followed
    by batch norm (momentum 0.9, for short runs; global-batch statistics under `tf.distribute`)
    and ReLU; ``filters`` doubling per stage.
    ``[H, W, C] -> [H / 2^s, W / 2^s, filters 2^(s-1)]`` features."""
    layers = [keras.Input(tuple(image_shape))]
    for stage in range(int(stages)):
        width = int(filters) * 2**stage
        for conv, stride in ((1, 1), (2, 2)):
            prefix = f"stage{stage + 1}_conv{conv}"
            layers += [
                keras.layers.Conv2D(
                    width,
                    3,
                    strides=stride,
                    padding="same",
                    use_bias=False,
                    name=prefix,
                    dtype=dtype,
                ),
                keras.layers.BatchNormalization(
                    momentum=0.9, synchronized=True, name=f"{prefix}_bn", dtype=dtype
                ),
                keras.layers.ReLU(name=f"{prefix}_relu", dtype=dtype),
            ]
    return keras.Sequential(layers, name=name)
