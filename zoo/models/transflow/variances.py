"""Transflow's variance models (`zoo.models.transflow.transflow` has the math), apart from the
model so that the command line offers them without TensorFlow.

* ``"fixed"``: each dimension's variance is the flow's (``w``);
* ``"estimate"``: a per-class, per-dimension variance inferred from the examples under an
  inverse-gamma prior whose mean is ``w``.

``BASE_VARIANCE``: the variance ``s^2`` of one dimension of an unconditional flow's base,
moment-matched for the logistic (``pi^2 / 3``).
"""

import math

VARIANCES = ("fixed", "estimate")
BASE_VARIANCE = {"normal": 1.0, "logistic": math.pi**2 / 3.0}
