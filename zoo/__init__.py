"""zoo: Keras models built on tfflows, their data pipelines, training run, export and command.

The layers, bottom up (each imports only those below it; tests/test_layering.py checks):

* `zoo.plots` (drawing) and `zoo.data` (input pipelines): no other zoo module;
* `zoo.models`: the models, one package per family, on THE model contract
  (`zoo.models.contract`); ``zoo.registry`` lists them (`create_model`, `list_models`);
* `zoo.serving` (SavedModel export, presets) and `zoo.training` (the one training run);
* `zoo.cli`: the ``zoo`` command, argument parsing only.

`from_preset(name)` loads a trained model (`list_presets()`).

``import zoo`` is cheap: each name (``zoo.RealNVP``, ...) is imported on first use (the names
are in ``zoo/__init__.pyi``, read by `lazy_loader`), so that ``zoo --help`` and ``zoo list``
answer without TensorFlow. A saved zoo model loads with ``keras.saving.load_model`` after
``import zoo`` all the same: the model families register their Keras classes as soon as Keras
is imported (`_registration`).
"""

import lazy_loader

from zoo import _moved, _registration

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)

_moved.install()
_registration.install()
