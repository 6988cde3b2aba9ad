"""Squeeze and Unsqueeze: 2x2 space-to-depth and back, for multi-scale flows."""

import keras
import tensorflow as tf

from tfflows.bijectors._base import FlowBijector


def _on_images(fn, x):
    """Applies a rank-4 image op to ``x`` of any batch rank."""
    batch_shape = tf.shape(x)[:-3]
    out = fn(tf.reshape(x, tf.concat([[-1], tf.shape(x)[-3:]], axis=0)))
    return tf.reshape(out, tf.concat([batch_shape, tf.shape(out)[1:]], axis=0))


def _squeezed_shape(shape):
    h, w, c = shape[-3:]
    return shape[:-3].concatenate(
        [None if h is None else h // 2, None if w is None else w // 2, None if c is None else 4 * c]
    )


def _unsqueezed_shape(shape):
    h, w, c = shape[-3:]
    return shape[:-3].concatenate(
        [None if h is None else 2 * h, None if w is None else 2 * w, None if c is None else c // 4]
    )


@keras.saving.register_keras_serializable(package="tfflows")
class Squeeze(FlowBijector):
    """RealNVP's squeeze: each 2x2 block of pixels becomes 4 channels of one pixel.

    Named, like every tfflows preprocessing step, for what it does to data on its way to the
    latent space, i.e. its inverse:

    ```none
    inverse (data -> latent):  [H, W, C] -> [H/2, W/2, 4C]   (space-to-depth)
    forward (latent -> data):  [h, w, 4c] -> [2h, 2w, c]     (depth-to-space)
    ```

    It only permutes values, so ``J`` is a permutation matrix and ``log|det J| = 0``. The channel
    index after squeezing is ``(2 * di + dj) * C + c`` (as ``tf.nn.space_to_depth``).

    #### Examples

    ```python
    import tensorflow as tf
    from tfflows import bijectors

    squeeze = bijectors.Squeeze()
    images = tf.random.normal([2, 28, 28, 1])
    squeeze.inverse(images).shape  # [2, 14, 14, 4]: space-to-depth
    squeeze.inverse_event_shape([28, 28, 1])  # [14, 14, 4]
    tf.debugging.assert_equal(squeeze.forward(squeeze.inverse(images)), images)
    ```

    #### References

    1. Laurent Dinh, Jascha Sohl-Dickstein and Samy Bengio. Density estimation using Real NVP. In
       *International Conference on Learning Representations (ICLR)*, 2017.
       [arXiv:1605.08803](https://arxiv.org/abs/1605.08803).

    Raises:
      ValueError: for odd H or W on the way to space-to-depth, a channel count that is not a
        multiple of 4 on the way to depth-to-space, or inputs of rank < 3.
    """

    def __init__(self, validate_args=False, name=None):
        super().__init__(
            forward_min_event_ndims=3,
            inverse_min_event_ndims=3,
            is_constant_jacobian=True,
            validate_args=validate_args,
            name=name,
        )

    def _image(self, x, direction):
        if x.shape.rank is not None and x.shape.rank < 3:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} ({direction}) expects image events "
                f"[H, W, C]; got input of shape {x.shape.as_list()}."
            )
        return x

    def _space_to_depth(self, x, direction):
        x = self._image(x, direction)
        h, w = x.shape[-3:-1]
        if (h is not None and h % 2) or (w is not None and w % 2):
            raise ValueError(
                f"{type(self).__name__} {self.name!r} ({direction}) needs even height and width; "
                f"got an image of {h}x{w} (shape {x.shape.as_list()}). Pad or crop the images."
            )
        return _on_images(lambda t: tf.nn.space_to_depth(t, 2), x)

    def _depth_to_space(self, x, direction):
        x = self._image(x, direction)
        c = x.shape[-1]
        if c is not None and c % 4:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} ({direction}) needs a channel count "
                f"divisible by 4; got {c} (shape {x.shape.as_list()})."
            )
        return _on_images(lambda t: tf.nn.depth_to_space(t, 2), x)

    def _inverse(self, y):
        return self._space_to_depth(y, "inverse")

    def _forward(self, x):
        return self._depth_to_space(x, "forward")

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], dtype=x.dtype)

    def _forward_event_shape(self, input_shape):
        return _unsqueezed_shape(tf.TensorShape(input_shape))

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] * 2, input_shape[-1:] // 4], 0)

    def _inverse_event_shape(self, output_shape):
        return _squeezed_shape(tf.TensorShape(output_shape))

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], output_shape[-3:-1] // 2, output_shape[-1:] * 4], 0)


@keras.saving.register_keras_serializable(package="tfflows")
class Unsqueeze(Squeeze):
    """The mirror of `Squeeze`: inverse (data -> latent) is depth-to-space.

    Ends a squeezed scale inside `FactorOut`, so that the scale maps its input shape to itself.

    #### Examples

    ```python
    import tensorflow as tf
    from tfflows import bijectors

    unsqueeze = bijectors.Unsqueeze()
    latents = tf.random.normal([2, 4, 4, 8])
    unsqueeze.inverse(latents).shape  # [2, 8, 8, 2]: depth-to-space
    ```

    #### References

    1. Laurent Dinh, Jascha Sohl-Dickstein and Samy Bengio. Density estimation using Real NVP. In
       *International Conference on Learning Representations (ICLR)*, 2017.
       [arXiv:1605.08803](https://arxiv.org/abs/1605.08803).
    """

    def _inverse(self, y):
        return self._depth_to_space(y, "inverse")

    def _forward(self, x):
        return self._space_to_depth(x, "forward")

    _forward_event_shape = Squeeze._inverse_event_shape
    _forward_event_shape_tensor = Squeeze._inverse_event_shape_tensor
    _inverse_event_shape = Squeeze._forward_event_shape
    _inverse_event_shape_tensor = Squeeze._forward_event_shape_tensor
