"""The zoo's models, one package per family, on THE model contract (`contract`).

* `contract`: `ZooModel` (the hooks every model answers), `DataSpec`, `Phase`, `RunPlan`,
  `Prerequisite`;
* `nets`: the networks several models share; `checks`, `noise`, `optimizers`: what their
  constructors, steps and recipes share;
* `flows`, `gan`, `autoencoders`, `transfer`, `transflow`: the families (their classes are
  ``zoo.RealNVP``, ``zoo.DCGAN``, ...).

Nothing here imports the training run, the export or the command line: they ask the models,
through the contract, and `zoo.registry` names them.
"""

from zoo.models.contract import DataSpec, Phase, Prerequisite, RunPlan, ZooModel

__all__ = ["DataSpec", "Phase", "Prerequisite", "RunPlan", "ZooModel"]
