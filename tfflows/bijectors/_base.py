"""What every tfflows bijector shares: Keras serialization, its Keras state, input checks."""

import itertools

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import cache_util

_name_counters = {}


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
    """``base_0``, ``base_1``, ...: TFP's Chain routes per-call kwargs by bijector name."""
    counter = _name_counters.setdefault(base, itertools.count())
    return f"{base}_{next(counter)}"


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


def build_layer(layer, input_shape):
    """Calls ``layer`` once on zeros of ``[1, *input_shape]`` so that its weights exist now.

    Bijectors know every shape from their mask or event shape, so their Keras state is created
    at construction; a `.keras` file can then be loaded into a freshly configured bijector.
    Returns the output, for shape checks.
    """
    return layer(tf.zeros((1, *input_shape)))


class FlowBijector(tfp.bijectors.Bijector):
    """Base class of tfflows bijectors.

    Subclasses call ``super().__init__`` with TFP's arguments, set ``self._event_shape`` (or
    None when any event shape is accepted) and implement ``get_config`` returning their
    constructor arguments; Keras objects in it are serialized with
    ``keras.saving.serialize_keras_object``.
    """

    _event_shape = None
    _cache = _UncachedBijectorCache()

    def inverse_and_log_det(self, y, event_ndims, **kwargs):
        """``(x, log|det dx/dy|)`` in one pass; `tfflows.Flow` uses it for density evaluation.

        Subclasses whose inverse and log-det share work (couplings run their conditioner once)
        override ``_inverse_and_log_det(y, **kwargs)``; the log-det is then summed over the
        ``event_ndims - forward_min_event_ndims`` outer event dimensions, as TFP does.
        """
        if not hasattr(self, "_inverse_and_log_det"):
            return (
                self.inverse(y, **kwargs),
                self.inverse_log_det_jacobian(y, event_ndims, **kwargs),
            )
        x, ildj = self._inverse_and_log_det(tf.convert_to_tensor(y), **kwargs)
        extra = event_ndims - self.inverse_min_event_ndims
        if extra > 0:
            ildj = tf.reduce_sum(ildj, axis=list(range(-extra, 0)))
        return x, ildj

    @property
    def keras_layers(self):
        """The Keras layers that hold this bijector's weights (see `tfflows.Flow`)."""
        return []

    @property
    def event_shape(self):
        return self._event_shape

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_config(config))

    def _base_config(self):
        return {"validate_args": self.validate_args, "name": self.name}

    def _check(self, x, direction):
        """Validates an input to ``direction`` ('forward' or 'inverse') and returns it.

        Always checks (cheaply, on static shapes) that ``x`` is floating point and that its
        trailing dimensions are this bijector's event shape; with ``validate_args`` also checks
        that every value is finite.
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
