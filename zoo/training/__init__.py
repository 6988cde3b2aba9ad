"""The one training run every zoo model goes through: `run` of a `RunConfig` (`runner`, in
named steps), with its resume state (`resume`), callbacks (`callbacks`, `schedule`), dtype
policy (`precision`), ``tf.distribute`` strategy (`distribute`), its hold on its output folder
(`lock`) and its stop on SIGTERM / SIGINT (`preemption`).

Each name is imported on first use (listed in ``__init__.pyi``), so that importing one
submodule does not import the others (the command line answers without TensorFlow).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
