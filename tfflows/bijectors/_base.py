"""What every tfflows bijector shares: Keras serialization, its Keras state, input checks."""

import functools
import inspect
import re

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import cache_util

from tfflows import masks

# Constructor arguments of older configs that held Keras state, now restored by position.
_RETIRED_ARGUMENTS = ("state", "log_scale_bound")


class _UncachedBijectorCache(cache_util.BijectorCache):
    """Computes every call afresh.

    TFP caches each bijector's outputs keyed on the input tensor and the bijector's parameters.
    That is right for fixed parameters, but ours are Keras weights that training changes, so a
    cached eager result (say ``log_prob(x)`` before and after ``fit``, same ``x``) would be
    stale.
    """

    def _lookup(self, input, forward_name, inverse_name, **kwargs):
        del inverse_name
        return self._invoke(input, forward_name, kwargs, {})

    def _attributes(self, input, fn_name, **kwargs):
        return {}


def unique_name(base):
    """``base_1``, ``base_2``, ...: TFP's Chain routes per-call kwargs by bijector name.

    Counted by Keras (``keras.backend.get_uid``), so the numbering restarts with
    ``keras.backend.clear_session()``, as Keras layer names do.
    """
    return f"{base}_{keras.backend.get_uid(base)}"


def _snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _recording_arguments(init):
    """Wraps a bijector's ``__init__`` to keep the arguments of the outermost constructor call
    (a subclass's, when constructors chain) as ``self._arguments``."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        if "_arguments" not in vars(self):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(signature.parameters)))  # self
            object.__setattr__(self, "_arguments", arguments)  # untracked by tf.Module
        init(self, *args, **kwargs)

    return __init__


def _serialized(value):
    """A constructor argument as config: Keras objects serialized, masks as their config."""
    if isinstance(value, masks.Mask):
        return value.get_config()
    if isinstance(value, (list, tuple)):
        return [_serialized(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "get_config"):
        return keras.saving.serialize_keras_object(value)
    return value


def _is_serialized(value):
    return isinstance(value, dict) and "class_name" in value


def deserialize_config(config):
    """Rebuilds the Keras objects (and lists of them) serialized in a ``get_config`` dict."""
    config = dict(config)
    for key, value in config.items():
        if _is_serialized(value):
            config[key] = keras.saving.deserialize_keras_object(value)
        elif isinstance(value, list) and value and all(_is_serialized(v) for v in value):
            config[key] = [keras.saving.deserialize_keras_object(v) for v in value]
    return config


def per_channel(event_shape, kind):
    """``(event_shape, units, positions)`` of a bijector with a parameter per channel:
    ``units`` is ``[C]`` for image events ``[H, W, C]`` and ``[D]`` for vectors, ``positions``
    the values sharing each parameter (``H * W``, or 1). Raises ValueError for other ranks."""
    event_shape = tuple(int(n) for n in event_shape)
    if len(event_shape) not in (1, 3):
        raise ValueError(f"{kind} needs an event shape [D] or [H, W, C], got {list(event_shape)}.")
    return event_shape, list(event_shape[-1:]), int(np.prod(event_shape[:-1], dtype=np.int64))


def with_context(bijector, inputs, context, size):
    """``inputs`` ``[n, *outer, channels]`` with the ``context`` (``[..., size]``, one row per
    example) appended on the last axis, the same vector at every ``outer`` position, for a
    bijector conditioned on contexts of ``size`` (0: none, ``inputs`` unchanged). Raises
    ValueError for a missing context, or one given to an unconditional bijector."""
    where = f"{type(bijector).__name__} {bijector.name!r}"
    if not size:
        if context is not None:
            raise ValueError(f"{where} takes no context.")
        return inputs
    if context is None:
        raise ValueError(
            f"{where} is conditional (context_size={size}): pass context=[batch, {size}]."
        )
    outer = [1] * (inputs.shape.rank - 2)
    context = tf.reshape(tf.cast(context, inputs.dtype), [-1, *outer, size])
    context = tf.broadcast_to(context, tf.concat([tf.shape(inputs)[:-1], [size]], axis=0))
    return tf.concat([inputs, context], axis=-1)


def build_layer(layer, input_shape):
    """Calls ``layer`` once on zeros of ``[1, *input_shape]`` so that its weights exist now.

    Bijectors know every shape from their mask or event shape, so their Keras state is created
    at construction; a `.keras` file can then be loaded into a freshly configured bijector.
    Returns the output, for shape checks.
    """
    return layer(tf.zeros((1, *input_shape)))


class FlowBijector(tfp.bijectors.Bijector):
    """Base class of tfflows bijectors.

    A subclass's constructor takes what a user would write (ending in ``validate_args=False,
    name=None``), sets ``self._event_shape`` (None when any event shape is accepted) and calls
    ``super().__init__(validate_args=..., name=..., **tfp_arguments)`` with TFP's structural
    arguments (``forward_min_event_ndims``, ``is_constant_jacobian``, ...). The base does the
    rest: the constructor's arguments become TFP's ``parameters`` and the Keras config
    (`get_config`, Keras objects in it serialized), and an unnamed bijector is named after its
    class, ``affine_coupling_3`` (`unique_name`). Weights are created in the constructor, in
    Keras layers listed by ``keras_layers``; a `.keras` file restores them by position.

    #### Examples

    A learned shift ``y = x + b``, the smallest bijector with weights of its own:

    ```python
    import keras
    import tensorflow as tf
    from tfflows import bijectors


    @keras.saving.register_keras_serializable(package="docs_example")
    class Shift(bijectors.FlowBijector):
        def __init__(self, event_size, validate_args=False, name=None):
            self._event_shape = (int(event_size),)
            self._state = bijectors.BijectorWeights({"shift": {"shape": [int(event_size)]}})
            super().__init__(
                forward_min_event_ndims=1,
                is_constant_jacobian=True,
                validate_args=validate_args,
                name=name,
            )

        def _forward(self, x):
            return x + tf.cast(self._state.shift, x.dtype)

        def _inverse(self, y):
            return y - tf.cast(self._state.shift, y.dtype)

        def _forward_log_det_jacobian(self, x):
            return tf.zeros([], x.dtype)


    shift = Shift(3)
    shift.get_config()  # {"event_size": 3, "validate_args": False, "name": "shift_1"}
    shift.keras_layers  # [its BijectorWeights layer]: tfflows.Flow trains and saves it
    shift.inverse(shift.forward(tf.ones([2, 3])))  # ones again; [2, 4] inputs: ValueError
    ```

    #### References

    1. Joshua V. Dillon, Ian Langmore, Dustin Tran, Eugene Brevdo, Srinivas Vasudevan, Dave Moore,
       Brian Patton, Alex Alemi, Matt Hoffman and Rif A. Saurous. TensorFlow Distributions.
       [arXiv:1711.10604](https://arxiv.org/abs/1711.10604), 2017.
    """

    _event_shape = None
    _cache = _UncachedBijectorCache()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            cls.__init__ = _recording_arguments(vars(cls)["__init__"])

    def __init__(self, *, validate_args=False, name=None, **tfp_arguments):
        super().__init__(
            validate_args=validate_args,
            parameters=dict(vars(self).get("_arguments", {})),
            name=name or unique_name(_snake_case(type(self).__name__)),
            **tfp_arguments,
        )

    # Inputs are checked once, where they come in: TFP's public methods, which call the hooks
    # (``_forward``, ``_inverse``, ``_*_log_det_jacobian``) with checked tensors.
    def forward(self, x, name="forward", **kwargs):
        return super().forward(self._check(x, "forward"), name=name, **kwargs)

    def inverse(self, y, name="inverse", **kwargs):
        return super().inverse(self._check(y, "inverse"), name=name, **kwargs)

    def forward_log_det_jacobian(
        self, x, event_ndims=None, name="forward_log_det_jacobian", **kwargs
    ):
        x = self._check(x, "forward")
        return super().forward_log_det_jacobian(x, event_ndims, name=name, **kwargs)

    def inverse_log_det_jacobian(
        self, y, event_ndims=None, name="inverse_log_det_jacobian", **kwargs
    ):
        y = self._check(y, "inverse")
        return super().inverse_log_det_jacobian(y, event_ndims, name=name, **kwargs)

    def forward_and_log_det(self, x, event_ndims, **kwargs):
        """``(y, log|det dy/dx|)`` in one pass; `tfflows.Flow` uses it where samples are scored.

        Subclasses whose forward pass and log-det share work override
        ``_forward_and_log_det(x, **kwargs)``, as for `inverse_and_log_det`.
        """
        return self._and_log_det("forward", x, event_ndims, kwargs)

    def inverse_and_log_det(self, y, event_ndims, **kwargs):
        """``(x, log|det dx/dy|)`` in one pass; `tfflows.Flow` uses it for density evaluation.

        Subclasses whose inverse and log-det share work (couplings run their conditioner once)
        override ``_inverse_and_log_det(y, **kwargs)``; the log-det is then summed over the
        ``event_ndims - inverse_min_event_ndims`` outer event dimensions, as TFP does.
        """
        return self._and_log_det("inverse", y, event_ndims, kwargs)

    def _and_log_det(self, direction, x, event_ndims, kwargs):
        x = self._check(x, direction)
        one_pass = getattr(self, f"_{direction}_and_log_det", None)
        if one_pass is None:  # TFP's methods: x is checked already
            transform = getattr(super(), direction)
            log_det = getattr(super(), f"{direction}_log_det_jacobian")
            return transform(x, **kwargs), log_det(x, event_ndims, **kwargs)
        y, log_det = one_pass(x, **kwargs)
        min_ndims = getattr(self, f"{direction}_min_event_ndims")
        if event_ndims > min_ndims:  # log-dets may be per example or constant (a scalar)
            parts = tf.shape(x)[: tf.rank(x) - min_ndims]
            axes = list(range(min_ndims - event_ndims, 0))
            log_det = tf.reduce_sum(tf.broadcast_to(log_det, parts), axis=axes)
        return y, log_det

    @property
    def keras_layers(self):
        """The Keras layers that hold this bijector's weights (see `tfflows.Flow`): its own
        `BijectorWeights` (``self._state``), if it has one."""
        state = vars(self).get("_state")
        return [state] if state is not None else []

    @property
    def event_shape(self):
        return self._event_shape

    def get_config(self):
        """The constructor's arguments, with the bijector's actual name."""
        config = {key: _serialized(value) for key, value in vars(self)["_arguments"].items()}
        return {**config, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = {k: v for k, v in config.items() if k not in _RETIRED_ARGUMENTS}
        return cls(**deserialize_config(config))

    def _check(self, x, direction):
        """Validates an input to ``direction`` ('forward' or 'inverse') and returns it.

        Run by the public methods, before any hook. Always checks (cheaply, on static shapes)
        that ``x`` is floating point and that its trailing dimensions are this bijector's event
        shape; with ``validate_args`` also checks that every value is finite.
        """
        x = tf.convert_to_tensor(x)
        where = f"{type(self).__name__} {self.name!r} ({direction})"
        if not x.dtype.is_floating:
            raise TypeError(f"{where} needs floating-point input, got dtype {x.dtype.name}.")
        expected = self._expected_shape(direction)
        if expected is not None and x.shape.rank is not None:
            ndims = len(expected)
            got = x.shape[x.shape.rank - ndims :] if x.shape.rank >= ndims else None
            if got is None or not got.is_compatible_with(expected):
                raise ValueError(
                    f"{where} expects events of shape {list(expected)} in the last {ndims} "
                    f"dimension(s); got input of shape {x.shape.as_list()}."
                )
        if self.validate_args:
            x = tf.debugging.assert_all_finite(x, f"{where} input contains NaN or Inf")
        return x

    def _expected_shape(self, direction):
        del direction
        return self._event_shape


@keras.saving.register_keras_serializable(package="tfflows")
class BijectorWeights(keras.layers.Layer):
    """Holds a bijector's own weights so that Keras tracks, trains and saves them.

    ``specs`` maps a weight name to ``{"shape": [...], "initializer": ..., "trainable": bool}``;
    each weight is an attribute of this layer, created at construction in float32. Non-trainable
    weights (running statistics) average across replicas under `tf.distribute`.
    """

    def __init__(self, specs, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.specs = {name: dict(spec) for name, spec in specs.items()}
        for name, spec in self.specs.items():
            trainable = spec.get("trainable", True)
            weight = self.add_weight(
                shape=tuple(spec["shape"]),
                initializer=spec.get("initializer", "zeros"),
                trainable=trainable,
                aggregation="none" if trainable else "mean",
                name=name,
            )
            setattr(self, name, weight)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "specs": self.specs}
