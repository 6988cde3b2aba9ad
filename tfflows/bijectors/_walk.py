"""Running a list of bijectors (data side first) in either direction, as `tfb.Chain` would.

Unlike `tfb.Chain`, the walk passes ``training`` to every bijector that takes it (``BatchNorm``,
``FactorOut``) and uses each tfflows bijector's one-pass ``inverse_and_log_det``.
"""

import tensorflow as tf


def _kwargs(bijector, training):
    return {"training": bool(training)} if getattr(bijector, "takes_training", False) else {}


def inverse_and_log_det(bijectors, y, event_ndims, training=False):
    """Data -> latent through ``bijectors`` (first to last): ``(z, sum of inverse log-dets)``."""
    log_det = tf.zeros(tf.shape(y)[: tf.rank(y) - event_ndims], dtype=y.dtype)
    for b in bijectors:
        kwargs = _kwargs(b, training)
        if hasattr(b, "inverse_and_log_det"):
            y_next, ildj = b.inverse_and_log_det(y, event_ndims, **kwargs)
        else:
            ildj = b.inverse_log_det_jacobian(y, event_ndims, **kwargs)
            y_next = b.inverse(y, **kwargs)
        log_det += ildj
        # A reshaping bijector (e.g. image -> vector) changes the event rank.
        event_ndims = b.inverse_event_ndims(event_ndims)
        y = y_next
    return y, log_det


def forward(bijectors, z):
    """Latent -> data through ``bijectors`` (last to first), batch norms in inference mode."""
    for b in reversed(bijectors):
        z = b.forward(z, **_kwargs(b, False))
    return z


def keras_layers(bijectors):
    """The Keras layers holding the weights of ``bijectors`` (bijectors without any add none)."""
    return [layer for b in bijectors for layer in getattr(b, "keras_layers", [])]
