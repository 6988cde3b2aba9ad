"""Glow's activation normalization, initialized from the data."""

import keras
import tensorflow as tf

from tfflows.bijectors import _data_init
from tfflows.bijectors._base import BijectorWeights, FlowBijector, per_channel


@keras.saving.register_keras_serializable(package="tfflows")
class ActNorm(FlowBijector):
    """A learned per-channel affine map that starts by normalizing the data (Kingma and
    Dhariwal, 2018).

    With a log-scale ``s`` and a bias ``b`` per channel (per unit for vector events):

    ```none
    inverse (data -> latent):  x = y * exp(s) + b
    forward (latent -> data):  y = (x - b) * exp(-s)
    J_inverse = diag(exp(s)),   log|det J_inverse| = P * sum_c s_c
    ```

    with ``P`` the positions sharing a channel's parameters (``H * W`` for images, 1 for
    vectors). Data-dependent initialization: the first training batch ``y`` sets

    ```none
    s = -log(std(y) + 1e-6),   b = -mean(y) * exp(s)
    ```

    (per channel, over the batch and the spatial positions) so that ``x`` has mean 0 and
    standard deviation 1 per channel on that batch; after that ``s`` and ``b`` are ordinary
    trainable weights. Unlike `BatchNorm`, training and inference compute the same function and
    there are no running statistics; batches of any size work, one example included. How the
    initialization is held and kept across replicas, skipped steps and saved files:
    `tfflows.bijectors._data_init`.

    #### Examples

    ```python
    import tensorflow as tf
    from tfflows import bijectors

    actnorm = bijectors.ActNorm([8, 8, 3])
    images = 5.0 * tf.random.normal([16, 8, 8, 3]) + 2.0
    z = actnorm.inverse(images, training=True)  # the first training batch initializes s, b
    actnorm.initialized  # True
    tf.debugging.assert_near(tf.reduce_mean(z, axis=[0, 1, 2]), tf.zeros([3]), atol=1e-4)
    actnorm.inverse_log_det_jacobian(images, event_ndims=3)  # 64 * sum(s), as for any batch
    ```

    #### References

    1. Diederik P. Kingma and Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
       Convolutions. In *Advances in Neural Information Processing Systems 31 (NeurIPS)*, 2018.
       [arXiv:1807.03039](https://arxiv.org/abs/1807.03039).

    Args:
      event_shape: ``[D]`` or ``[H, W, C]``.
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    takes_training = True

    def __init__(self, event_shape, validate_args=False, name=None):
        self._event_shape, units, self._positions = per_channel(event_shape, "ActNorm")
        self._state = BijectorWeights(_data_init.specs({"log_scale": units, "bias": units}))
        super().__init__(
            forward_min_event_ndims=len(self._event_shape),
            validate_args=validate_args,
            name=name,
        )

    @property
    def initialized(self):
        """Whether a training batch has set the initial scale and bias."""
        return bool(self._state.initialized.numpy() >= 0.5)

    def _scale_and_bias(self, x, training):
        def from_batch():
            axes = list(range(x.shape.rank - 1))
            mean, variance = tf.nn.moments(x, axes=axes)
            log_scale = -tf.math.log(tf.sqrt(variance) + 1e-6)
            return [log_scale, -mean * tf.exp(log_scale)]

        return _data_init.values(
            self._state, ("log_scale", "bias"), x.dtype, bool(training), from_batch
        )

    def _log_det(self, log_scale):
        return self._positions * tf.reduce_sum(log_scale)

    def _inverse_and_log_det(self, y, training=False):
        log_scale, bias = self._scale_and_bias(y, training)
        return y * tf.exp(log_scale) + bias, self._log_det(log_scale)

    def _inverse(self, y, training=False):
        return self._inverse_and_log_det(y, training)[0]

    def _inverse_log_det_jacobian(self, y, training=False):
        return self._inverse_and_log_det(y, training)[1]

    def _forward_and_log_det(self, x, training=False):
        del training  # Sampling never initializes: a batch of latents has no data statistics.
        log_scale, bias = self._scale_and_bias(x, False)
        return (x - bias) * tf.exp(-log_scale), -self._log_det(log_scale)

    def _forward(self, x, training=False):
        return self._forward_and_log_det(x, training)[0]

    def _forward_log_det_jacobian(self, x, training=False):
        return self._forward_and_log_det(x, training)[1]
