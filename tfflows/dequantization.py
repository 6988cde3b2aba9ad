"""Dequantization of discrete data and the matching bits/dim.

A flow has a density on continuous data, while images are discrete with ``K`` levels per value
(256 for 8-bit images, 17 for scikit-learn's 8x8 digits). Uniform dequantization adds
``u ~ U[0, 1)`` and rescales, ``y = (x + u) / K`` in ``[0, 1)``. For any density ``p_y`` on
``[0, 1)^D`` the model ``P(x) = integral of p_y over the cell of x`` satisfies

```none
log P(x) >= E_u[log p_y((x + u) / K)] - D log K,
```

so ``-(log p_y(y) - D log K) / (D log 2)`` averaged over data is an upper bound on the discrete
model's bits/dim, comparable with the papers' figures. `VariationalDequantizer` learns the noise
instead, for a tighter bound. The number of levels belongs to the data:
pass it, never assume 256.
"""

import functools
import math

import keras
import numpy as np
import tensorflow as tf

from tfflows import checks, nets, noise
from tfflows.bijectors.affine_coupling import LogScaleBound


def uniform_dequantize(x, num_levels, seed=None):
    """Returns ``(x + u) / num_levels`` with ``u ~ U[0, 1)``, as float32 in ``[0, 1)``.

    Args:
      x: integer-valued tensor with values in ``{0, ..., num_levels - 1}`` (any numeric dtype).
      num_levels: number of discrete levels ``K`` of the data.
      seed: optional stateless seed, a shape-[2] int tensor, for reproducible noise.

    Raises:
      InvalidArgumentError: when a value lies outside ``[0, num_levels - 1]`` or is not an
        integer.
    """
    if int(num_levels) < 2:
        raise ValueError(f"num_levels must be at least 2, got {num_levels}.")
    message = f"uniform_dequantize expects integer levels in [0, {int(num_levels) - 1}]"
    x = checks.in_range(tf.cast(x, tf.float32), 0, num_levels - 1, message)
    with tf.control_dependencies([tf.debugging.assert_equal(x, tf.round(x), message=message)]):
        if seed is None:
            noise = tf.random.uniform(tf.shape(x))
        else:
            noise = tf.random.stateless_uniform(tf.shape(x), seed=seed)
        return in_cells((x + noise) / float(num_levels), x, num_levels)


def in_cells(y, levels, num_levels):
    """``y`` (float32) with each value kept in the cell of its level: ``floor(K y) = x``.

    Float32 rounding can carry ``x + u`` with ``u < 1`` up to ``x + 1`` (for ``u`` within an
    ulp of 1, about one value in a million), and ``(x + u) / K`` times ``K`` can round across a
    cell's edge; the level then read back as ``floor(K y)`` (e.g. by variational
    dequantization) would be the next one. Each value is clipped to the float32 bounds of its
    cell, found once per ``K``.
    """
    low, high = (tf.constant(b) for b in _cell_bounds(int(num_levels)))
    index = tf.cast(levels, tf.int32)
    return tf.clip_by_value(y, tf.gather(low, index), tf.gather(high, index))


@functools.lru_cache(maxsize=8)
def _cell_bounds(num_levels):
    """The smallest and largest float32 ``y`` with ``floor(float32(y * K)) = x``, per level."""
    k = np.float32(num_levels)
    levels = np.arange(num_levels, dtype=np.float32)
    low, high = levels / k, (levels + np.float32(1)) / k
    for _ in range(8):
        low = np.where(np.floor(low * k) < levels, np.nextafter(low, np.float32(1)), low)
        high = np.where(np.floor(high * k) > levels, np.nextafter(high, np.float32(0)), high)
    assert (np.floor(low * k) == levels).all() and (np.floor(high * k) == levels).all()
    return low, high


def bits_per_dim(log_prob, num_dims, num_levels):
    """Bits/dim of discrete data from the log-density of its dequantized values in ``[0, 1)``.

    Args:
      log_prob: log-density (nats) of ``y = (x + u) / num_levels`` under the model.
      num_dims: number of values ``D`` per example (e.g. 784 for MNIST).
      num_levels: number of discrete levels ``K`` per value.
    """
    log_prob = tf.convert_to_tensor(log_prob)
    return -(log_prob - num_dims * math.log(num_levels)) / (num_dims * math.log(2.0))


@keras.saving.register_keras_serializable(package="tfflows")
class VariationalDequantizer(keras.layers.Layer):
    """Variational dequantization (Ho et al., 2019, Flow++): a conditional flow ``q(u | x)``
    draws the noise ``u`` in ``[0, 1)^D`` instead of ``U[0, 1)``, which tightens the bound

    ```none
    log P(x) >= E_{u ~ q(u|x)}[log p_y((x + u) / K) - log q(u | x)] - D log K.
    ```

    ``q``: logistic noise ``eps``, ``num_couplings`` affine couplings on alternating
    checkerboards whose conditioners also see features ``c(x)`` of the image, then a sigmoid:

    ```none
    eps ~ Logistic(0, 1)^D,   h = g_c(eps),   u = sigmoid(h)
    log q(u | x) = sum_i log Logistic(eps_i) - log|det dh/deps| - sum_i log sigmoid'(h_i)
    coupling k (mask b, 1 on the conditioning pixels):
      h' = b h + (1 - b) (h exp(s) + t),   (t, s) = net_k([b h, c(x)]),
      log|det dh'/dh| = sum_i (1 - b_i) s_i
    ```

    The conditioners start at zero, so ``h = eps`` and, since the logistic density is
    ``sigmoid'``, ``q`` starts as exactly ``U[0, 1)^D`` with ``log q = 0``: the bound starts as
    the uniform-dequantization one. Draws come from the layer's own `keras.random.SeedGenerator`
    (resumable, different on each replica: `tfflows.noise.step_seed`). Arithmetic is float32;
    the networks follow the dtype policy.

    #### Examples

    ```python
    import tensorflow as tf
    import tfflows

    dequantizer = tfflows.VariationalDequantizer([8, 8, 1], num_levels=17, filters=8, seed=0)
    levels = tf.random.uniform([2, 8, 8, 1], maxval=17, dtype=tf.int32)
    u, log_q = dequantizer(tf.cast(levels, tf.float32))  # u in [0, 1), log q(u | x) per image
    y = (tf.cast(levels, tf.float32) + u) / 17.0  # what the flow scores
    log_q  # [0., 0.]: q starts as U[0, 1)
    ```

    #### References

    1. Jonathan Ho, Xi Chen, Aravind Srinivas, Yan Duan and Pieter Abbeel. Flow++: Improving
       Flow-Based Generative Models with Variational Dequantization and Architecture Design. In
       *Proceedings of the 36th International Conference on Machine Learning (ICML)*, 2019.
       [arXiv:1902.00275](https://arxiv.org/abs/1902.00275).

    Args:
      event_shape: ``[H, W, C]`` of the images.
      num_levels: ``K``, the data's levels.
      filters: width of the context net and of each conditioner.
      num_blocks: residual blocks of the context net and of each conditioner.
      num_couplings: couplings of ``q``.
      seed: the noise generator's seed.
    """

    def __init__(
        self,
        event_shape,
        num_levels,
        filters=32,
        num_blocks=1,
        num_couplings=2,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.event_shape = tuple(int(n) for n in event_shape)
        if len(self.event_shape) != 3:
            raise ValueError(
                f"VariationalDequantizer needs image events [H, W, C], got {list(event_shape)}."
            )
        if int(num_levels) < 2:
            raise ValueError(f"num_levels must be at least 2, got {num_levels}.")
        self.num_levels = int(num_levels)
        self.filters, self.num_blocks = int(filters), int(num_blocks)
        self.num_couplings, self.seed = int(num_couplings), seed
        h, w, c = self.event_shape
        self.context = nets.ResNet(
            self.filters, self.num_blocks, self.filters, dtype=self.dtype_policy
        )
        self.context.build((None, h, w, c))
        # ResNet's output layer starts at zero; the context features should not.
        self.context.conv_out.kernel.assign(
            keras.initializers.GlorotUniform(seed)(self.context.conv_out.kernel.shape)
        )
        self.conditioners, self.bounds = [], []
        for _ in range(self.num_couplings):
            net = nets.ResNet(self.filters, self.num_blocks, 2 * c, dtype=self.dtype_policy)
            net.build((None, h, w, c + self.filters))
            self.conditioners.append(net)
            self.bounds.append(LogScaleBound(c))
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        self._masks = [
            ((rows + cols) % 2 == k % 2).astype(np.float32)[..., None]
            for k in range(self.num_couplings)
        ]
        self.noise = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, levels):
        """``(u, log q(u | x))`` for discrete images ``levels`` ``[batch, H, W, C]``
        (float, values in ``{0, ..., K - 1}``): ``u`` float32 in ``[0, 1)``, ``log q`` per
        example (nats)."""
        levels = tf.cast(levels, tf.float32)
        x = (levels + 0.5) / self.num_levels - 0.5
        features = tf.cast(self.context(tf.cast(x, self.compute_dtype)), tf.float32)
        tiny = 1e-6
        v = tf.random.stateless_uniform(
            tf.shape(levels), seed=noise.step_seed(self.noise), minval=tiny, maxval=1.0 - tiny
        )
        eps = tf.math.log(v) - tf.math.log1p(-v)
        log_q = _log_sigmoid_derivative(eps)
        h = eps
        for mask, net, bound in zip(self._masks, self.conditioners, self.bounds, strict=True):
            inputs = tf.concat([mask * h, features], axis=-1)
            shift, raw = tf.split(
                tf.cast(net(tf.cast(inputs, self.compute_dtype)), tf.float32), 2, -1
            )
            log_scale = (1.0 - mask) * bound(raw)
            h = mask * h + (1.0 - mask) * (h * tf.exp(log_scale) + shift)
            log_q -= log_scale
        log_q -= _log_sigmoid_derivative(h)
        u = tf.minimum(tf.sigmoid(h), 1.0 - tiny)
        return u, tf.reduce_sum(log_q, axis=[-3, -2, -1])

    def get_config(self):
        return {
            **super().get_config(),
            "event_shape": list(self.event_shape),
            "num_levels": self.num_levels,
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "num_couplings": self.num_couplings,
            "seed": self.seed,
        }


def _log_sigmoid_derivative(h):
    """``log sigmoid'(h) = log sigmoid(h) + log sigmoid(-h)``, also the standard logistic's
    log-density at ``h``."""
    return -tf.math.softplus(-h) - tf.math.softplus(h)
