"""Coupling masks: which part of an event conditions a coupling and which part it transforms.

A coupling bijector splits an event ``x`` into a conditioning part ``x_A`` (passed through
unchanged, fed to the conditioner network) and a transformed part ``x_B``. A `Mask` says how:

* ``half(d)``: the first ``d // 2`` units condition, the rest are transformed.
* ``alternating(d)``: even units condition, odd units are transformed (the NICE reference code).
* ``checkerboard((h, w, c))``: pixels with ``(i + j)`` even condition (all channels).
* ``packed_checkerboard((h, w, c))``: the same pixels, each row's packed side by side.
* ``channel((h, w, c))``: the first ``c // 2`` channels condition.

``mask.complement()`` swaps the roles of A and B. Vector masks, the channel mask and the packed
checkerboard *gather*: the conditioner sees only ``x_A`` and returns values for ``x_B`` alone.
The checkerboard *multiplies*, as in the RealNVP paper (Dinh et al., 2016): the conditioner sees
``m * x`` (B zeroed) at full resolution and its outputs are used at B only. The packed
checkerboard keeps the paper's partition but gathers each row's ``W / 2`` pixels of A (and of
B) into an ``[H, W / 2, C]`` map, as normflows' ``split_mode="checkerboard"`` does: a
convolutional conditioner then works on half the positions (half the FLOPs), and sees A's
pixels as neighbours where they are two apart in a row, or diagonal in the image.
"""

import numpy as np
import tensorflow as tf

_VECTOR_KINDS = ("half", "alternating")
_IMAGE_KINDS = ("checkerboard", "packed_checkerboard", "channel")
KINDS = _VECTOR_KINDS + _IMAGE_KINDS


class Mask:
    """A binary partition of an event into a conditioning part A and a transformed part B.

    Args:
      kind: one of ``"half"``, ``"alternating"`` (vector events ``[D]``), ``"checkerboard"``,
        ``"packed_checkerboard"`` (an even ``W``), ``"channel"`` (image events ``[H, W, C]``).
      event_shape: the event shape the mask partitions.
      parity: 0 or 1; parity 1 is the complement of parity 0.

    Raises:
      ValueError: for an unknown kind, an event shape of the wrong rank, or an event that the
        mask cannot split into two non-empty parts.
    """

    def __init__(self, kind, event_shape, parity=0):
        if kind not in KINDS:
            raise ValueError(f"Unknown mask kind {kind!r}; expected one of {KINDS}.")
        event_shape = tuple(int(n) for n in event_shape)
        if parity not in (0, 1):
            raise ValueError(f"Mask parity must be 0 or 1, got {parity!r}.")
        want_rank = 1 if kind in _VECTOR_KINDS else 3
        if len(event_shape) != want_rank:
            layout = "[D]" if want_rank == 1 else "[H, W, C]"
            raise ValueError(
                f"A {kind!r} mask needs events of shape {layout}; got event shape "
                f"{list(event_shape)}."
            )
        if kind == "packed_checkerboard" and event_shape[1] % 2:
            raise ValueError(
                f"A packed checkerboard packs half of each row: it needs an even width; got "
                f"event shape {list(event_shape)}."
            )
        self.kind = kind
        self.event_shape = event_shape
        self.parity = parity
        self._conditioning = _conditioning_pattern(kind, event_shape, parity)
        n_cond = int(self._conditioning.sum())
        if n_cond == 0 or n_cond == self._conditioning.size:
            raise ValueError(
                f"A {kind!r} mask cannot split an event of shape {list(event_shape)} into two "
                f"non-empty parts: it would condition on {n_cond} of "
                f"{self._conditioning.size} units."
            )
        if kind == "packed_checkerboard":
            # Row i's A pixels sit at column parity (i + parity) % 2 of each pair of columns.
            first = (np.arange(event_shape[0]) + parity) % 2 == 0
            self._a_in_first_column = first[:, None, None]
        elif self.gathers:
            self._index_a = np.flatnonzero(self._conditioning).astype(np.int32)
            self._index_b = np.flatnonzero(~self._conditioning).astype(np.int32)
            self._merge_order = np.argsort(np.concatenate([self._index_a, self._index_b]))
            # Half and channel masks are contiguous: slicing beats gathering. An alternating
            # mask over an even number of units is a [D / 2, 2] layout: strided slices and a
            # stack, whose gradients are dense copies too (a gather's is a scatter).
            n_a = len(self._index_a)
            self._interleaved = kind == "alternating" and event_shape[-1] % 2 == 0
            if np.array_equal(self._index_a, np.arange(n_a)):
                self._a_first = True
            elif np.array_equal(self._index_b, np.arange(len(self._index_b))):
                self._a_first = False
            else:
                self._a_first = None
        else:
            self._weights = self._conditioning.astype(np.float32)

    @property
    def gathers(self):
        """True when A and B are gathered (along the last axis, or for the packed checkerboard
        along the width); False when B is multiplied out."""
        return self.kind != "checkerboard"

    @property
    def event_ndims(self):
        return len(self.event_shape)

    @property
    def conditioning(self):
        """Boolean numpy array over the pattern's axes: True where a unit belongs to A.

        Shape ``[D]`` for vector masks, ``[C]`` for the channel mask, ``[H, W, C]`` for the
        checkerboard.
        """
        return self._conditioning.copy()

    @property
    def conditioning_shape(self):
        """Event shape of the conditioner's input."""
        if not self.gathers:
            return self.event_shape
        if self.kind == "packed_checkerboard":
            return self._packed_shape
        return (*self.event_shape[:-1], len(self._index_a))

    @property
    def transformed_shape(self):
        """Event shape of the values the conditioner must produce (one per unit of B)."""
        if not self.gathers:
            return self.event_shape
        if self.kind == "packed_checkerboard":
            return self._packed_shape
        return (*self.event_shape[:-1], len(self._index_b))

    @property
    def _packed_shape(self):
        h, w, c = self.event_shape
        return (h, w // 2, c)

    def _pairs(self, x):
        """``x`` ``[..., H, W, C]`` as ``[..., H, W / 2, 2, C]``: each row's column pairs."""
        h, w, c = self.event_shape
        return tf.reshape(x, tf.concat([tf.shape(x)[:-3], [h, w // 2, 2, c]], 0))

    def complement(self):
        return Mask(self.kind, self.event_shape, 1 - self.parity)

    def split(self, x):
        """Returns ``(x_A, x_B)``: the conditioner input and the values to transform."""
        if not self.gathers:
            return x * tf.constant(self._weights, x.dtype), x
        if self.kind == "packed_checkerboard":
            pairs = self._pairs(x)
            left, right = pairs[..., 0, :], pairs[..., 1, :]
            first = tf.constant(self._a_in_first_column)
            return tf.where(first, left, right), tf.where(first, right, left)
        if self._interleaved:
            even, odd = x[..., 0::2], x[..., 1::2]
            return (even, odd) if self.parity == 0 else (odd, even)
        if self._a_first is None:
            return tf.gather(x, self._index_a, axis=-1), tf.gather(x, self._index_b, axis=-1)
        n_a, n_b = len(self._index_a), len(self._index_b)
        if self._a_first:
            return x[..., :n_a], x[..., n_a:]
        return x[..., n_b:], x[..., :n_b]

    def merge(self, x, y_b):
        """Returns the event whose A part is ``x``'s and whose B part is ``y_b``."""
        if not self.gathers:
            return tf.where(tf.constant(self._conditioning), x, y_b)
        x_a = self.split(x)[0]
        if self.kind == "packed_checkerboard":
            first = tf.constant(self._a_in_first_column)
            pairs = tf.stack([tf.where(first, x_a, y_b), tf.where(first, y_b, x_a)], axis=-2)
            return tf.reshape(pairs, tf.shape(x))
        if self._interleaved:
            pairs = tf.stack([x_a, y_b] if self.parity == 0 else [y_b, x_a], axis=-1)
            return tf.reshape(pairs, tf.shape(x))
        if self._a_first is None:
            return tf.gather(tf.concat([x_a, y_b], axis=-1), self._merge_order, axis=-1)
        return tf.concat([x_a, y_b] if self._a_first else [y_b, x_a], axis=-1)

    def sum_transformed(self, values):
        """Sums ``values`` (shaped like ``x_B``) over the units of B and the event axes."""
        if not self.gathers:
            values = values * tf.constant(1.0 - self._weights, values.dtype)
        return tf.reduce_sum(values, axis=list(range(-self.event_ndims, 0)))

    def get_config(self):
        return {"kind": self.kind, "event_shape": list(self.event_shape), "parity": self.parity}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Mask) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((self.kind, self.event_shape, self.parity))

    def __repr__(self):
        return f"Mask({self.kind!r}, event_shape={list(self.event_shape)}, parity={self.parity})"


def _conditioning_pattern(kind, event_shape, parity):
    if kind == "half":
        (d,) = event_shape
        pattern = np.arange(d) < d // 2
    elif kind == "alternating":
        (d,) = event_shape
        pattern = np.arange(d) % 2 == 0
    elif kind == "channel":
        c = event_shape[-1]
        pattern = np.arange(c) < c // 2
    else:  # the checkerboards
        h, w, c = event_shape
        ij = np.add.outer(np.arange(h), np.arange(w)) % 2 == 0
        pattern = np.repeat(ij[:, :, None], c, axis=2)
    return pattern if parity == 0 else ~pattern


def _vector_shape(event_size):
    return tuple(event_size) if np.ndim(event_size) else (event_size,)


def half(event_size, parity=0):
    """First ``event_size // 2`` units condition (parity 0); the complement with parity 1."""
    return Mask("half", _vector_shape(event_size), parity)


def alternating(event_size, parity=0):
    """Even units condition (parity 0), odd units with parity 1, as in the NICE reference code."""
    return Mask("alternating", _vector_shape(event_size), parity)


def checkerboard(event_shape, parity=0):
    """Pixels with ``(i + j) % 2 == parity`` condition, across all channels."""
    return Mask("checkerboard", event_shape, parity)


def packed_checkerboard(event_shape, parity=0):
    """`checkerboard`'s partition, each part packed row by row into ``[H, W / 2, C]``."""
    return Mask("packed_checkerboard", event_shape, parity)


def channel(event_shape, parity=0):
    """The first ``C // 2`` channels condition (parity 0); the last ``C - C // 2`` with parity 1."""
    return Mask("channel", event_shape, parity)
