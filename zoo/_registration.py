"""Registers the zoo's Keras classes once Keras is imported, so that ``import zoo`` stays cheap.

``keras.saving.load_model`` finds a custom class only if its module ran its
``register_keras_serializable``; ``import zoo`` no longer imports the model families (it loads
each name on first use). Loading a saved zoo model needs Keras, so this finder waits for it:
once ``keras`` has been imported (by anyone, after ``import zoo``), the model families the
registry names are imported too. If Keras is already there, they are imported at once.

"Once" means when the outermost import that brought Keras in has finished: ``import zoo,
tfflows`` imports Keras from inside ``tfflows/__init__.py``, and the families, which import
``tfflows``, must not run while it is half-initialized. The finder therefore counts the imports
in progress of Keras, TensorFlow, TFP, tfflows and the zoo's own modules (per thread) and
registers when the count returns to zero with Keras loaded.
"""

import importlib
import importlib.abc
import sys
import threading
import warnings

_WATCHED = frozenset({"keras", "tensorflow", "tensorflow_probability", "tfflows"})


def _register():
    from zoo import registry

    for module in registry.model_modules():
        try:
            importlib.import_module(module)
        except Exception as error:  # a broken family must not break ``import keras``
            warnings.warn(f"zoo: {module} failed to import: {error}", stacklevel=2)


class _Counted(importlib.abc.Loader):
    """The module's own loader, counted in its watch; the module keeps its own loader."""

    def __init__(self, loader, watch):
        self.loader = loader
        self.watch = watch

    def __getattr__(self, name):  # get_code (``python -m``), get_resource_reader, ...
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader
        self.watch.running.depth = getattr(self.watch.running, "depth", 0) + 1
        try:
            self.loader.exec_module(module)
        finally:
            self.watch.running.depth -= 1
        if self.watch.running.depth == 0 and "keras" in sys.modules:
            self.watch.done()


class _Watch(importlib.abc.MetaPathFinder):
    def __init__(self):
        self.running = threading.local()
        self.registered = False

    def find_spec(self, name, path=None, target=None):
        if self.registered or not (name in _WATCHED or name.startswith("zoo.")):
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Counted(spec.loader, self)
        return spec

    def done(self):
        if self.registered:
            return
        self.registered = True
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        _register()


def install():
    """Registers the families now if Keras is imported, else when it is (idempotent)."""
    if "keras" in sys.modules:
        _register()
    elif not any(isinstance(finder, _Watch) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Watch())
