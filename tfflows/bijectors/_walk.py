"""Running a list of bijectors (data side first) in either direction, as `tfb.Chain` would.

Unlike `tfb.Chain`, the walk passes ``training`` to every bijector that takes it (``BatchNorm``,
``FactorOut``), and a ``context`` (what a conditional flow conditions on) to every bijector
that takes one (conditional couplings and autoregressive transforms, ``FactorOut``), as TFP
passes ``condition_kwargs``; and it uses each tfflows bijector's one-pass
``inverse_and_log_det`` and ``forward_and_log_det``.
"""

import tensorflow as tf


def _kwargs(bijector, training, context=None):
    kwargs = {}
    if getattr(bijector, "takes_training", False):
        kwargs["training"] = bool(training)
    if context is not None and getattr(bijector, "takes_context", False):
        kwargs["context"] = context
    return kwargs


def _and_log_det(bijectors, x, event_ndims, direction, training, context):
    log_det = tf.zeros(tf.shape(x)[: tf.rank(x) - event_ndims], dtype=x.dtype)
    for b in bijectors:
        kwargs = _kwargs(b, training, context)
        if hasattr(b, f"{direction}_and_log_det"):
            x_next, step = getattr(b, f"{direction}_and_log_det")(x, event_ndims, **kwargs)
        else:
            step = getattr(b, f"{direction}_log_det_jacobian")(x, event_ndims, **kwargs)
            x_next = getattr(b, direction)(x, **kwargs)
        log_det += step
        # A reshaping bijector (e.g. image -> vector) changes the event rank.
        event_ndims = getattr(b, f"{direction}_event_ndims")(event_ndims)
        x = x_next
    return x, log_det


def inverse_and_log_det(bijectors, y, event_ndims, training=False, context=None):
    """Data -> latent through ``bijectors`` (first to last): ``(z, sum of inverse log-dets)``."""
    return _and_log_det(bijectors, y, event_ndims, "inverse", training, context)


def forward_and_log_det(bijectors, z, event_ndims, context=None):
    """Latent -> data through ``bijectors`` (last to first), batch norms in inference mode:
    ``(x, sum of forward log-dets)``."""
    return _and_log_det(reversed(bijectors), z, event_ndims, "forward", False, context)


def forward(bijectors, z, context=None):
    """Latent -> data through ``bijectors`` (last to first), batch norms in inference mode."""
    for b in reversed(bijectors):
        z = b.forward(z, **_kwargs(b, False, context))
    return z


def takes_context(bijectors):
    """Whether any of ``bijectors`` (or a sub-flow's) conditions on a context."""
    return any(getattr(b, "takes_context", False) for b in bijectors)


def keras_layers(bijectors):
    """The Keras layers holding the weights of ``bijectors`` (bijectors without any add none)."""
    return [layer for b in bijectors for layer in getattr(b, "keras_layers", [])]


def nested(bijectors):
    """Every bijector of ``bijectors`` and, depth first after it, those it holds (a
    ``FactorOut``'s sub-flow)."""
    for b in bijectors:
        yield b
        yield from nested(getattr(b, "bijectors", []))
