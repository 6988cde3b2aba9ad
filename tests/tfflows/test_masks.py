import numpy as np
import pytest
import tensorflow as tf

from tfflows import masks

ALL = [
    masks.half(6),
    masks.half(7),
    masks.alternating(6),
    masks.alternating(6, parity=1),
    masks.alternating(5),
    masks.checkerboard((4, 4, 2)),
    masks.packed_checkerboard((4, 4, 2)),
    masks.packed_checkerboard((3, 6, 1), parity=1),
    masks.channel((4, 4, 2)),
    masks.channel((2, 2, 3)),
]


@pytest.mark.parametrize("mask", ALL, ids=repr)
def test_split_then_merge_restores_event_and_parts_partition_it(mask):
    x = tf.reshape(
        tf.range(1, 1 + np.prod(mask.event_shape), dtype=tf.float32), (1, *mask.event_shape)
    )
    x_a, x_b = mask.split(x)
    assert tuple(x_a.shape[1:]) == mask.conditioning_shape
    assert tuple(x_b.shape[1:]) == mask.transformed_shape
    np.testing.assert_array_equal(mask.merge(x, x_b), x)
    # Replacing B by -B flips exactly the transformed units and keeps A.
    flipped = mask.merge(x, -x_b).numpy()[0]
    changed = flipped != x.numpy()[0]
    pattern = mask.conditioning
    expected = ~np.broadcast_to(pattern, mask.event_shape)
    np.testing.assert_array_equal(changed, expected)
    assert 0 < pattern.sum() < pattern.size
    if mask.kind in ("half", "alternating", "packed_checkerboard"):  # the units' order kept
        units = x[0].numpy()
        np.testing.assert_array_equal(x_a[0], units[pattern].reshape(mask.conditioning_shape))
        np.testing.assert_array_equal(x_b[0], units[~pattern].reshape(mask.transformed_shape))


@pytest.mark.parametrize("mask", ALL, ids=repr)
def test_complement_swaps_the_parts(mask):
    np.testing.assert_array_equal(mask.complement().conditioning, ~mask.conditioning)
    assert mask.complement().complement() == mask


def test_patterns_are_the_documented_ones():
    np.testing.assert_array_equal(masks.half(5).conditioning, [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(masks.alternating(5).conditioning, [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(masks.alternating(5, 1).conditioning, [0, 1, 0, 1, 0])
    board = masks.checkerboard((2, 3, 1)).conditioning[..., 0]
    np.testing.assert_array_equal(board, [[1, 0, 1], [0, 1, 0]])
    for parity in (0, 1):
        packed = masks.packed_checkerboard((4, 6, 2), parity).conditioning
        np.testing.assert_array_equal(packed, masks.checkerboard((4, 6, 2), parity).conditioning)
    np.testing.assert_array_equal(masks.channel((2, 2, 4)).conditioning, [1, 1, 0, 0])


def test_sum_transformed_counts_only_b():
    mask = masks.checkerboard((2, 2, 1))
    ones = tf.ones((3, 2, 2, 1))
    np.testing.assert_array_equal(mask.sum_transformed(ones), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(masks.half(5).sum_transformed(tf.ones((1, 3))), [3.0])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: masks.half(1), "cannot split"),
        (lambda: masks.alternating(1), "cannot split"),
        (lambda: masks.channel((4, 4, 1)), "cannot split"),
        (lambda: masks.checkerboard((1, 1, 3)), "cannot split"),
        (lambda: masks.checkerboard((6,)), r"\[H, W, C\]"),
        (lambda: masks.packed_checkerboard((4, 5, 1)), "even width"),
        (lambda: masks.half((4, 4, 2)), r"\[D\]"),
        (lambda: masks.Mask("diagonal", (4,)), "Unknown mask kind"),
        (lambda: masks.half(4, parity=2), "parity"),
    ],
)
def test_bad_masks_are_refused_with_a_named_reason(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_config_round_trip():
    mask = masks.channel((4, 4, 2), parity=1)
    assert masks.Mask.from_config(mask.get_config()) == mask
