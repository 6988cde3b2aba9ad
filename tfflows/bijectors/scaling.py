"""NICE's diagonal scaling layer."""

import keras
import tensorflow as tf

from tfflows.bijectors._base import BijectorWeights, FlowBijector


@keras.saving.register_keras_serializable(package="tfflows")
class Scaling(FlowBijector):
    """Elementwise scaling by ``exp(s)`` with a learned log-scale ``s`` (NICE's top layer).

    ```none
    forward:  y = exp(s) * x           inverse:  x = exp(-s) * y
    J = diag(exp(s)),                  log|det J| = sum_i s_i
    ```

    NICE writes its top layer in the data -> latent direction as ``h = exp(S) * h'`` with
    ``log p(x) = sum_d log p_H(h_d) + sum_d S_d``; that is this bijector's inverse with
    ``S = -s``. ``s`` starts at zero (the identity) and has the event's shape.

    Args:
      event_shape: shape of one event; ``s`` has this shape.
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    def __init__(self, event_shape, validate_args=False, name=None):
        self._event_shape = tuple(int(n) for n in event_shape)
        self._state = BijectorWeights(
            {"log_scale": {"shape": list(self._event_shape), "initializer": "zeros"}}
        )
        super().__init__(
            forward_min_event_ndims=len(self._event_shape),
            is_constant_jacobian=True,
            validate_args=validate_args,
            name=name,
        )

    @property
    def keras_layers(self):
        return [self._state]

    @property
    def log_scale(self):
        return self._state.log_scale

    def _log_scale(self, dtype):
        return tf.cast(self._state.log_scale, dtype)

    def _forward(self, x):
        return x * tf.exp(self._log_scale(x.dtype))

    def _inverse(self, y):
        return y * tf.exp(-self._log_scale(y.dtype))

    def _forward_log_det_jacobian(self, x):
        return tf.reduce_sum(self._log_scale(x.dtype))
