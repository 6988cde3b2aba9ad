"""Factoring out half of the channels: RealNVP's multi-scale architecture."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfflows.bijectors import _walk
from tfflows.bijectors._base import FlowBijector


@keras.saving.register_keras_serializable(package="tfflows")
class FactorOut(FlowBijector):
    """Sends the last channels straight to the latent; ``bijectors`` transform the rest.

    For an image event ``[H, W, C]`` split on channels into a kept part ``x_k`` (the first
    ``C - C // 2`` channels) and a factored-out part ``x_o`` (the last ``C // 2``), with ``g`` the
    inner bijectors (data side first, shape-preserving on ``[H, W, C - C // 2]``):

    ```none
    inverse (data -> latent):  z = concat(g^{-1}(x_k), x_o)
    forward (latent -> data):  x = concat(g(z_k), z_o)
    J = [[ J_g, 0 ],
         [ 0,   I ]],     log|det J| = log|det J_g|
    ```

    Nesting a `FactorOut` at the end of each scale gives RealNVP's multi-scale flow: every scale
    works on half the channels of the one before, and the factored-out halves are latent
    variables at their own resolution. Inner bijectors that take ``training`` or a ``context``
    get them.

    #### Examples

    One scale of a multi-scale flow on ``[8, 8, 4]``: a coupling on the kept two channels, the
    other two sent straight to the latent:

    ```python
    import tensorflow as tf
    from tfflows import bijectors, masks, nets

    mask = masks.checkerboard((8, 8, 2))
    inner = [bijectors.AffineCoupling(mask, nets.ResNet(16, 1, 2 * 2))]
    scale = bijectors.FactorOut(inner, [8, 8, 4])
    x = tf.random.normal([3, 8, 8, 4])
    z, log_det = scale.inverse_and_log_det(x, event_ndims=3)
    tf.debugging.assert_near(z[..., 2:], x[..., 2:])  # the factored-out half is unchanged
    ```

    #### References

    1. Laurent Dinh, Jascha Sohl-Dickstein and Samy Bengio. Density estimation using Real NVP. In
       *International Conference on Learning Representations (ICLR)*, 2017.
       [arXiv:1605.08803](https://arxiv.org/abs/1605.08803).

    Args:
      bijectors: inner bijectors, data side first, mapping ``[H, W, C - C // 2]`` to itself.
      event_shape: ``[H, W, C]``, with ``C >= 2``.
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    takes_training = True

    def __init__(self, bijectors, event_shape, validate_args=False, name=None):
        self._event_shape = tuple(int(n) for n in event_shape)
        if len(self._event_shape) != 3 or self._event_shape[-1] < 2:
            raise ValueError(
                f"FactorOut needs image events [H, W, C] with C >= 2, got {list(event_shape)}."
            )
        self._bijectors = list(bijectors)
        h, w, c = self._event_shape
        self._kept = c - c // 2
        kept_shape = tf.TensorShape([h, w, self._kept])
        inner_shape = tfp.bijectors.Chain(self._bijectors).inverse_event_shape(kept_shape)
        if inner_shape != kept_shape:
            raise ValueError(
                f"FactorOut's inner bijectors must map the kept part {kept_shape.as_list()} to "
                f"itself; they map it to {inner_shape.as_list()} (end a squeezed scale with an "
                "`Unsqueeze`)."
            )
        super().__init__(
            forward_min_event_ndims=3,
            validate_args=validate_args,
            name=name,
        )

    @property
    def bijectors(self):
        return list(self._bijectors)

    @property
    def keras_layers(self):
        return _walk.keras_layers(self._bijectors)

    @property
    def takes_context(self):
        return _walk.takes_context(self._bijectors)

    def _split(self, x):
        return x[..., : self._kept], x[..., self._kept :]

    def _inverse_and_log_det(self, y, training=False, context=None):
        kept, out = self._split(y)
        z, log_det = _walk.inverse_and_log_det(self._bijectors, kept, 3, training, context)
        return tf.concat([z, out], axis=-1), log_det

    def _inverse(self, y, training=False, context=None):
        return self._inverse_and_log_det(y, training, context)[0]

    def _inverse_log_det_jacobian(self, y, training=False, context=None):
        return self._inverse_and_log_det(y, training, context)[1]

    def _forward_and_log_det(self, x, training=False, context=None):
        del training  # Sampling runs inner batch norms on their running averages.
        kept, out = self._split(x)
        x, log_det = _walk.forward_and_log_det(self._bijectors, kept, 3, context)
        return tf.concat([x, out], axis=-1), log_det

    def _forward(self, x, training=False, context=None):
        del training
        kept, out = self._split(x)
        return tf.concat([_walk.forward(self._bijectors, kept, context), out], axis=-1)

    def _forward_log_det_jacobian(self, x, training=False, context=None):
        return self._forward_and_log_det(x, training, context)[1]
