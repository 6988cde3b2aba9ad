"""One place that lists what the zoo offers: ``create_model(name, info, **options)``, as timm does.

Models register themselves where they are defined (``register("dcgan", DCGAN, task=...)``);
importing `zoo` imports every model module, so the table is complete once `zoo` is imported.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    task: str
    description: str
    defaults: dict


_MODELS = {}


def register(name, cls, *, task, description, **defaults):
    """Adds model ``name``: ``cls`` built with ``defaults`` under the caller's options."""
    if name in _MODELS and _MODELS[name].cls is not cls:
        raise ValueError(f"Model name {name!r} is taken by {_MODELS[name].cls.__name__}.")
    _MODELS[name] = Entry(name, cls, task, description, dict(defaults))
    return cls


def entry(name):
    if name not in _MODELS:
        raise ValueError(f"Unknown model {name!r}; the zoo has {', '.join(list_models())}.")
    return _MODELS[name]


def list_models(task=None):
    return sorted(n for n, e in _MODELS.items() if task is None or e.task == task)


def entries():
    return [_MODELS[n] for n in list_models()]


def create_model(model_name, info=None, **options):
    """Builds zoo model ``model_name``.

    Args:
      model_name: a name from `list_models`.
      info: a `zoo.data.DataInfo`; the model reads what it needs from it (image shape, levels,
        classes). Without it, the options must say everything the constructor needs.
      **options: constructor arguments (``name=`` included, the Keras model name), on top of the
        registered defaults.
    """
    e = entry(model_name)
    options = {**e.defaults, **options}
    return e.cls.from_data(info, **options) if info is not None else e.cls(**options)
