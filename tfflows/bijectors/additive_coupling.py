"""NICE additive coupling."""

import keras
import tensorflow as tf

from tfflows.bijectors._coupling import Coupling


@keras.saving.register_keras_serializable(package="tfflows")
class AdditiveCoupling(Coupling):
    """NICE's additive coupling layer (Dinh et al., 2014).

    With ``x_A, x_B = mask.split(x)`` and a conditioner network ``m``:

    ```none
    forward:  y_A = x_A,   y_B = x_B + m(x_A)
    inverse:  x_A = y_A,   x_B = y_B - m(y_A)
    ```

    The Jacobian ``dy/dx`` is block triangular with identity blocks on the diagonal,

    ```none
    J = [[ I,        0 ],
         [ dm/dx_A,  I ]],     log|det J| = 0,
    ```

    so the bijector is volume preserving and ``is_constant_jacobian``.

    #### Examples

    ```python
    import tensorflow as tf
    from tfflows import bijectors, masks, nets

    mask = masks.alternating(6)  # even units condition, odd units are shifted
    coupling = bijectors.AdditiveCoupling(mask, nets.MLP([32, 32], mask.transformed_shape[-1]))
    x = tf.random.normal([4, 6])
    y = coupling.forward(x)
    tf.debugging.assert_near(coupling.inverse(y), x)
    coupling.forward_log_det_jacobian(x, event_ndims=1)  # 0.0: volume preserving
    ```

    #### References

    1. Laurent Dinh, David Krueger and Yoshua Bengio. NICE: Non-linear Independent Components
       Estimation. In *International Conference on Learning Representations (ICLR), Workshop
       Track*, 2015. [arXiv:1410.8516](https://arxiv.org/abs/1410.8516).

    Args:
      mask: a `tfflows.masks.Mask` (or its config) fixing the event shape and the split.
      conditioner: Keras layer mapping ``[batch, *mask.conditioning_shape]`` to
        ``[batch, *mask.transformed_shape]`` (e.g. `tfflows.nets.MLP`,
        `tfflows.nets.ResNet`). It is called once at construction so that its weights exist.
      context_size: width of the context each call then takes (0: unconditional; see
        `Coupling`).
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    _constant_jacobian = True

    def shift(self, x_a, context=None):
        """The conditioner's shift ``m(x_A)`` for conditioning values ``x_A``."""
        return self._condition(x_a, context)

    def _forward(self, x, context=None):
        x_a, x_b = self._mask.split(x)
        return self._mask.merge(x, x_b + self.shift(x_a, context))

    def _inverse(self, y, context=None):
        y_a, y_b = self._mask.split(y)
        return self._mask.merge(y, y_b - self.shift(y_a, context))

    def _forward_log_det_jacobian(self, x, context=None):
        return tf.zeros([], dtype=x.dtype)
