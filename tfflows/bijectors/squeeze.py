"""Squeeze: 2x2 space-to-depth for multi-scale flows."""

import keras
import tensorflow as tf

from tfflows.bijectors._base import FlowBijector, unique_name


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

    Raises:
      ValueError: for odd H or W (inverse), a channel count that is not a multiple of 4
        (forward), or inputs of rank < 3.
    """

    def __init__(self, validate_args=False, name=None):
        parameters = dict(locals())
        super().__init__(
            forward_min_event_ndims=3,
            inverse_min_event_ndims=3,
            is_constant_jacobian=True,
            validate_args=validate_args,
            parameters=parameters,
            name=name or unique_name("squeeze"),
        )

    def _checked_event(self, x, direction):
        x = self._check(x, direction)
        if x.shape.rank is not None and x.shape.rank < 3:
            raise ValueError(
                f"Squeeze {self.name!r} ({direction}) expects image events [H, W, C]; got input "
                f"of shape {x.shape.as_list()}."
            )
        h, w, c = x.shape[-3:]
        if direction == "inverse" and ((h is not None and h % 2) or (w is not None and w % 2)):
            raise ValueError(
                f"Squeeze {self.name!r} needs even height and width; got an image of "
                f"{h}x{w} (shape {x.shape.as_list()}). Pad or crop the images first."
            )
        if direction == "forward" and c is not None and c % 4:
            raise ValueError(
                f"Squeeze {self.name!r} (forward) needs a channel count divisible by 4; got {c} "
                f"(shape {x.shape.as_list()})."
            )
        return x

    @staticmethod
    def _on_images(fn, x):
        """Applies a rank-4 image op to ``x`` of any batch rank."""
        batch_shape = tf.shape(x)[:-3]
        out = fn(tf.reshape(x, tf.concat([[-1], tf.shape(x)[-3:]], axis=0)))
        return tf.reshape(out, tf.concat([batch_shape, tf.shape(out)[1:]], axis=0))

    def _inverse(self, y):
        y = self._checked_event(y, "inverse")
        return self._on_images(lambda t: tf.nn.space_to_depth(t, 2), y)

    def _forward(self, x):
        x = self._checked_event(x, "forward")
        return self._on_images(lambda t: tf.nn.depth_to_space(t, 2), x)

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], dtype=x.dtype)

    def _forward_event_shape(self, input_shape):
        h, w, c = tf.TensorShape(input_shape)[-3:]
        return input_shape[:-3].concatenate(
            [
                None if h is None else 2 * h,
                None if w is None else 2 * w,
                None if c is None else c // 4,
            ]
        )

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] * 2, input_shape[-1:] // 4], 0)

    def _inverse_event_shape(self, output_shape):
        h, w, c = tf.TensorShape(output_shape)[-3:]
        if (h is not None and h % 2) or (w is not None and w % 2):
            raise ValueError(f"Squeeze needs even height and width; got {h}x{w}.")
        return output_shape[:-3].concatenate(
            [
                None if h is None else h // 2,
                None if w is None else w // 2,
                None if c is None else 4 * c,
            ]
        )

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], output_shape[-3:-1] // 2, output_shape[-1:] * 4], 0)

    def get_config(self):
        return self._base_config()
