"""The local sources of `zoo.data.files` through `zoo.data.load`: .npz arrays of any name,
LIBSVM text (USPS), folders of images; and `zoo train` on a folder of PNGs."""

import bz2
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from zoo import cli, data


def arrays(ds):
    """A dataset's columns as arrays (one column for an unlabelled one)."""
    elements = list(ds.as_numpy_iterator())
    if not isinstance(elements[0], tuple):
        return [np.stack(elements)]
    return [np.stack(column) for column in zip(*elements, strict=True)]


@pytest.fixture(scope="module")
def digits():
    """300 of the bundled digits as 8-bit images (levels 0..16 times 15) and their labels."""
    from sklearn.datasets import load_digits

    found = load_digits()
    return (found.images[:300] * 15).astype(np.uint8), found.target[:300].astype(np.int64)


def test_npz_arrays_of_any_name_are_one_split(tmp_path, digits):
    images, labels = digits
    path = tmp_path / "faces.npz"
    np.savez(path, pictures=images, ids=labels)
    x, y = arrays(
        data.load(
            str(path), "all[100:]", x_key="pictures", y_key="ids", scaling="unit", with_labels=True
        )[0]
    )
    np.testing.assert_allclose(x[..., 0] * 255, images[100:], atol=1e-3)
    np.testing.assert_array_equal(y, labels[100:])
    _, info = data.load(str(path), "train", x_key="pictures", scaling="unit")
    assert info.num_classes is None and info.num_examples == 300
    with pytest.raises(ValueError, match=r"no array 'x_train' \(it has \['ids', 'pictures'\]\)"):
        data.load(str(path), "train")
    with pytest.raises(ValueError, match=r"no array 'labels'.*--y-key"):
        data.load(str(path), "train", x_key="pictures", y_key="labels")
    np.savez(tmp_path / "short.npz", pictures=images, ids=labels[:-1])
    with pytest.raises(ValueError, match="299 labels in 'ids' for 300 images"):
        data.load(str(tmp_path / "short.npz"), "all", x_key="pictures", y_key="ids")
    with pytest.raises(ValueError, match="x_key is for local files"):
        data.load("digits", "train", x_key="pictures")


def test_keras_layout_npz_without_y_arrays_has_no_labels(tmp_path, digits):
    images, _ = digits
    path = tmp_path / "unlabelled.npz"
    np.savez(path, x_train=images[:200], x_test=images[200:])
    ds, info = data.load(str(path), "test", scaling="unit", with_labels=True)
    x, y = arrays(ds)
    np.testing.assert_allclose(x[..., 0] * 255, images[200:], atol=1e-3)
    assert info.num_classes is None and (y == -1).all()
    with pytest.raises(ValueError, match=r"no array 'y_test'"):
        data.load(str(path), "test", y_key="y_test")


def _load_error(path, split="train"):
    """The one-line ValueError that `data.load` raises on ``path``."""
    with pytest.raises(ValueError) as error:
        data.load(str(path), split)
    message = str(error.value)
    assert len(message.splitlines()) == 1, message
    return message


def test_damaged_npz_files_are_named_without_unpickling(tmp_path, digits):
    images, labels = digits
    np.savez(tmp_path / "good.npz", x_train=images, y_train=labels)
    whole = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    assert "cut.npz is a truncated or damaged .npz archive: its zip directory is missing" in (
        _load_error(tmp_path / "cut.npz")
    )
    (tmp_path / "noise.npz").write_bytes(np.random.default_rng(0).bytes(3000))
    message = _load_error(tmp_path / "noise.npz")
    assert "noise.npz is not an .npz (zip of .npy arrays) archive" in message
    assert "pickle" not in message
    with zipfile.ZipFile(tmp_path / "text.npz", "w") as archive:
        archive.writestr("x_train.npy", "not an array")
        archive.writestr("y_train.npy", "1,2,3")
    message = _load_error(tmp_path / "text.npz")
    assert "text.npz is not an .npz (zip of .npy arrays) archive: its member 'x_train' is not " in (
        message
    )
    np.savez(tmp_path / "objects.npz", x_train=np.array([{"a": 1}] * 3, dtype=object))
    message = _load_error(tmp_path / "objects.npz")
    assert "objects.npz: array 'x_train' holds Python objects" in message
    assert "allow_pickle" not in message


def test_a_negative_label_is_named_with_its_index(tmp_path, digits):
    images, labels = digits
    labels = labels.copy()
    labels[17] = -1
    np.savez(tmp_path / "negative.npz", x_train=images, y_train=labels)
    assert "negative.npz: labels must be whole numbers >= 0; y_train[17] is -1" in _load_error(
        tmp_path / "negative.npz"
    )
    np.savez(tmp_path / "named.npz", pictures=images, ids=labels)
    with pytest.raises(ValueError, match=r"ids\[17\] is -1"):
        data.load(str(tmp_path / "named.npz"), "all", x_key="pictures", y_key="ids")


def write_libsvm(path, images, labels, scale):
    """LIBSVM lines as LIBSVM's USPS has them (labels 1..10, values in [-1, 1]); zeros left
    out as sparse files do."""
    lines = []
    for image, label in zip(images.reshape(len(images), -1), labels, strict=True):
        values = scale(image.astype(np.float64))
        pairs = " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(values) if v != 0)
        lines.append(f"{label + 1} {pairs}\n")
    opener = bz2.open if str(path).endswith(".bz2") else open
    with opener(path, "wt") as f:
        f.writelines(lines)


def test_libsvm_usps_files_give_16x16_images_and_digit_labels(tmp_path):
    rng = np.random.default_rng(0)
    # 16x16 images with levels 0..255; in [-1, 1] as v / 127.5 - 1 (127.5 is no level, so a
    # left-out 0 is level 127.5, which rounds to 128).
    images = rng.integers(0, 256, (30, 16, 16)).astype(np.uint8)
    images[0, 0, :4] = 0
    labels = rng.integers(0, 10, 30)
    usps = tmp_path / "usps"
    usps.mkdir()
    write_libsvm(usps / "usps.bz2", images[:20], labels[:20], lambda v: v / 127.5 - 1)
    write_libsvm(usps / "usps.t.bz2", images[20:], labels[20:], lambda v: v / 127.5 - 1)
    x, y = arrays(data.load(str(usps), "train[2:]", scaling="unit", with_labels=True)[0])
    _, info = data.load(str(usps), "test")
    assert info.image_shape == (16, 16, 1) and info.num_levels == 256 and info.num_examples == 10
    assert info.num_classes == 10
    np.testing.assert_allclose(x[..., 0] * 255, images[2:20], atol=1e-3)
    np.testing.assert_array_equal(y, labels[2:20])
    (x,) = arrays(data.load(str(usps / "usps.t.bz2"), "test", scaling="unit", num_levels=16)[0])
    np.testing.assert_allclose(x[..., 0] * 15, np.round(images[20:] / 255 * 15), atol=1e-4)
    # Plain text, values in [0, 1] and a missing feature (0) in the middle.
    write_libsvm(tmp_path / "plain.txt", images[:3], labels[:3], lambda v: v / 255)
    (x,) = arrays(data.load(str(tmp_path / "plain.txt"), "all", scaling="unit")[0])
    np.testing.assert_allclose(x[..., 0] * 255, images[:3], atol=1e-3)
    with pytest.raises(ValueError, match=r"splits 'train' \(usps.bz2\) and 'test'.*'validation'"):
        data.load(str(usps), "validation")


def test_bad_libsvm_files_are_named(tmp_path):
    (tmp_path / "words.txt").write_text("3 1:0.5 2:oops\n")
    with pytest.raises(data.CorruptFileError, match=r"words\.txt line 1 is not LIBSVM text"):
        data.load(str(tmp_path / "words.txt"), "all")
    (tmp_path / "range.txt").write_text("1 1:0.5 2:7.5\n")
    with pytest.raises(ValueError, match=r"range\.txt holds values in \[0, 7.5\]"):
        data.load(str(tmp_path / "range.txt"), "all")
    (tmp_path / "levels.txt").write_text("1 1:3 2:7 3:2 4:1\n")
    with pytest.raises(ValueError, match="say how many levels"):
        data.load(str(tmp_path / "levels.txt"), "all")
    assert data.load(str(tmp_path / "levels.txt"), "all", num_levels=8)[1].image_shape == (2, 2, 1)
    (tmp_path / "cut.bz2").write_bytes(bz2.compress(b"1 1:0.5\n" * 50)[:-12])
    with pytest.raises(data.CorruptFileError, match=r"cut\.bz2"):
        data.load(str(tmp_path / "cut.bz2"), "all")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(ValueError, match=r"empty\.txt holds no images"):
        data.load(str(tmp_path / "empty.txt"), "all")


def write_folder(root, images, labels=None, mode="L", suffix="png"):
    """One file per image, in a subfolder per label (``digit_3/``) when labels are given."""
    for i, image in enumerate(images):
        folder = root if labels is None else root / f"digit_{labels[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, "L").convert(mode).save(folder / f"{i:04d}.{suffix}")


def test_a_folder_of_class_subfolders_keeps_every_pixel_and_label(tmp_path, digits):
    images, labels = digits
    write_folder(tmp_path / "pngs", images, labels)
    ds, info = data.load(str(tmp_path / "pngs"), "all", scaling="unit", with_labels=True)
    assert (info.image_shape, info.num_levels, info.num_classes) == ((8, 8, 1), 256, 10)
    x, y = arrays(ds)
    # A fixed shuffled order: compare as sets of (image, label).
    found = sorted(
        (xi.tobytes(), int(yi))
        for xi, yi in zip(np.round(x * 255).astype(np.uint8), y, strict=True)
    )
    wanted = sorted(
        (xi[..., None].tobytes(), int(yi)) for xi, yi in zip(images, labels, strict=True)
    )
    assert found == wanted
    _, head = arrays(data.load(str(tmp_path / "pngs"), "all[:100]", with_labels=True)[0])
    assert len(set(head.tolist())) > 5  # slices mix the classes
    rgb, rgb_info = data.load(str(tmp_path / "pngs"), "all[:4]", color="rgb", image_size=(12, 10))
    assert rgb_info.image_shape == (12, 10, 3) and next(iter(rgb)).shape == (12, 10, 3)


def test_flat_split_and_colour_folders(tmp_path, digits):
    images, labels = digits
    write_folder(tmp_path / "flat", images[:20])
    ds, info = data.load(str(tmp_path / "flat"), "train[5:]", scaling="unit")
    (x,) = arrays(ds)
    written = {image[..., None].tobytes() for image in images[:20]}
    assert len({image.tobytes() for image in np.round(x * 255).astype(np.uint8)} & written) == 15
    assert info.num_classes is None and info.num_examples == 15 and info.image_shape == (8, 8, 1)
    # The test split lacks some classes: labels still follow every split's class folders.
    write_folder(tmp_path / "split" / "train", images[:30], labels[:30])
    test = np.isin(labels, [2, 7])
    write_folder(tmp_path / "split" / "test", images[test][:6], labels[test][:6])
    ds, info = data.load(str(tmp_path / "split"), "test", scaling="unit", with_labels=True)
    _, y = arrays(ds)
    assert sorted(y.tolist()) == sorted(labels[test][:6].tolist()) and info.num_classes == 10
    with pytest.raises(ValueError, match=r"has splits \['train', 'test'\], not 'validation'"):
        data.load(str(tmp_path / "split"), "validation")
    # JPEG (lossy) in colour: RGB, each image close to one of those written.
    write_folder(tmp_path / "colour", images[:4], mode="RGB", suffix="jpg")
    ds, info = data.load(str(tmp_path / "colour"), "all", scaling="unit")
    assert info.image_shape == (8, 8, 3)
    (x,) = arrays(ds)
    written = np.stack([images[:4]] * 3, axis=-1).astype(np.float64)
    errors = np.abs(x[:, None] * 255 - written[None]).mean(axis=(2, 3, 4))
    assert sorted(errors.argmin(axis=1)) == [0, 1, 2, 3] and errors.min(axis=1).max() < 12


def test_bad_image_folders_are_explained(tmp_path, digits):
    images, _ = digits
    write_folder(tmp_path / "sizes", images[:3])
    Image.new("L", (10, 12)).save(tmp_path / "sizes" / "big.png")
    with pytest.raises(ValueError, match=r"2 sizes \(e.g. 8x8 and 12x10\); pass image_size"):
        data.load(str(tmp_path / "sizes"), "all")
    assert data.load(str(tmp_path / "sizes"), "all", image_size=(8, 8))[1].num_examples == 4
    write_folder(tmp_path / "mixed", images[:2])
    write_folder(tmp_path / "mixed" / "cats", images[2:4])
    with pytest.raises(ValueError, match=r"both images .* and subfolders"):
        data.load(str(tmp_path / "mixed"), "all")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(data.CorruptFileError, match=r"a\.png is not a readable image"):
        data.load(str(tmp_path / "broken"), "all")
    write_folder(tmp_path / "cut", images[:6], [0, 1, 0, 1, 0, 1])
    cut = tmp_path / "cut" / "digit_1" / "0003.png"
    cut.write_bytes(cut.read_bytes()[:-20])  # a valid header, its data cut short
    message = _load_error(tmp_path / "cut", "all")
    assert f"{cut} is not a readable image (truncated or corrupt?)" in message, message
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("no pictures")
    with pytest.raises(data.DatasetUnavailableError, match=r"No images \(.png"):
        data.load(str(tmp_path / "none"), "all")


def test_zoo_train_realnvp_on_a_folder_of_pngs(tmp_path, digits):
    images, labels = digits
    write_folder(tmp_path / "pngs", images, labels)
    out = tmp_path / "run"
    tiny = ["--set", "filters=8", "--set", "num_blocks=1", "--epochs", "3", "--batch-size", "32"]
    splits = [
        "--train-split",
        "all[:250]",
        "--test-split",
        "all[250:]",
        "--no-tensorboard",
        "--no-export",
    ]
    metrics = cli.run(
        ["train", "realnvp", "--dataset", str(tmp_path / "pngs"), "--out", str(out), *splits, *tiny]
    )
    with open(out / "metrics.json") as f:
        saved = json.load(f)
    assert saved["num_levels"] == 256 and saved["image_shape"] == [8, 8, 1]
    assert saved["train_examples"] == 250
    # Learning: the held-out figure falls, below the 8 bits/dim of a uniform density.
    with open(out / "history.csv") as f:
        rows = f.read().splitlines()
    held_out = [float(r.split(",")[rows[0].split(",").index("val_bits_per_dim")]) for r in rows[1:]]
    assert held_out[-1] < held_out[0] and metrics["held_out_bits_per_dim"] < 8.0
    assert (out / "model.keras").exists() and (out / "samples.png").exists()
    assert not (out / "logs").exists()
