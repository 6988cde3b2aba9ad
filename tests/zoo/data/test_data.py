import gzip
import struct

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from zoo import data


def as_numpy(ds):
    return [tuple(np.asarray(t) for t in e) if isinstance(e, tuple) else np.asarray(e) for e in ds]


def write_idx(path, array):
    codes = {np.uint8: 0x08}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.fixture
def mnist_like():
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (20, 6, 6), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 20, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (8, 6, 6), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 8, dtype=np.uint8),
    }


def test_digits_splits_are_fixed_disjoint_and_carry_17_levels():
    train, info = data.load("digits", "train", scaling="unit", with_labels=True)
    test, test_info = data.load("digits", "test", scaling="unit", with_labels=True)
    assert info.num_levels == 17 and info.image_shape == (8, 8, 1) and info.num_classes == 10
    train, test = as_numpy(train), as_numpy(test)
    assert (len(train), len(test)) == (1500, 297) == (info.num_examples, test_info.num_examples)
    levels = np.stack([x for x, _ in train]) * 16
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)
    assert levels.max() == 16
    train_keys = {x.tobytes() for x, _ in train}
    assert sum(x.tobytes() in train_keys for x, _ in test) < 5  # a few digits repeat exactly
    again = as_numpy(data.load("digits", "test", scaling="unit", with_labels=True)[0])
    np.testing.assert_array_equal(np.stack([x for x, _ in again]), np.stack([x for x, _ in test]))


def test_dequantized_digits_stay_in_their_level_cells():
    plain = np.stack(as_numpy(data.load("digits", "test[:50]", scaling="unit")[0])) * 16
    noisy = np.stack(as_numpy(data.load("digits", "test[:50]")[0]))
    assert noisy.min() >= 0.0 and noisy.max() < 1.0
    np.testing.assert_array_equal(np.floor(noisy * 17), np.round(plain))


def test_dequantize_seed_fixes_the_noise_and_none_redraws_it():
    fixed, _ = data.load("digits", "test[:20]", dequantize_seed=3)
    np.testing.assert_array_equal(np.stack(as_numpy(fixed)), np.stack(as_numpy(fixed)))
    fresh, _ = data.load("digits", "test[:20]")
    assert np.any(np.stack(as_numpy(fresh)) != np.stack(as_numpy(fresh)))


def test_each_pass_draws_new_noise_and_order_reproducibly_from_the_seed():
    """As `fit` iterates a dataset once per epoch, with the global seed set as `zoo train` sets
    it: every epoch dequantizes anew, and a resumed run that skips the passes already done (one
    iterator each) gets the very next epoch's order and noise."""

    def passes(skip=0, count=3):
        keras.utils.set_random_seed(0)
        ds, _ = data.load("digits", "test[:40]", shuffle=True, seed=0, batch_size=40)
        for _ in range(skip):
            iter(ds)
        return [next(iter(ds)).numpy() for _ in range(count)]

    first, second, third = passes()
    for a, b in ((first, second), (second, third)):
        assert np.all(a != b)  # noise (and order) redrawn
        np.testing.assert_array_equal(np.sort(np.floor(a * 17), 0), np.sort(np.floor(b * 17), 0))
    np.testing.assert_array_equal(passes(skip=2, count=1)[0], third)


def test_binarized_pixels_are_bernoulli_draws_of_their_intensity():
    """Dynamic binarization: each pass a new draw of {0, 1} per pixel whose mean over passes is
    the pixel's intensity; a fixed seed binarizes once, whatever the batching; the dequantized
    binary images keep their level, with noise independent of the draw."""
    intensity = np.stack(as_numpy(data.load("digits", "test[:30]", scaling="unit")[0]))
    ds, info = data.load("digits", "test[:30]", binarize=True, scaling="unit", batch_size=30)
    assert info.num_levels == 2
    draws = np.stack(list(ds.repeat(300).as_numpy_iterator()))
    assert set(np.unique(draws)) == {0.0, 1.0}
    assert np.any(draws[0] != draws[1])
    error = np.sqrt(intensity * (1 - intensity) / len(draws))
    assert np.all(np.abs(draws.mean(0) - intensity) <= 5 * error + 1e-6)
    assert np.all(draws[:, intensity == 0.0] == 0.0) and np.all(draws[:, intensity == 1.0] == 1.0)

    def fixed(batch_size, scaling="unit"):
        ds, _ = data.load(
            "digits",
            "test[:30]",
            binarize=True,
            dequantize_seed=5,
            scaling=scaling,
            batch_size=batch_size,
        )
        return np.concatenate(as_numpy(ds))

    once = fixed(30)
    np.testing.assert_array_equal(once, fixed(30))
    np.testing.assert_array_equal(once, fixed(7))
    noisy = fixed(30, "dequantize")
    np.testing.assert_array_equal(np.floor(noisy * 2), once)
    noise = (noisy * 2 - once).ravel()
    assert abs(np.corrcoef(noise, once.ravel())[0, 1]) < 0.05


def test_batching_shuffling_and_resize_to_rgb():
    ds, info = data.load(
        "digits",
        "train",
        batch_size=32,
        shuffle=True,
        seed=1,
        image_size=(16, 16),
        color="rgb",
        scaling="unit",
    )
    batch = next(iter(ds)).numpy()
    assert info.image_shape == (16, 16, 3) and batch.shape == (32, 16, 16, 3)
    np.testing.assert_array_equal(batch[..., 0], batch[..., 2])
    np.testing.assert_allclose(batch * 16, np.round(batch * 16), atol=1e-5)  # still on levels


def test_keras_npz(tmp_path, mnist_like):
    path = tmp_path / "mnist.npz"
    np.savez(path, **mnist_like)
    ds, info = data.load(str(path), "test", scaling="unit", with_labels=True)
    images, labels = zip(*as_numpy(ds), strict=True)
    assert info.num_levels == 256 and info.image_shape == (6, 6, 1)
    np.testing.assert_allclose(np.stack(images)[..., 0] * 255, mnist_like["x_test"], atol=1e-3)
    np.testing.assert_array_equal(labels, mnist_like["y_test"])
    assert len(as_numpy(data.load(str(path), "train[5:15]")[0])) == 10


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_folder_and_single_file(tmp_path, mnist_like, suffix):
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", mnist_like["x_test"])
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", mnist_like["y_test"])
    ds, info = data.load(str(tmp_path), "test[2:]", scaling="unit", with_labels=True)
    images, labels = zip(*as_numpy(ds), strict=True)
    # The classes counted over every label file of the folder: here the test split's only.
    assert info.num_examples == 6 and info.num_classes == mnist_like["y_test"].max() + 1
    np.testing.assert_allclose(np.stack(images)[..., 0] * 255, mnist_like["x_test"][2:], atol=1e-3)
    np.testing.assert_array_equal(labels, mnist_like["y_test"][2:])
    single = str(tmp_path / f"t10k-images-idx3-ubyte{suffix}")
    assert len(as_numpy(data.load(single, "all")[0])) == 8
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.array([0, 12], np.uint8))
    assert data.load(str(tmp_path), "test", with_labels=True)[1].num_classes == 13


def test_corrupt_and_missing_files_are_named(tmp_path, mnist_like):
    truncated = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(truncated, mnist_like["x_test"])
    truncated.write_bytes(truncated.read_bytes()[:-10])
    with pytest.raises(data.CorruptFileError, match=r"t10k-images-idx3-ubyte is corrupt.*8, 6, 6"):
        data.load(str(tmp_path), "test")
    bad_magic = tmp_path / "junk-images-idx3-ubyte"
    bad_magic.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(data.CorruptFileError, match="not an idx file"):
        data.load(str(bad_magic), "all")
    gz = tmp_path / "cut-images-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 40)[:-8])
    with pytest.raises(data.CorruptFileError, match=r"cut-images-idx3-ubyte\.gz"):
        data.load(str(gz), "all")
    with pytest.raises(data.DatasetUnavailableError, match=r"train-images-idx3-ubyte\[\.gz\]"):
        data.load(str(tmp_path), "train")
    with pytest.raises(data.DatasetUnavailableError, match="No data file or folder"):
        data.load(str(tmp_path / "absent.npz"), "train")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(data.CorruptFileError, match=r"broken\.npz"):
        data.load(str(tmp_path / "broken.npz"), "train")


def test_tfds_by_name_with_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        ds, info = data.load("mnist", "train", batch_size=4, with_labels=True, scaling="unit")
        images, labels = next(iter(ds))
    assert info.num_levels == 256 and info.image_shape == (28, 28, 1) and info.num_classes == 10
    assert images.shape == (4, 28, 28, 1) and labels.dtype == tf.int64
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0


def test_missing_tfds_dataset_says_how_to_provide_it(tmp_path):
    with pytest.raises(data.DatasetUnavailableError, match=r"data_dir.*local file"):
        data.load("mnist", "train", data_dir=str(tmp_path))


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        data.load("digits", "validation")
    with pytest.raises(ValueError, match="Cannot read split"):
        data.load("digits", "train[a:b]")
    with pytest.raises(ValueError, match="color"):
        data.load("digits", color="sepia")


def test_scalings_are_affine_maps_of_the_same_levels():
    levels = np.stack(as_numpy(data.load("digits", "test[:40]", scaling="unit")[0])) * 16
    symmetric = np.stack(as_numpy(data.load("digits", "test[:40]", scaling="symmetric")[0]))
    np.testing.assert_allclose((symmetric + 1.0) * 8.0, levels, atol=1e-5)
    assert symmetric.min() == -1.0 and symmetric.max() == 1.0
    centered = np.stack(as_numpy(data.load("digits", "test[:40]", scaling="centered")[0]))
    np.testing.assert_allclose(centered, (levels + 0.5) / 17.0, atol=1e-5)
    with pytest.raises(ValueError, match="scaling must be one of"):
        data.load("digits", scaling="minus_one_to_one")


def test_classes_are_kept_renumbered_and_drawn_per_class():
    every = as_numpy(data.load("digits", "train", scaling="unit", with_labels=True)[0])
    originals = {image.tobytes(): int(label) for image, label in every}
    ds, info = data.load(
        "digits", "train", scaling="unit", with_labels=True, classes=[7, 3], per_class=4, seed=1
    )
    subset = as_numpy(ds)
    assert info.classes == (7, 3) and info.num_classes == 2 and info.num_examples == 8
    # Each image is one of the training images of its class, renumbered 7 -> 0, 3 -> 1.
    assert sorted(int(label) for _, label in subset) == [0, 0, 0, 0, 1, 1, 1, 1]
    for image, label in subset:
        assert originals[image.tobytes()] == (7, 3)[int(label)]
    # The draw is fixed by the seed: the same every epoch and call, another for another seed.
    again = as_numpy(
        data.load(
            "digits", "train", scaling="unit", with_labels=True, classes=[7, 3], per_class=4, seed=1
        )[0]
    )
    other = as_numpy(
        data.load(
            "digits", "train", scaling="unit", with_labels=True, classes=[7, 3], per_class=4, seed=2
        )[0]
    )
    key = lambda items: sorted(image.tobytes() for image, _ in items)  # noqa: E731
    assert key(again) == key(subset) == key(as_numpy(ds)) and key(other) != key(subset)
    whole, whole_info = data.load("digits", "test", with_labels=True, classes=[0, 1, 2])
    assert whole_info.num_examples == sum(1 for _ in as_numpy(whole))
    assert whole.cardinality().numpy() == whole_info.num_examples


def test_bad_class_selections_are_explained():
    with pytest.raises(ValueError, match=r"not all in 0 \.\. 9"):
        data.load("digits", "train", classes=[3, 10])
    with pytest.raises(ValueError, match="distinct"):
        data.load("digits", "train", classes=[3, 3])
    with pytest.raises(ValueError, match=r"too few images \(class 3: \d+\); asked for 1000"):
        data.load("digits", "train", classes=[3], per_class=1000)
    with pytest.raises(ValueError, match="per_class must be at least 1"):
        data.load("digits", "train", per_class=0)


def test_empty_or_overlong_splits_are_refused():
    with pytest.raises(ValueError, match=r"Split 'train\[5:2\]' is empty"):
        data.load("digits", "train[5:2]")
    with pytest.raises(ValueError, match=r"reaches example 100000, but it has 297"):
        data.load("digits", "test[:100000]")
    assert data.load("digits", "test[-10:]")[1].num_examples == 10
