"""Transflow learning: a trained flow repurposed for new data by Bayesian inference in its
latent space (`Transflow`), on a zoo flow, its ``.keras`` file or its exported SavedModel.

Each name is imported on first use (listed in ``__init__.pyi``), so that importing one
submodule does not import the others (the command line answers without TensorFlow).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
