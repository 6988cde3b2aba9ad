"""The zoo's models, one package per family, on THE model contract (`contract`).

* `contract`: `ZooModel` (the hooks every model answers), `DataSpec`, `Phase`, `RunPlan`,
  `Prerequisite`;
* `nets`: the networks several models share; `checks`, `noise`, `optimizers`: what their
  constructors, steps and recipes share;
* `flows`, `gan`, `autoencoders`, `transfer`, `transflow`: the families (their classes are
  ``zoo.RealNVP``, ``zoo.DCGAN``, ...).

Nothing here imports the training run, the export or the command line: they ask the models,
through the contract, and `zoo.registry` names them.

Each name is imported on first use (listed in ``__init__.pyi``), so that importing one
submodule does not import the others (the command line answers without TensorFlow).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
