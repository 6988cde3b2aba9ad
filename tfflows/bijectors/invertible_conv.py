"""Glow's invertible 1x1 convolution, plain or LU-decomposed."""

import keras
import numpy as np
import tensorflow as tf

from tfflows.bijectors._base import BijectorWeights, FlowBijector


@keras.saving.register_keras_serializable(package="tfflows")
class InvertibleConv1x1(FlowBijector):
    """A learned invertible channel mixing ``W`` (``C x C``) at every position (Kingma and
    Dhariwal, 2018): a generalization of the fixed channel permutations between couplings.

    ```none
    inverse (data -> latent):  x[h, w, :] = y[h, w, :] W
    forward (latent -> data):  y[h, w, :] = x[h, w, :] W^{-1}
    log|det J_inverse| = P * log|det W|
    ```

    with ``P`` the positions (``H * W`` for images, 1 for vectors ``[C]``). ``W`` starts as a
    random rotation (the Q of a QR decomposition of a standard normal matrix), so the bijector
    starts volume preserving.

    ``lu_decomposed=True`` parametrizes ``W`` as Glow's LU decomposition,

    ```none
    W = P L (U + diag(sign * exp(log_s))),   log|det W| = log|det P| + sum log_s
    ```

    with ``P`` the permutation of the initial matrix's decomposition and ``sign`` fixed, ``L``
    unit lower triangular and ``U`` strictly upper triangular learned: ``log|det W|`` then costs
    ``O(C)`` instead of ``O(C^3)``. (``log|det P|`` is 0 and ``|sign|`` 1 for the layer's own
    weights; both are computed, so that any weights it is given keep the log-det exact.) Both
    parametrizations compute the same function of ``W``. The matrix arithmetic is in the
    input's dtype (float32 in a `tfflows.Flow`) whatever the dtype policy.

    #### Examples

    ```python
    import tensorflow as tf
    from tfflows import bijectors

    conv = bijectors.InvertibleConv1x1([8, 8, 4], lu_decomposed=True, seed=0)
    images = tf.random.normal([2, 8, 8, 4])
    z, log_det = conv.inverse_and_log_det(images, event_ndims=3)  # 64 * log|det W|
    tf.debugging.assert_near(conv.forward(z), images, atol=1e-4)
    conv.matrix().shape  # [4, 4]
    ```

    #### References

    1. Diederik P. Kingma and Prafulla Dhariwal. Glow: Generative Flow with Invertible 1x1
       Convolutions. In *Advances in Neural Information Processing Systems 31 (NeurIPS)*, 2018.
       [arXiv:1807.03039](https://arxiv.org/abs/1807.03039).

    Args:
      event_shape: ``[H, W, C]`` or ``[C]``.
      lu_decomposed: learn ``W`` through its LU decomposition.
      seed: seed of the initial rotation; None draws from Keras' global seed
        (``keras.utils.set_random_seed``).
      validate_args: also check inputs for NaN / Inf at run time.
      name: bijector name; unique by default.
    """

    def __init__(self, event_shape, lu_decomposed=False, seed=None, validate_args=False, name=None):
        self._event_shape = tuple(int(n) for n in event_shape)
        if len(self._event_shape) not in (1, 3):
            raise ValueError(
                f"InvertibleConv1x1 needs an event shape [H, W, C] or [C], got {list(event_shape)}."
            )
        c = self._event_shape[-1]
        self._lu = bool(lu_decomposed)
        self._positions = int(np.prod(self._event_shape[:-1]))
        rotation, _ = np.linalg.qr(keras.random.normal((c, c), seed=seed).numpy())
        if self._lu:
            lu, pivots = tf.linalg.lu(rotation.astype(np.float64))
            lu = lu.numpy()
            diagonal = np.diag(lu)
            # tf.linalg.lu: rotation[pivots] = L U, so rotation = P L U with P = I[pivots]^T.
            values = {
                "permutation": np.eye(c)[pivots.numpy()].T,
                "lower": np.tril(lu, -1),
                "upper": np.triu(lu, 1),
                "log_diagonal": np.log(np.abs(diagonal)),
                "sign_diagonal": np.sign(diagonal),
            }
            trainable = {"lower", "upper", "log_diagonal"}
        else:
            values = {"kernel": rotation}
            trainable = {"kernel"}
        self._state = BijectorWeights(
            {
                key: {"shape": list(value.shape), "trainable": key in trainable}
                for key, value in values.items()
            }
        )
        for key, value in values.items():
            getattr(self._state, key).assign(value.astype(np.float32))
        super().__init__(
            forward_min_event_ndims=len(self._event_shape),
            validate_args=validate_args,
            name=name,
        )

    @property
    def lu_decomposed(self):
        return self._lu

    def _matrix_and_log_det(self, dtype):
        """``(W, log|det W|)`` in ``dtype``."""
        s = self._state
        if not self._lu:
            kernel = tf.cast(s.kernel, dtype)
            return kernel, tf.linalg.slogdet(kernel)[1]
        c = self._event_shape[-1]
        permutation = tf.cast(s.permutation, dtype)
        lower = tf.linalg.band_part(tf.cast(s.lower, dtype), -1, 0)
        lower = lower - tf.linalg.band_part(lower, 0, 0) + tf.eye(c, dtype=dtype)
        upper = tf.linalg.band_part(tf.cast(s.upper, dtype), 0, -1)
        upper -= tf.linalg.band_part(upper, 0, 0)
        log_diagonal = tf.cast(s.log_diagonal, dtype)
        diagonal = tf.cast(s.sign_diagonal, dtype) * tf.exp(log_diagonal)
        matrix = permutation @ lower @ (upper + tf.linalg.diag(diagonal))
        # |det P| = 1: a permutation matrix.
        return matrix, tf.reduce_sum(log_diagonal)

    def matrix(self):
        """``W`` (float32): the latent of a one-position event ``y`` is ``y W``."""
        return self._matrix_and_log_det(tf.float32)[0]

    def _inverse_and_log_det(self, y):
        matrix, log_det = self._matrix_and_log_det(y.dtype)
        return _times(y, matrix), self._positions * log_det

    def _inverse(self, y):
        return self._inverse_and_log_det(y)[0]

    def _inverse_log_det_jacobian(self, y):
        return self._inverse_and_log_det(y)[1]

    def _forward_and_log_det(self, x):
        matrix, log_det = self._matrix_and_log_det(x.dtype)
        return _times(x, tf.linalg.inv(matrix)), -self._positions * log_det

    def _forward(self, x):
        return self._forward_and_log_det(x)[0]

    def _forward_log_det_jacobian(self, x):
        return self._forward_and_log_det(x)[1]


def _times(x, matrix):
    """``x @ matrix`` over the last axis: one ``[N, C] x [C, C]`` matmul (``tf.linalg.matvec``
    broadcasts instead to ``N`` products of ``C x C`` by ``C x 1``)."""
    return tf.tensordot(x, matrix, axes=1)
