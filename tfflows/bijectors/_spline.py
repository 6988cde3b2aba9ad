"""Monotone rational-quadratic splines with linear tails, elementwise, in float32.

Durkan, Bekasov, Murray and Papamakarios, "Neural Spline Flows", NeurIPS 2019; the spline is
Gregory and Delbourgo's, "Piecewise rational quadratic interpolation to monotonic data", IMA
Journal of Numerical Analysis 2(2), 1982.

On ``[-B, B]`` the spline has ``K`` bins. From unnormalized parameters (a network's outputs),

```none
w = B_2 (m + (1 - K m) softmax(w_raw))      bin widths, each at least B_2 m, summing to 2B
h = B_2 (m + (1 - K m) softmax(h_raw))      bin heights, likewise
d = m + softplus(d_raw + log(e^(1 - m) - 1))   the K - 1 inner knots' slopes (1 at d_raw = 0)
```

with ``B_2 = 2B`` and ``m = 1e-3``; the knots are ``x_0 = -B, x_k = x_{k-1} + w_k`` (and ``y``
likewise), and the outer knots' slopes are 1, so that the spline meets the identity outside
``[-B, B]`` with a continuous derivative (the linear tails). All-zero parameters give the
identity. In bin ``k`` with ``xi = (x - x_k) / w_k`` and ``s = h_k / w_k``:

```none
y  = y_k + h_k (s xi^2 + d_k xi (1 - xi)) / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))
dy/dx = s^2 (d_{k+1} xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2)
        / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))^2
```

The inverse solves ``a xi^2 + b xi + c = 0`` with ``delta = d_{k+1} + d_k - 2 s``,
``a = h_k (s - d_k) + (y - y_k) delta``, ``b = h_k d_k - (y - y_k) delta``,
``c = -s (y - y_k)``, by its root in ``[0, 1]``, ``xi = 2 c / (-b - sqrt(b^2 - 4 a c))``, written
``(-b + sqrt(b^2 - 4 a c)) / (2 a)`` where ``b < 0`` (either form alone loses digits to
cancellation for one sign of ``b``). Where the spline is flat, ``dx/dy`` magnifies float32's
rounding of ``y``: a round trip is exact to about ``1e-7 |y| dx/dy``.

Ours rather than `tfp.bijectors.RationalQuadraticSpline` (which the tests use as the reference)
because: the value and the log-det come from one pass (TFP recomputes the bin search for each);
the arithmetic is float32 whatever the compute dtype (a bfloat16 ``h_k / w_k`` or discriminant
is far too coarse); the discriminant is clamped at zero, where rounding makes it slightly
negative and ``sqrt`` gives NaN; and inputs outside ``[-B, B]`` are clamped before any spline
arithmetic, so that neither they nor their gradients can be NaN (the masked branch of a
``tf.where`` still differentiates).
"""

import math

import tensorflow as tf

MIN_BIN = 1e-3
MIN_SLOPE = 1e-3
_SLOPE_SHIFT = math.log(math.expm1(1.0 - MIN_SLOPE))


def num_parameters(bins):
    """Unnormalized parameters per transformed unit: ``K`` widths, ``K`` heights and ``K - 1``
    inner slopes, in that order on the last axis."""
    return 3 * int(bins) - 1


def _arithmetic_dtype(dtype):
    return tf.float64 if dtype == tf.float64 else tf.float32


def _knots(raw, bound):
    """Knot positions ``[..., K + 1]`` from ``-B`` to ``B`` exactly, and the bins' sizes."""
    bins = raw.shape[-1]
    fractions = MIN_BIN + (1.0 - MIN_BIN * bins) * tf.nn.softmax(raw, axis=-1)
    inner = 2.0 * bound * tf.cumsum(fractions[..., :-1], axis=-1) - bound
    ends = tf.ones_like(raw[..., :1]) * bound
    knots = tf.concat([-ends, inner, ends], axis=-1)
    return knots, knots[..., 1:] - knots[..., :-1]


def _slopes(raw):
    """Slopes at all ``K + 1`` knots: the inner ones from ``raw``, the outer ones 1."""
    inner = MIN_SLOPE + tf.nn.softplus(raw + _SLOPE_SHIFT)
    ones = tf.ones_like(raw[..., :1])
    return tf.concat([ones, inner, ones], axis=-1)


def _bin(values, knots):
    """Index of the bin of each value (clamped to the range) and a one-hot picker."""
    bins = knots.shape[-1] - 1
    inner = knots[..., 1:-1]
    index = tf.reduce_sum(tf.cast(values[..., None] >= inner, tf.int32), axis=-1)
    one_hot = tf.one_hot(index, bins, dtype=values.dtype)
    return lambda p: tf.reduce_sum(p[..., :bins] * one_hot, axis=-1)


def rational_quadratic(x, params, bound, inverse=False):
    """The spline (or its inverse) applied to ``x [...]`` with parameters ``params [..., 3K - 1]``
    (`num_parameters`; they broadcast against ``x``): ``(y, log|dy/dx|)`` elementwise, the
    log-det of the direction taken, both in ``x.dtype``. Identity outside ``[-B, B]``."""
    dtype = x.dtype
    work = _arithmetic_dtype(dtype)
    x = tf.cast(x, work)
    params = tf.cast(params, work)
    bins = (params.shape[-1] + 1) // 3
    bound = tf.cast(bound, work)
    x_knots, widths = _knots(params[..., :bins], bound)
    y_knots, heights = _knots(params[..., bins : 2 * bins], bound)
    slopes = _slopes(params[..., 2 * bins :])

    inside = (x >= -bound) & (x <= bound)
    clamped = tf.clip_by_value(x, -bound, bound)
    pick = _bin(clamped, y_knots if inverse else x_knots)
    x_k, w_k = pick(x_knots), pick(widths)
    y_k, h_k = pick(y_knots), pick(heights)
    d_k, d_k1 = pick(slopes), pick(slopes[..., 1:])
    s = h_k / w_k
    delta = d_k1 + d_k - 2.0 * s

    if inverse:
        dy = clamped - y_k
        a = h_k * (s - d_k) + dy * delta
        b = h_k * d_k - dy * delta
        c = -s * dy
        root = tf.sqrt(tf.maximum(b * b - 4.0 * a * c, 0.0))
        # The one root in [0, 1], in the form without cancellation for the sign of b.
        positive = b >= 0.0
        xi = tf.where(
            positive,
            2.0 * c / tf.where(positive, -b - root, -1.0),
            (root - b) / tf.where(positive, 1.0, 2.0 * a),
        )
        xi = tf.clip_by_value(xi, 0.0, 1.0)
        out = x_k + xi * w_k
    else:
        xi = (clamped - x_k) / w_k
        between = xi * (1.0 - xi)
        out = y_k + h_k * (s * xi * xi + d_k * between) / (s + delta * between)
    between = xi * (1.0 - xi)
    numerator = d_k1 * xi * xi + 2.0 * s * between + d_k * (1.0 - xi) ** 2
    log_det = 2.0 * tf.math.log(s) + tf.math.log(numerator) - 2.0 * tf.math.log(s + delta * between)
    if inverse:
        log_det = -log_det
    out = tf.where(inside, out, x)
    log_det = tf.where(inside, log_det, tf.zeros_like(log_det))
    return tf.cast(out, dtype), tf.cast(log_det, dtype)
