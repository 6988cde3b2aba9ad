"""NICE's diagonal scaling layer."""

import keras
import tensorflow as tf

from tfflows.bijectors import _data_init
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
    ``S = -s``. ``s`` has the event's shape and starts at zero (the identity), or, with
    ``data_init``, at ``s = log(std(y) + 1e-6)`` per element over the first training batch
    ``y``, so that the latents start with unit variance (`tfflows.bijectors._data_init`): a
    flow whose data reach the top far from the base's scale then does not spend its first
    epochs learning the scale.

    #### Examples

    NICE's top layer over flattened 8x8 images, its scale started from the first training batch:

    ```python
    import tensorflow as tf
    from tfflows import bijectors

    scaling = bijectors.Scaling([64], data_init=True)
    y = 3.0 * tf.random.normal([32, 64])
    x = scaling.inverse(y, training=True)  # sets s = log std(y): x has unit variance
    tf.debugging.assert_near(tf.math.reduce_std(x), 1.0, atol=0.05)
    scaling.forward_log_det_jacobian(x, event_ndims=1)  # sum(s), about 64 log 3
    ```

    #### References

    1. Laurent Dinh, David Krueger and Yoshua Bengio. NICE: Non-linear Independent Components
       Estimation. In *International Conference on Learning Representations (ICLR), Workshop
       Track*, 2015. [arXiv:1410.8516](https://arxiv.org/abs/1410.8516).

    Args:
      event_shape: shape of one event; ``s`` has this shape.
      data_init: initialize ``s`` from the first training batch.
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    takes_training = True

    def __init__(self, event_shape, data_init=False, validate_args=False, name=None):
        self._event_shape = tuple(int(n) for n in event_shape)
        self._data_init = bool(data_init)
        if self._data_init:
            specs = _data_init.specs({"log_scale": self._event_shape})
        else:
            specs = {"log_scale": {"shape": list(self._event_shape), "initializer": "zeros"}}
        self._state = BijectorWeights(specs)
        super().__init__(
            forward_min_event_ndims=len(self._event_shape),
            is_constant_jacobian=not self._data_init,
            validate_args=validate_args,
            name=name,
        )

    @property
    def log_scale(self):
        """``s`` as the bijector uses it (float32)."""
        return self._log_scale(tf.float32)

    def _log_scale(self, dtype, y=None, training=False):
        if not self._data_init:
            return tf.cast(self._state.log_scale, dtype)

        def from_batch():
            axes = list(range(y.shape.rank - len(self._event_shape)))
            return [tf.math.log(tf.math.reduce_std(y, axis=axes) + 1e-6)]

        training = bool(training) and y is not None
        (log_scale,) = _data_init.values(self._state, ("log_scale",), dtype, training, from_batch)
        return log_scale

    def _forward(self, x, training=False):
        return x * tf.exp(self._log_scale(x.dtype))

    def _inverse(self, y, training=False):
        return y * tf.exp(-self._log_scale(y.dtype, y, training))

    def _inverse_and_log_det(self, y, training=False):
        log_scale = self._log_scale(y.dtype, y, training)
        return y * tf.exp(-log_scale), -tf.reduce_sum(log_scale)

    def _forward_log_det_jacobian(self, x, training=False):
        return tf.reduce_sum(self._log_scale(x.dtype))
