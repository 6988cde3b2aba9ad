"""Registers the zoo's Keras classes once Keras is imported, so that ``import zoo`` stays cheap.

``keras.saving.load_model`` finds a custom class only if its module ran its
``register_keras_serializable``; ``import zoo`` no longer imports the model families (it loads
each name on first use). Loading a saved zoo model needs Keras, so this finder waits for it:
when ``keras`` has been imported (by anyone, after ``import zoo``), the model families the
registry names are imported too. If Keras is already there, they are imported at once.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings


def _register():
    from zoo import registry

    for module in registry.model_modules():
        try:
            importlib.import_module(module)
        except Exception as error:  # a broken family must not break ``import keras``
            warnings.warn(f"zoo: {module} failed to import: {error}", stacklevel=2)


class _ThenRegister(importlib.abc.Loader):
    """Keras' own loader, then `_register`; Keras' module keeps its own loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader
        self.loader.exec_module(module)
        _register()


class _KerasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRegister(spec.loader)
        return spec


def install():
    """Registers the families now if Keras is imported, else when it is (idempotent)."""
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(finder, _KerasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasFinder())
