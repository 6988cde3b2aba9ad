"""The part that NICE and RealNVP couplings share: running the conditioner on ``x_A``."""

import keras
import tensorflow as tf

from tfflows import masks as masks_lib
from tfflows.bijectors._base import FlowBijector, build_layer, with_context


class Coupling(FlowBijector):
    """A coupling bijector: ``x_A`` passes through and conditions the transform of ``x_B``.

    Subclasses define how the conditioner's output transforms ``x_B``. ``conditioner`` is a Keras
    layer (anything callable on a ``[batch, *mask.conditioning_shape]`` tensor works, but only a
    Keras layer has its weights tracked, trained and saved). It runs in whatever compute dtype its
    dtype policy gives it (float16 / bfloat16 under mixed precision); its output is cast to the
    input's dtype before any bijector arithmetic.

    With ``context_size > 0`` the coupling is conditional: each call takes a ``context``
    ``[batch, context_size]`` (what the flow models ``p(x | context)`` given: a one-hot class, an
    embedding), concatenated to ``x_A`` on the last axis before the conditioner (for image
    events, the same vector at every pixel), so the conditioner takes
    ``[batch, *conditioning_shape[:-1], conditioning_shape[-1] + context_size]``.
    """

    _constant_jacobian = False

    def __init__(self, mask, conditioner, context_size=0, validate_args=False, name=None):
        if isinstance(mask, dict):
            mask = masks_lib.Mask.from_config(mask)
        if not isinstance(mask, masks_lib.Mask):
            raise TypeError(f"mask must be a tfflows.masks.Mask, got {type(mask).__name__}.")
        if int(context_size) != context_size or context_size < 0:
            raise ValueError(
                f"{type(self).__name__} context_size must be a whole number >= 0, got "
                f"{context_size!r}."
            )
        self._mask = mask
        self._conditioner = conditioner
        self._context_size = int(context_size)
        self._event_shape = mask.event_shape
        super().__init__(
            forward_min_event_ndims=mask.event_ndims,
            is_constant_jacobian=self._constant_jacobian,
            validate_args=validate_args,
            name=name,
        )
        *outer, channels = mask.conditioning_shape
        inputs = (*outer, channels + self._context_size)
        out = build_layer(conditioner, inputs)
        want = self._conditioner_output_shape()
        if tuple(out.shape[1:]) != want:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: its conditioner maps conditioning events "
                f"of shape {list(inputs)} to shape {out.shape[1:].as_list()}, "
                f"but {mask!r} needs {list(want)}."
            )

    @property
    def mask(self):
        return self._mask

    @property
    def conditioner(self):
        return self._conditioner

    @property
    def context_size(self):
        return self._context_size

    @property
    def takes_context(self):
        """Whether each call takes a ``context`` (`tfflows.bijectors._walk` passes it)."""
        return self._context_size > 0

    @property
    def keras_layers(self):
        return [self._conditioner] if isinstance(self._conditioner, keras.layers.Layer) else []

    def _conditioner_output_shape(self):
        return self._mask.transformed_shape

    def _condition(self, x_a, context=None):
        """Runs the conditioner on ``x_A`` (and the ``context``, of the same batch shape) of any
        batch shape; returns float of ``x_a.dtype``."""
        ndims = self._mask.event_ndims
        batch_shape = tf.shape(x_a)[: tf.rank(x_a) - ndims]
        flat = tf.reshape(x_a, [-1, *self._mask.conditioning_shape])
        flat = with_context(self, flat, context, self._context_size)
        out = tf.cast(self._conditioner(flat), x_a.dtype)
        return tf.reshape(out, tf.concat([batch_shape, tf.shape(out)[1:]], axis=0))
