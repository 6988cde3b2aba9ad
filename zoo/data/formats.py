"""The forms a pipeline delivers images in (what a model's ``data_spec`` and the command line
may ask for), apart from the pipeline itself so that naming them needs no TensorFlow.

* ``SCALINGS``: ``"dequantize"`` (``(x + u) / K`` with u ~ U[0, 1), for densities),
  ``"centered"`` (the pixel-level midpoints ``(x + 1/2) / K``), ``"unit"`` (``x / (K - 1)``
  in ``[0, 1]``), ``"symmetric"`` (``[-1, 1]``), for K pixel levels;
* ``COLORS``: ``None`` (as stored), ``"grayscale"``, ``"rgb"``.
"""

SCALINGS = ("dequantize", "centered", "unit", "symmetric")
COLORS = (None, "grayscale", "rgb")
