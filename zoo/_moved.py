"""The zoo's old flat module names (``zoo.flows``, ``zoo.export``, ...), still importable.

Before the models / training / data / serving layout, every module sat in ``zoo/``. A script
that imports an old name gets a module that finds each name where it lives now, with a
``DeprecationWarning`` that says where to import it from.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

MOVED = {
    "zoo.base": ("zoo.models.contract", "zoo.models.checks", "zoo.models.noise"),
    "zoo.flows": ("zoo.models.flows", "zoo.models.flows.image_flow", "zoo.models.flows.realnvp"),
    "zoo.gan": ("zoo.models.gan", "zoo.models.gan.gan", "zoo.models.nets"),
    "zoo.gan_metrics": ("zoo.models.gan.metrics",),
    "zoo.feature_classifier": ("zoo.models.gan.judge",),
    "zoo.autoencoder": (
        "zoo.models.autoencoders",
        "zoo.models.autoencoders.hourglass",
        "zoo.models.nets",
        "zoo.plots",
    ),
    "zoo.transfer": ("zoo.models.transfer", "zoo.models.transfer.classifier"),
    "zoo.backbones": ("zoo.models.transfer.backbones", "zoo.models.nets"),
    "zoo.transflow": ("zoo.models.transflow", "zoo.models.transflow.transflow"),
    "zoo.optimizers": ("zoo.models.optimizers",),
    "zoo.callbacks": (
        "zoo.training.callbacks",
        "zoo.training.schedule",
        "zoo.plots",
        "zoo.models.checks",
    ),
    "zoo.resume": ("zoo.training.resume",),
    "zoo.precision": ("zoo.training.precision",),
    "zoo.distribute": ("zoo.training.distribute",),
    "zoo.export": ("zoo.serving.export", "zoo.serving.warmup"),
    "zoo.presets": ("zoo.serving.presets",),
    "zoo.data_files": ("zoo.data.files",),
}


class MovedModule(types.ModuleType):
    """An old module name: each attribute comes from the first of its new homes that has it."""

    def __init__(self, name, homes):
        super().__init__(name, f"Moved: import from {', '.join(homes)}.")
        self._homes = homes

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        for home in self._homes:
            module = importlib.import_module(home)
            if hasattr(module, attribute):
                warnings.warn(
                    f"{self.__name__}.{attribute} has moved to {home}.{attribute}.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, attribute)
        raise AttributeError(
            f"module {self.__name__!r} (now {self._homes[0]}) has no {attribute!r}"
        )


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return MovedModule(spec.name, MOVED[spec.name])

    def exec_module(self, module):
        pass


def install():
    """Makes the old names importable (idempotent)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
