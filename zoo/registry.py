"""The one place that lists what the zoo offers: ``create_model(name, info, **options)``, as
timm's registry does.

`MODELS` is the zoo's table, written out here: a model is offered once it has a row. Importing
this module imports every model family (the packages of `zoo.models`); nothing else needs
importing for a name to work, and a model module registers nothing by being imported.
`register` adds a model of one's own.
"""

import dataclasses

from zoo.models import autoencoders, flows, gan, transfer, transflow


@dataclasses.dataclass(frozen=True)
class Entry:
    """A model the zoo offers: ``name`` builds ``cls`` with ``defaults`` under the caller's
    options; ``task`` and ``description`` are what ``zoo list`` shows."""

    name: str
    cls: type
    task: str
    description: str
    defaults: dict = dataclasses.field(default_factory=dict)


MODELS = (
    Entry(
        "nice",
        flows.NICE,
        "density",
        "NICE: additive couplings on alternating units, MLPs, scaling, logistic prior",
    ),
    Entry(
        "realnvp",
        flows.RealNVP,
        "density",
        "multi-scale RealNVP: checkerboard / channel affine couplings, ResNets, squeeze",
        {"architecture": "multiscale"},
    ),
    Entry(
        "realnvp_flat",
        flows.RealNVP,
        "density",
        "flat RealNVP: affine couplings on alternating units with MLPs and batch norm",
        {"architecture": "flat"},
    ),
    Entry(
        "glow",
        flows.Glow,
        "density",
        "Glow: multi-scale steps of actnorm, invertible 1x1 convolution, affine coupling",
    ),
    Entry(
        "dcgan",
        gan.DCGAN,
        "generation",
        "DCGAN: transposed-conv generator, strided-conv discriminator; PacGAN packing",
    ),
    Entry(
        "autoencoder",
        autoencoders.Autoencoder,
        "representation",
        "Dense hourglass autoencoder (MSE / BCE; denoising with noise_std)",
    ),
    Entry(
        "conv_autoencoder",
        autoencoders.Autoencoder,
        "representation",
        "Convolutional autoencoder: stride-2 convs down, transposed convs up",
        {"architecture": "conv"},
    ),
    Entry(
        "vae",
        autoencoders.VAE,
        "density",
        "Variational autoencoder (Kingma & Welling): discretized logistic, ELBO / IW bits",
    ),
    Entry(
        "transfer",
        transfer.TransferClassifier,
        "classification",
        "frozen-backbone classifier, then fine-tuning; default: pretrains a conv net on half "
        "the classes and transfers it to the rest with 10 labels each",
    ),
    Entry(
        "classifier",
        transfer.ConvClassifier,
        "classification",
        "small conv net (conv-BN-ReLU stages) trained from scratch",
    ),
    Entry(
        "transflow",
        transflow.Transflow,
        "transfer",
        "Transflow: posterior latent Gaussians of a trained flow (--set flow=PATH): samples, "
        "few-shot classification",
    ),
)

_BY_NAME = {e.name: e for e in MODELS}
if len(_BY_NAME) != len(MODELS):
    raise ImportError("zoo.registry.MODELS names a model twice.")


def register(name, cls, *, task, description, **defaults):
    """Offers a model of one's own (a `zoo.models.ZooModel`) under ``name``, as the zoo's own
    are in `MODELS`: ``zoo train NAME``, `create_model` and `zoo.training.run` then take it."""
    if name in _BY_NAME and _BY_NAME[name].cls is not cls:
        raise ValueError(f"Model name {name!r} is taken by {_BY_NAME[name].cls.__name__}.")
    _BY_NAME[name] = Entry(name, cls, task, description, dict(defaults))
    return cls


def entry(name):
    """The `Entry` called ``name``; a ValueError listing the zoo's models otherwise."""
    if name not in _BY_NAME:
        raise ValueError(f"Unknown model {name!r}; the zoo has {', '.join(list_models())}.")
    return _BY_NAME[name]


def name_of(cls):
    """The name under which class ``cls`` is offered as it is (no registered defaults)."""
    for e in _BY_NAME.values():
        if e.cls is cls and not e.defaults:
            return e.name
    raise ValueError(f"{cls.__name__} is not in the zoo's registry (zoo.registry.MODELS).")


def list_models(task=None):
    """The models' names (those of ``task`` only, when given), sorted."""
    return sorted(n for n, e in _BY_NAME.items() if task is None or e.task == task)


def entries():
    """Every `Entry`, sorted by name."""
    return [_BY_NAME[n] for n in list_models()]


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
