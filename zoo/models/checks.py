"""Checks of what a model is given: constructor options, images, and the weights it holds.

Each raises one ValueError (or, inside a graph, an ``InvalidArgumentError``) that names the
option or input and what was expected, before anything is computed with it.
"""

import numpy as np


def whole_number(name, value, minimum=1):
    """``value`` as an int; a ValueError naming ``name`` unless it is a whole number (not a
    bool, a float or a string) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def whole_numbers(name, values, minimum=1):
    """``values`` (a list or tuple, maybe empty) as a tuple of ints, each checked by
    `whole_number`."""
    if not isinstance(values, list | tuple):
        raise ValueError(
            f"{name} must be a list of whole numbers >= {minimum}, e.g. [256, 256]; got {values!r}."
        )
    return tuple(whole_number(name, v, minimum) for v in values)


def positive_number(name, value):
    """``value`` as a float; a ValueError naming ``name`` unless it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    if not 0 < value < np.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def class_labels(labels, num_classes):
    """The dataset's label of each of ``num_classes`` outputs (default ``0 .. k-1``), checked."""
    labels = [int(c) for c in (range(num_classes) if labels is None else labels)]
    if len(labels) != num_classes:
        raise ValueError(f"class_labels has {len(labels)} labels for {num_classes} classes.")
    return labels


def unit_images(x, what="images"):
    """``x`` (float), computed only after every value is checked to be finite and in
    ``[0, 1]`` (`tfflows.checks.in_range`); the error says ``what`` must be so."""
    from tfflows.checks import in_range

    return in_range(x, 0.0, 1.0, f"{what} must be finite values in [0, 1]")


def non_finite_variables(model):
    """Paths of ``model``'s floating-point variables that hold a NaN or an infinity."""
    return [
        v.path
        for v in model.variables
        if np.issubdtype(np.dtype(v.dtype), np.floating) and not np.isfinite(v.numpy()).all()
    ]
