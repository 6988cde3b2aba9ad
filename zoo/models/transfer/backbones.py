"""Feature extractors for `zoo.TransferClassifier`: named `keras.applications` networks, any
`keras.Model` (the zoo's small conv net, `zoo.models.nets.conv_net`, or a zoo model's
``feature_extractor()``), a `.keras` file or a SavedModel.

``resolve(backbone, image_shape, ...)`` returns a `Backbone`: the network, the input it expects
(size, channels) and how it scales its input. `BackboneInput` turns images in ``[0, 1]`` into
that input inside the model, so callers always feed ``[0, 1]`` images.

Input scalings (of images ``x`` in ``[0, 1]``), as ``keras.applications`` preprocess:

* ``"unit"``: ``x`` (the zoo's own models trained on unit-scaled data);
* ``"symmetric"``: ``2 x - 1`` (MobileNetV2's ``"tf"`` mode, a GAN's discriminator);
* ``"pixels"``: ``255 x`` (EfficientNetV2, which rescales inside);
* ``"caffe"``: ``255 x`` in BGR order minus the ImageNet mean (ResNet50);
* ``"torch"``: ``(x - mean) / std`` with ImageNet's mean and std, RGB.

ImageNet weights are never downloaded behind the caller's back: ``weights="imagenet"`` uses the
file in the Keras cache (``$KERAS_HOME/models``, else ``~/.keras/models``) and otherwise fails at
once, naming the file and where to put it; ``weights`` may also be the path of that file.
"""

import dataclasses
import os

import keras
import tensorflow as tf

from zoo.models import checks

SCALINGS = ("unit", "symmetric", "pixels", "caffe", "torch")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_LUMA = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale's weights
_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclasses.dataclass(frozen=True)
class Application:
    """A ``keras.applications`` network usable as a backbone."""

    builder: str
    scaling: str
    weights_file: str
    weights_folder: str
    builder_options: tuple = ()

    def weights_name(self, size):
        return self.weights_file.format(size=size)


APPLICATIONS = {
    "mobilenet_v2": Application(
        "MobileNetV2",
        "symmetric",
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
        "mobilenet_v2/",
    ),
    "efficientnet_v2_b0": Application(
        "EfficientNetV2B0",
        "pixels",
        "efficientnetv2-b0_notop.h5",
        "efficientnet_v2/",
        (("include_preprocessing", True),),
    ),
    "resnet50": Application(
        "ResNet50",
        "caffe",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "resnet/",
    ),
}
_ALIASES = {"".join(c for c in name if c.isalnum()): name for name in APPLICATIONS}
_MOBILENET_SIZES = (96, 128, 160, 192, 224)
DEFAULT_INPUT_SIZE = 96


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained weights were asked for but are not on this machine; the message says how."""


@dataclasses.dataclass
class Backbone:
    """What `resolve` found.

    Attributes:
      network: the Keras model (or layer) mapping the prepared input to features.
      input_shape: ``(H, W, C)`` it expects.
      scaling: one of `SCALINGS`.
      name: the `APPLICATIONS` name when it is one (serialized by name), else None.
      output_key: the output to use when the network returns a dict (a SavedModel signature).
    """

    network: object
    input_shape: tuple
    scaling: str
    name: str | None = None
    output_key: str | None = None


def application_name(name):
    """The `APPLICATIONS` key for ``name`` (``"MobileNetV2"``, ``"mobilenet_v2"``, ...), or
    None when ``name`` is not one."""
    return _ALIASES.get("".join(c for c in str(name).lower() if c.isalnum()))


def keras_cache_dirs():
    """Where ``keras.utils.get_file`` keeps downloaded weights (``cache_subdir="models"``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return [os.path.join(home, "models"), os.path.join("/tmp", ".keras", "models")]


def imagenet_weights(name, size):
    """Path of ``name``'s ImageNet no-top weights in the Keras cache.

    Raises:
      WeightsUnavailableError: the file is not cached (nothing is downloaded).
    """
    app = APPLICATIONS[name]
    file_name = app.weights_name(size)
    for folder in keras_cache_dirs():
        path = os.path.join(folder, file_name)
        if os.path.isfile(path):
            return path
    raise WeightsUnavailableError(
        f"ImageNet weights for {app.builder} are not in the Keras cache and are not downloaded "
        f"here: put {file_name} (from {_WEIGHTS_URL}{app.weights_folder}{file_name}) in "
        f"{keras_cache_dirs()[0]}, or pass weights='/path/to/{file_name}', or weights=None."
    )


def _application(name, input_shape, weights):
    app = APPLICATIONS[name]
    h, w, c = input_shape
    if c != 3:
        raise ValueError(f"{app.builder} takes 3-channel input, got input_shape {input_shape}.")
    if weights == "imagenet":
        size = h if name == "mobilenet_v2" and h == w and h in _MOBILENET_SIZES else 224
        weights = imagenet_weights(name, size)
    elif weights is not None and not os.path.isfile(str(weights)):
        raise WeightsUnavailableError(
            f"weights must be 'imagenet', None or the path of a weights file; no file at "
            f"{weights!r}."
        )
    builder = getattr(keras.applications, app.builder)
    return builder(
        include_top=False,
        weights=weights,
        input_shape=tuple(input_shape),
        pooling=None,
        **dict(app.builder_options),
    )


def with_policy(network, policy):
    """``network`` computing under dtype ``policy``: the network itself when its layers already
    do, else a clone of it (functional / Sequential models) with the same weights. Subclassed
    models are returned as they are."""
    layers = list(network._flatten_layers(include_self=False)) if hasattr(network, "layers") else []
    if not layers or all(layer.dtype_policy.name == policy for layer in layers):
        return network
    try:
        clone = keras.models.clone_model(
            network, clone_function=lambda layer: _layer_with_policy(layer, policy)
        )
    except ValueError:
        return network
    clone.set_weights(network.get_weights())
    return clone


def _layer_with_policy(layer, policy):
    if isinstance(layer, keras.Model):
        return with_policy(layer, policy)
    config = {**layer.get_config(), "dtype": policy}
    return type(layer).from_config(config)


def resolve(
    backbone,
    image_shape,
    weights=None,
    input_size=None,
    input_scaling=None,
    endpoint=None,
    output_key=None,
):
    """Finds the network ``backbone`` names.

    Args:
      backbone: an `APPLICATIONS` name; a `keras.Model` / layer (a zoo model gives its
        ``feature_extractor()``); the path of a ``.keras`` file (the same) or of a SavedModel
        folder (called through ``keras.layers.TFSMLayer``).
      image_shape: ``(H, W, C)`` of the data, the input size of anything without its own.
      weights: for an application: ``"imagenet"`` (from the Keras cache), None or a file path.
      input_size: ``(H, W)`` (or one int) to resize the data to; default: the network's own
        input size, ``DEFAULT_INPUT_SIZE`` for an application, else the data's.
      input_scaling: one of `SCALINGS`; default: the network's own.
      endpoint, output_key: a SavedModel's signature (default ``serving_default``) and which of
        its outputs are the features (default: its only one).

    Raises:
      WeightsUnavailableError, FileNotFoundError, ValueError: with one line saying what.
    """
    image_shape = tuple(int(n) for n in image_shape)
    size = _size(input_size)
    if isinstance(backbone, str):
        name = application_name(backbone)
        if name is not None:
            input_shape = (*(size or (DEFAULT_INPUT_SIZE,) * 2), 3)
            network = _application(name, input_shape, weights)
            scaling = input_scaling or APPLICATIONS[name].scaling
            return Backbone(network, input_shape, _scaling(scaling), name=name)
        return _from_path(backbone, image_shape, size, input_scaling, endpoint, output_key)
    if weights not in (None, "imagenet"):
        raise ValueError("weights applies to a named backbone; this one comes with its own.")
    scaling = input_scaling
    if hasattr(backbone, "feature_extractor"):
        backbone, scaling = backbone.feature_extractor()
        scaling = input_scaling or scaling
    if not isinstance(backbone, keras.layers.Layer):
        raise TypeError(
            f"backbone must be a name in {sorted(APPLICATIONS)}, a path or a Keras model, "
            f"got {type(backbone).__name__}."
        )
    input_shape = _input_shape_for(_input_shape(backbone), image_shape, size)
    return Backbone(backbone, input_shape, _scaling(scaling or "unit"), output_key=output_key)


def _from_path(path, image_shape, size, input_scaling, endpoint, output_key):
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        layer = keras.layers.TFSMLayer(
            path, call_endpoint=endpoint or "serving_default", trainable=False, dtype="float32"
        )
        spec = layer._reloaded_obj.signatures[endpoint or "serving_default"]
        inputs = spec.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError(f"The SavedModel's {layer.call_endpoint} takes {sorted(inputs)}.")
        shape = next(iter(inputs.values())).shape
        own = tuple(shape[1:]) if shape.rank == 4 and None not in shape[1:] else None
        outputs = sorted(spec.structured_outputs)
        if output_key is None and len(outputs) != 1:
            raise ValueError(f"The SavedModel's signature has outputs {outputs}; pass output_key.")
        key = output_key or outputs[0]
        input_shape = _input_shape_for(own, image_shape, size)
        return Backbone(layer, input_shape, _scaling(input_scaling or "unit"), output_key=key)
    if str(path).endswith(".keras") and os.path.isfile(path):
        model = keras.saving.load_model(path, compile=False)
        return resolve(model, image_shape, None, size, input_scaling, endpoint, output_key)
    known = ", ".join(sorted(APPLICATIONS))
    raise FileNotFoundError(
        f"backbone {path!r} is neither a known network ({known}) nor a .keras file nor a "
        "SavedModel folder."
    )


def _size(input_size):
    if input_size is None:
        return None
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if len(size) != 2 or min(int(n) for n in size) < 1:
        raise ValueError(f"input_size must be an int or (H, W), got {input_size!r}.")
    return tuple(int(n) for n in size)


def _scaling(scaling):
    if scaling not in SCALINGS:
        raise ValueError(f"input_scaling must be one of {SCALINGS}, got {scaling!r}.")
    return scaling


def _input_shape_for(own, image_shape, size):
    """The network's own input shape if it has one, else the data's; resized to ``size``."""
    h, w, c = own or image_shape
    return (*(size or (h, w)), c)


def _input_shape(network):
    shape = getattr(network, "input_shape", None)
    if isinstance(shape, tuple) and len(shape) == 4 and None not in shape[1:]:
        return tuple(int(n) for n in shape[1:])
    return None


@keras.saving.register_keras_serializable(package="zoo")
class BackboneInput(keras.layers.Layer):
    """Images ``[N, H, W, C]`` in ``[0, 1]`` -> the backbone's input: resized (bilinear, with
    antialiasing when shrinking) to ``size``, converted to ``channels`` (grayscale <-> RGB,
    or single channels repeated), scaled by ``scaling``. Always float32.

    With ``validate_args``, NaN / Inf or values outside ``[0, 1]`` stop the call with an error
    that says so. Antialiased resizing (``ScaleAndTranslate``) has no XLA kernel, so a layer
    that shrinks its input tells Keras not to JIT-compile the model (``supports_jit``).
    """

    def __init__(self, size, channels, scaling="unit", validate_args=True, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.size = tuple(int(n) for n in size)
        self.channels = int(channels)
        self.scaling = _scaling(scaling)
        if self.scaling in ("caffe", "torch") and self.channels != 3:
            raise ValueError(f"{scaling!r} scaling is for RGB input, not {channels} channels.")
        self.validate_args = bool(validate_args)

    def call(self, images):
        x = tf.cast(images, tf.float32)
        shrinks = x.shape[1] is None or x.shape[1] > self.size[0] or x.shape[2] > self.size[1]
        self.supports_jit = self.supports_jit and not shrinks
        if self.validate_args:
            x = checks.unit_images(x)
        if tuple(x.shape[1:3]) != self.size:
            x = tf.image.resize(x, self.size, antialias=shrinks)
        x = convert_channels(x, self.channels)
        return scale(x, self.scaling)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.size, self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "size": list(self.size),
            "channels": self.channels,
            "scaling": self.scaling,
            "validate_args": self.validate_args,
        }


def convert_channels(x, channels):
    """``[..., c] -> [..., channels]``: RGB to grayscale (ITU-R 601 luma), or the channels
    repeated when ``channels`` is a multiple of ``c`` (grayscale to RGB; a PacGAN
    discriminator's packs). Where ``c`` is known only at run time (a serving signature of any
    image), images ``[N, H, W, c]`` with ``c`` 1, 3 or ``channels``."""
    have = x.shape[-1]
    if have is None:
        if channels == 1:
            x = tf.cond(tf.shape(x)[-1] == 3, lambda: _gray(x), lambda: x[..., :1])
        elif channels == 3:
            x = tf.cond(tf.shape(x)[-1] == 1, lambda: tf.tile(x, [1, 1, 1, 3]), lambda: x)
        return tf.ensure_shape(x, [None, None, None, channels])
    if have == channels:
        return x
    if have == 3 and channels == 1:
        return _gray(x)
    if channels % have == 0:
        return tf.tile(x, [1] * (x.shape.rank - 1) + [channels // have])
    raise ValueError(f"Cannot turn {have}-channel images into {channels} channels.")


def _gray(x):
    return tf.tensordot(x, tf.constant(_LUMA), [[x.shape.rank - 1], [0]])[..., None]


def scale(x, scaling):
    """Images in ``[0, 1]`` scaled as ``scaling`` (see the module docstring)."""
    if scaling == "unit":
        return x
    if scaling == "symmetric":
        return 2.0 * x - 1.0
    if scaling == "pixels":
        return 255.0 * x
    if scaling == "caffe":
        return 255.0 * x[..., ::-1] - tf.constant(_CAFFE_MEAN_BGR)
    return (x - tf.constant(_IMAGENET_MEAN)) / tf.constant(_IMAGENET_STD)
