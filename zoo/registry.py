"""The one place that lists what the zoo offers: ``create_model(name, info, **options)``, as
timm's registry does.

`MODELS` is the zoo's table, written out here: a model is offered once it has a row; a model
module registers nothing by being imported. Each row names its class as ``"module:Class"``,
imported when the model is built, so that the names, tasks and descriptions (``zoo list``,
``zoo train --help``) come without TensorFlow; so do their constructor options (``zoo train
--set``), read from ``options.json`` beside this file, which `write_option_table` writes from
the classes themselves (``python tools/write_registry_options.py``; a test fails when it is
stale). `register` adds a model of one's own (its options read from its class).
"""

import ast
import dataclasses
import importlib
import inspect
import json
import math
import os


@dataclasses.dataclass(frozen=True)
class Entry:
    """A model the zoo offers: ``name`` builds its class (``target``: the class, or its
    ``"module:Class"``) with ``defaults`` under the caller's options; ``task`` and
    ``description`` are what ``zoo list`` shows."""

    name: str
    target: type | str
    task: str
    description: str
    defaults: dict = dataclasses.field(default_factory=dict)

    @property
    def module(self):
        return self.target.__module__ if isinstance(self.target, type) else self._path[0]

    @property
    def class_name(self):
        return self.target.__name__ if isinstance(self.target, type) else self._path[1]

    @property
    def cls(self):
        """The class (its module imported on first use)."""
        if isinstance(self.target, type):
            return self.target
        return getattr(importlib.import_module(self.module), self.class_name)

    @property
    def _path(self):
        return self.target.split(":")


MODELS = (
    Entry(
        "nice",
        "zoo.models.flows:NICE",
        "density",
        "NICE: additive couplings on alternating units, MLPs, scaling, logistic prior",
    ),
    Entry(
        "realnvp",
        "zoo.models.flows:RealNVP",
        "density",
        "multi-scale RealNVP: checkerboard / channel affine couplings, ResNets, squeeze",
        {"architecture": "multiscale"},
    ),
    Entry(
        "realnvp_flat",
        "zoo.models.flows:RealNVP",
        "density",
        "flat RealNVP: affine couplings on alternating units with MLPs and batch norm",
        {"architecture": "flat"},
    ),
    Entry(
        "glow",
        "zoo.models.flows:Glow",
        "density",
        "Glow: multi-scale steps of actnorm, invertible 1x1 convolution, affine coupling",
    ),
    Entry(
        "glow_conditional",
        "zoo.models.flows:Glow",
        "density",
        "class-conditional Glow: class-conditional prior and couplings; a generative classifier",
        {"conditional": True},
    ),
    Entry(
        "realnvp_conditional",
        "zoo.models.flows:RealNVP",
        "density",
        "class-conditional multi-scale RealNVP: the class in every coupling and in the prior",
        {"architecture": "multiscale", "conditional": True},
    ),
    Entry(
        "nsf",
        "zoo.models.flows:Glow",
        "density",
        "neural spline flow: Glow's multi-scale steps with rational-quadratic spline couplings",
        {"coupling": "spline"},
    ),
    Entry(
        "maf",
        "zoo.models.flows:MAF",
        "density",
        "MAF: masked autoregressive transforms (MADE) on the flattened image, for vector data",
    ),
    Entry(
        "iaf",
        "zoo.models.flows:MAF",
        "density",
        "IAF: MAF's transforms the other way; one pass to sample, one per pixel to score",
        {"fast": "forward"},
    ),
    Entry(
        "dcgan",
        "zoo.models.gan:DCGAN",
        "generation",
        "DCGAN: transposed-conv generator, strided-conv discriminator; PacGAN packing",
    ),
    Entry(
        "wgan_gp",
        "zoo.models.gan:DCGAN",
        "generation",
        "WGAN-GP: the DCGAN players as generator and float32 critic, gradient penalty 10",
        {"loss": "wasserstein", "gradient_penalty": 10.0, "d_steps": 5, "dropout": 0.0},
    ),
    Entry(
        "autoencoder",
        "zoo.models.autoencoders:Autoencoder",
        "representation",
        "Dense hourglass autoencoder (MSE / BCE; denoising with noise_std)",
    ),
    Entry(
        "conv_autoencoder",
        "zoo.models.autoencoders:Autoencoder",
        "representation",
        "Convolutional autoencoder: stride-2 convs down, transposed convs up",
        {"architecture": "conv"},
    ),
    Entry(
        "vae",
        "zoo.models.autoencoders:VAE",
        "density",
        "Variational autoencoder (Kingma & Welling): discretized logistic, ELBO / IW bits",
    ),
    Entry(
        "transfer",
        "zoo.models.transfer:TransferClassifier",
        "classification",
        "frozen-backbone classifier, then fine-tuning; default: pretrains a conv net on half "
        "the classes and transfers it to the rest with 10 labels each",
    ),
    Entry(
        "classifier",
        "zoo.models.transfer:ConvClassifier",
        "classification",
        "small conv net (conv-BN-ReLU stages) trained from scratch",
    ),
    Entry(
        "transflow",
        "zoo.models.transflow:Transflow",
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
        raise ValueError(f"Model name {name!r} is taken by {_BY_NAME[name].class_name}.")
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


def model_modules():
    """The modules that define the registered models (what loading a saved one needs)."""
    return sorted({e.module for e in _BY_NAME.values()})


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
    if info is not None:
        return e.cls.from_data(info, **options)
    from_data_only = sorted(set(options) & {p.name for p in _from_data_options(e.cls)})
    if from_data_only:
        raise ValueError(
            f"{model_name}'s option(s) {', '.join(from_data_only)} are read with the data: "
            "pass info (a zoo.data.DataInfo), or the constructor's own options instead."
        )
    return e.cls(**options)


def _from_data_options(cls):
    """The keyword arguments ``cls.from_data`` takes besides ``info`` (none for the
    contract's default, which passes its ``**options`` to the constructor)."""
    parameters = list(inspect.signature(cls.from_data).parameters.values())[1:]
    return [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


REQUIRED = inspect.Parameter.empty
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
OPTIONS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "options.json")
# How option_table writes a default that is not a Python literal, and REQUIRED.
_NOT_A_LITERAL, _REQUIRED = "<not a literal>", "<required>"


def option_defaults(model_name):
    """``{option: default}`` of every constructor argument model ``model_name`` takes: its
    class's and, through ``**kwargs``, its bases' down to `keras.Model`, and those its
    ``from_data`` takes besides (e.g. an image flow's ``conditional``), with the registered
    defaults applied; `REQUIRED` for an argument without a default. The zoo's own models' come
    from ``options.json`` (no import; a default that is not a Python literal reads as None),
    a registered class's from the class."""
    e = entry(model_name)
    if not isinstance(e.target, type):
        with open(OPTIONS_FILE) as f:
            table = json.load(f)
        if model_name in table:
            return {k: _decoded(v) for k, v in table[model_name].items()}
    return _class_option_defaults(e)


def option_table():
    """``{model: {option: default as text}}`` of the zoo's own models, from their classes."""
    return {
        e.name: {k: _encoded(v) for k, v in _class_option_defaults(e).items()}
        for e in entries()
        if not isinstance(e.target, type)
    }


def write_option_table():
    """Writes `option_table` to ``options.json`` (after a model's constructor changes)."""
    with open(OPTIONS_FILE, "w") as f:
        json.dump(option_table(), f, indent=1, sort_keys=True)
        f.write("\n")


def _encoded(value):
    if value is REQUIRED:
        return _REQUIRED
    try:
        return repr(value) if ast.literal_eval(repr(value)) == value else _NOT_A_LITERAL
    except (ValueError, SyntaxError, TypeError):
        return _NOT_A_LITERAL


def _decoded(text):
    if text == _REQUIRED:
        return REQUIRED
    return None if text == _NOT_A_LITERAL else ast.literal_eval(text)


def _class_option_defaults(e):
    import keras

    defaults = {p.name: p.default for p in _from_data_options(e.cls)}
    for cls in e.cls.__mro__:
        if cls is keras.Model or "__init__" not in vars(cls):
            continue
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        for p in parameters:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                defaults.setdefault(p.name, p.default)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return {**defaults, **e.defaults}


def parse_options(model_name, texts):
    """Model ``model_name``'s constructor options from ``{option: text}`` (``zoo train --set``),
    each parsed as its default's type: ``true`` / ``false`` (also yes / no, on / off, 1 / 0)
    for a bool, a whole number for an int, a number for a float, a Python literal for a tuple
    or list (``"(256, 256)"``, ``"256,256"``), the text itself for a string; an option without
    a default or with None reads a Python literal where the text is one, else the text.

    Raises:
      ValueError: naming an option the model does not take (and those it does), or a text that
        is not of its option's type.
    """
    defaults = option_defaults(model_name)
    options = {}
    for key, text in texts.items():
        if key not in defaults:
            known = ", ".join(sorted(k for k in defaults if k != "name"))
            raise ValueError(f"--set {key}: {model_name} has no option {key!r}; it has {known}.")
        options[key] = _parse(model_name, key, text, defaults[key])
    return options


def _parse(model_name, key, text, default):
    def refuse(kind):
        return ValueError(
            f"--set {key}={text}: {model_name}'s {key} is {kind} (default {default!r}); "
            f"{text!r} is not one."
        )

    if isinstance(default, bool):
        if text.strip().lower() in _TRUE + _FALSE:
            return text.strip().lower() in _TRUE
        raise refuse("true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise refuse("a whole number") from None
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise refuse("a number") from None
        if not math.isfinite(value):
            raise refuse("a finite number")
        return value
    if isinstance(default, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if isinstance(default, tuple | list):
            raise refuse("a list, e.g. (256, 256)") from None
        return text
    return list(value) if isinstance(default, list) and isinstance(value, tuple) else value
