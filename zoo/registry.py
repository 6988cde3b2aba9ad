"""One place that lists what the zoo offers: ``create_model(name, **kwargs)``, as timm does."""

from zoo import flows

# name -> (constructor, defaults used by `zoo train` on top of the constructor's own)
_MODELS = {
    "nice": (flows.NICE, {}),
    "realnvp": (flows.RealNVP, {"architecture": "multiscale"}),
    "realnvp_flat": (flows.RealNVP, {"architecture": "flat"}),
}


def list_models():
    return sorted(_MODELS)


def create_model(model_name, image_shape, num_levels, **kwargs):
    """Builds zoo model ``model_name`` for images of ``image_shape`` with ``num_levels`` levels.

    ``kwargs`` go to the model's constructor (``name=`` included, the Keras model name).
    """
    if model_name not in _MODELS:
        raise ValueError(f"Unknown model {model_name!r}; the zoo has {list_models()}.")
    cls, defaults = _MODELS[model_name]
    return cls(image_shape=image_shape, num_levels=num_levels, **{**defaults, **kwargs})
