"""Neural spline coupling: a monotone rational-quadratic spline per transformed unit."""

import keras
import tensorflow as tf

from tfflows.bijectors import _spline
from tfflows.bijectors._coupling import Coupling


@keras.saving.register_keras_serializable(package="tfflows")
class RationalQuadraticCoupling(Coupling):
    """The rational-quadratic spline coupling of Durkan, Bekasov, Murray and Papamakarios,
    "Neural Spline Flows", NeurIPS 2019, with linear (identity) tails.

    With ``x_A, x_B = mask.split(x)`` and a conditioner giving ``3K - 1`` spline parameters
    per unit of ``x_B`` (``K`` bins on ``[-B, B]``; `tfflows.bijectors._spline` builds the
    knots and writes out the spline, its derivative and its inverse):

    ```none
    forward:  y_A = x_A,   y_i = g_i(x_i; theta_i(x_A))   for i in B
    inverse:  x_A = y_A,   x_i = g_i^{-1}(y_i; theta_i(y_A))
    ```

    Each ``g_i`` is monotone, maps ``[-B, B]`` onto itself and is the identity outside (its
    slope is 1 at both ends), so that no input can leave the domain. The Jacobian is block
    triangular with a diagonal block,

    ```none
    J = [[ I,       0                    ],
         [ d./dx_A, diag(g_i'(x_i))      ]],     log|det J| = sum_{i in B} log g_i'(x_i),
    ```

    with ``g_i' = 1`` outside ``[-B, B]``. The spline arithmetic is float32 whatever the
    conditioner's compute dtype (float64 for float64 inputs), the log-det in the input dtype.
    A conditioner whose last layer starts at zero makes the coupling start as the identity.

    #### Examples

    ```python
    import tensorflow as tf
    from tfflows import bijectors, masks, nets

    bins = 8
    mask = masks.half(4)
    net = nets.MLP([32], (3 * bins - 1) * mask.transformed_shape[-1])
    spline = bijectors.RationalQuadraticCoupling(mask, net, bins=bins, bound=3.0)
    x = tf.random.normal([8, 4])
    y, log_det = spline.forward_and_log_det(x, event_ndims=1)
    tf.debugging.assert_near(spline.inverse(y), x, atol=1e-5)
    ```

    #### References

    1. Conor Durkan, Artur Bekasov, Iain Murray and George Papamakarios. Neural Spline Flows. In
       *Advances in Neural Information Processing Systems 32 (NeurIPS)*, 2019.
       [arXiv:1906.04032](https://arxiv.org/abs/1906.04032).
    2. John A. Gregory and Richard Delbourgo. Piecewise Rational Quadratic Interpolation to
       Monotonic Data. *IMA Journal of Numerical Analysis*, 2(2):123-130, 1982.

    Args:
      mask: a `tfflows.masks.Mask` (or its config) fixing the event shape and the split.
      conditioner: Keras layer mapping ``[batch, *mask.conditioning_shape]`` to
        ``[batch, *mask.transformed_shape[:-1], (3 * bins - 1) * mask.transformed_shape[-1]]``:
        for each unit of ``x_B`` its ``bins`` widths, ``bins`` heights and ``bins - 1`` inner
        slopes, unnormalized, consecutive on the last axis.
      bins: ``K``, the number of bins (at least 2).
      bound: ``B``, the half-width of the interval the spline covers.
      context_size: width of the context each call then takes (0: unconditional; see
        `Coupling`).
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    def __init__(
        self, mask, conditioner, bins=8, bound=3.0, context_size=0, validate_args=False, name=None
    ):
        if int(bins) != bins or bins < 2:
            raise ValueError(f"RationalQuadraticCoupling bins must be an integer >= 2, got {bins}.")
        if not bound > 0:
            raise ValueError(f"RationalQuadraticCoupling bound must be positive, got {bound}.")
        self._bins, self._bound = int(bins), float(bound)
        super().__init__(mask, conditioner, context_size, validate_args=validate_args, name=name)

    @property
    def bins(self):
        return self._bins

    @property
    def bound(self):
        return self._bound

    def _conditioner_output_shape(self):
        *outer, units = self._mask.transformed_shape
        return (*outer, _spline.num_parameters(self._bins) * units)

    def spline_parameters(self, x_a, context=None):
        """The unnormalized parameters ``[..., *transformed_shape, 3K - 1]`` for ``x_A``."""
        out = self._condition(x_a, context)
        per_unit = [self._mask.transformed_shape[-1], _spline.num_parameters(self._bins)]
        shape = tf.concat([tf.shape(out)[:-1], per_unit], axis=0)
        return tf.reshape(out, shape)

    def _transform(self, x, inverse, context):
        x_a, x_b = self._mask.split(x)
        values, log_det = _spline.rational_quadratic(
            x_b, self.spline_parameters(x_a, context), self._bound, inverse=inverse
        )
        return self._mask.merge(x, values), self._mask.sum_transformed(log_det)

    def _forward(self, x, context=None):
        return self._transform(x, False, context)[0]

    def _forward_and_log_det(self, x, context=None):
        return self._transform(x, False, context)

    def _inverse(self, y, context=None):
        return self._transform(y, True, context)[0]

    def _inverse_and_log_det(self, y, context=None):
        return self._transform(y, True, context)

    def _forward_log_det_jacobian(self, x, context=None):
        return self._transform(x, False, context)[1]

    def _inverse_log_det_jacobian(self, y, context=None):
        return self._transform(y, True, context)[1]
