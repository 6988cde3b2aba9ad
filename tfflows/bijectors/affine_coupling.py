"""RealNVP affine coupling with a bounded log-scale."""

import keras
import tensorflow as tf

from tfflows.bijectors._coupling import Coupling


@keras.saving.register_keras_serializable(package="tfflows")
class LogScaleBound(keras.layers.Layer):
    """``s = a * tanh(r)`` with a learned factor ``a`` per unit of the last axis (starts at 1).

    Keeps every log-scale inside ``(-|a|, |a|)``: ``exp(s)`` cannot overflow in float16 however
    large the conditioner's raw output gets, while ``a`` can still grow where the data need large
    scales. Always computes in float32.
    """

    def __init__(self, units, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.units = int(units)
        self.factor = self.add_weight(shape=(self.units,), initializer="ones", name="factor")
        self.built = True

    def call(self, raw):
        return tf.cast(self.factor, raw.dtype) * tf.tanh(raw)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="tfflows")
class AffineCoupling(Coupling):
    """RealNVP's affine coupling layer (Dinh et al., 2016).

    With ``x_A, x_B = mask.split(x)``, a conditioner returning ``t`` and a raw log-scale ``r``
    (stacked on the last axis), and ``s = a * tanh(r)`` (`LogScaleBound`):

    ```none
    forward:  y_A = x_A,   y_B = x_B * exp(s(x_A)) + t(x_A)
    inverse:  x_A = y_A,   x_B = (y_B - t(y_A)) * exp(-s(y_A))
    ```

    The Jacobian ``dy/dx`` is block triangular,

    ```none
    J = [[ I,       0            ],
         [ d./dx_A, diag(exp(s)) ]],     log|det J| = sum_{i in B} s_i(x_A),
    ```

    and the inverse log-det is ``-sum_{i in B} s_i(y_A)``, computed from ``y_A`` without running
    the inverse. ``forward_and_log_det`` / ``inverse_and_log_det`` run the conditioner once for
    both. Log-dets are computed in the input dtype (float32 in a flow) even when the
    conditioner runs in float16 / bfloat16.

    #### Examples

    On vectors, with a dense conditioner returning a shift and a log-scale per unit of ``x_B``:

    ```python
    import tensorflow as tf
    from tfflows import bijectors, masks, nets

    mask = masks.half(4)
    coupling = bijectors.AffineCoupling(mask, nets.MLP([32], 2 * mask.transformed_shape[-1]))
    x = tf.random.normal([8, 4])
    y, log_det = coupling.forward_and_log_det(x, event_ndims=1)  # one conditioner pass
    z, inverse_log_det = coupling.inverse_and_log_det(y, event_ndims=1)
    tf.debugging.assert_near(z, x)
    tf.debugging.assert_near(log_det, -inverse_log_det)
    ```

    On images, with RealNVP's checkerboard mask and a convolutional conditioner:

    ```python
    mask = masks.checkerboard((8, 8, 1))
    net = nets.ResNet(filters=16, num_blocks=1, output_channels=2 * mask.transformed_shape[-1])
    coupling = bijectors.AffineCoupling(mask, net)
    images = tf.random.uniform([2, 8, 8, 1])
    coupling.inverse_log_det_jacobian(images, event_ndims=3).shape  # [2]
    ```

    #### References

    1. Laurent Dinh, Jascha Sohl-Dickstein and Samy Bengio. Density estimation using Real NVP. In
       *International Conference on Learning Representations (ICLR)*, 2017.
       [arXiv:1605.08803](https://arxiv.org/abs/1605.08803).

    Args:
      mask: a `tfflows.masks.Mask` (or its config) fixing the event shape and the split.
      conditioner: Keras layer mapping ``[batch, *mask.conditioning_shape]`` to
        ``[batch, *mask.transformed_shape[:-1], 2 * mask.transformed_shape[-1]]``: the shift,
        then the raw log-scale, on the last axis. A conditioner whose last layer starts at zero
        makes the coupling start as the identity.
      context_size: width of the context each call then takes (0: unconditional; see
        `Coupling`).
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    def __init__(self, mask, conditioner, context_size=0, validate_args=False, name=None):
        super().__init__(mask, conditioner, context_size, validate_args=validate_args, name=name)
        self._log_scale_bound = LogScaleBound(self._mask.transformed_shape[-1])

    def _conditioner_output_shape(self):
        *outer, units = self._mask.transformed_shape
        return (*outer, 2 * units)

    @property
    def keras_layers(self):
        return [*super().keras_layers, self._log_scale_bound]

    def shift_and_log_scale(self, x_a, context=None):
        """``(t(x_A), s(x_A))``, both shaped like ``x_B``; also usable as `tfb.RealNVP`'s fn."""
        shift, raw = tf.split(self._condition(x_a, context), 2, axis=-1)
        return shift, self._log_scale_bound(raw)

    def _forward(self, x, context=None):
        return self._forward_and_log_det(x, context)[0]

    def _forward_and_log_det(self, x, context=None):
        x_a, x_b = self._mask.split(x)
        shift, log_scale = self.shift_and_log_scale(x_a, context)
        y = self._mask.merge(x, x_b * tf.exp(log_scale) + shift)
        return y, self._mask.sum_transformed(log_scale)

    def _inverse(self, y, context=None):
        return self._inverse_and_log_det(y, context)[0]

    def _inverse_and_log_det(self, y, context=None):
        y_a, y_b = self._mask.split(y)
        shift, log_scale = self.shift_and_log_scale(y_a, context)
        x = self._mask.merge(y, (y_b - shift) * tf.exp(-log_scale))
        return x, -self._mask.sum_transformed(log_scale)

    def _forward_log_det_jacobian(self, x, context=None):
        x_a, _ = self._mask.split(x)
        return self._mask.sum_transformed(self.shift_and_log_scale(x_a, context)[1])

    def _inverse_log_det_jacobian(self, y, context=None):
        y_a, _ = self._mask.split(y)
        return -self._mask.sum_transformed(self.shift_and_log_scale(y_a, context)[1])
