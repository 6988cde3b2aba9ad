"""Per-value and per-example log-likelihoods and divergences of the `VAE`, in float32."""

import math

import tensorflow as tf

MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on the logistic's log-scale


def _log1mexp(d):
    """``log(1 - exp(-d))`` for ``d > 0``, accurate for small and large ``d`` (Maechler 2012)."""
    return tf.where(
        d < math.log(2.0),
        tf.math.log(-tf.math.expm1(-tf.maximum(d, 1e-30))),
        tf.math.log1p(-tf.exp(-tf.maximum(d, math.log(2.0)))),
    )


def discretized_logistic_log_prob(x, mean, log_scale, num_levels):
    """Log-probability of each value of ``x`` under a logistic discretized to ``K`` levels.

    ``x`` holds levels ``k / (K - 1)``, ``k = 0 .. K-1`` (unit scaling). With ``h = 1/(2(K-1))``,
    ``s = exp(log_scale)`` and ``sigma`` the logistic sigmoid (its CDF),

    ```none
    P(k) = sigma((x + h - m) / s) - sigma((x - h - m) / s),
    ```

    the first bin taking ``(-inf, x + h]`` and the last ``[x - h, +inf)``, so the ``K``
    probabilities sum to 1. The difference is computed as in PixelCNN++ but without cases:
    ``log(sigma(a) - sigma(b)) = log sigma(a) + log sigma(-b) + log(1 - exp(b - a))``, all in
    float32 (``log sigma(a) = -softplus(-a)``). ``log_scale`` is floored at -7.
    """
    x, mean, log_scale = (tf.cast(t, tf.float32) for t in (x, mean, log_scale))
    log_scale = tf.maximum(log_scale, MIN_LOG_SCALE)
    top = float(num_levels - 1)
    half = 0.5 / top
    inv_scale = tf.exp(-log_scale)
    upper = inv_scale * (x - mean + half)
    lower = inv_scale * (x - mean - half)
    level = tf.round(x * top)
    first, last = level <= 0.0, level >= top
    log_cdf_upper = tf.where(last, 0.0, -tf.nn.softplus(-upper))
    log_sf_lower = tf.where(first, 0.0, -tf.nn.softplus(lower))
    gap = tf.where(first | last, 0.0, _log1mexp(2.0 * half * inv_scale))
    return log_cdf_upper + log_sf_lower + gap


def bernoulli_log_prob(x, logits):
    """``x log p + (1 - x) log(1 - p)`` with ``p = sigmoid(logits)``, per value."""
    x, logits = tf.cast(x, tf.float32), tf.cast(logits, tf.float32)
    return x * logits - tf.nn.softplus(logits)


def gaussian_kl(mean, log_var):
    """``KL(N(mean, diag exp(log_var)) || N(0, I))`` per example:
    ``0.5 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)``."""
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=-1)


def standard_normal_log_prob(z):
    """``log N(z; 0, I)`` per example (the last axis is the event)."""
    return -0.5 * tf.reduce_sum(tf.square(z) + math.log(2.0 * math.pi), axis=-1)
