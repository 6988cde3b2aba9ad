"""Images and labels from files and folders on this machine, as arrays, for `zoo.data.load`.

`read(path, split, ...)` returns one split as a `LocalData`: ``images`` ``[N, H, W, C]``
(integer levels), ``labels`` ``[N]`` int64 or None, ``num_levels`` and ``num_classes``. What
``path`` is decides the reader:

* ``.npz``: Keras' ``mnist.npz`` layout, where the split names the arrays (``x_train`` /
  ``y_train``, ``x_test`` / ``y_test``; a file without the ``y_`` arrays has no labels); or
  arrays of any names given as ``x_key`` (and ``y_key``), which are then the whole file: any
  split name selects them, slices apply.
* MNIST idx files: a folder of ``train-images-idx3-ubyte[.gz]`` / ``t10k-images-idx3-ubyte[.gz]``
  (splits ``train`` / ``test``) with their ``-labels-idx1-`` files, or one images file.
* LIBSVM text, plain or ``.bz2``: ``label index:value ...`` per image, the form LIBSVM's site
  gives USPS in (``usps.bz2``, ``usps.t.bz2``: 16x16 digits, values in [-1, 1], labels 1..10).
  A folder holding ``NAME[.bz2]`` and ``NAME.t[.bz2]`` has splits ``train`` and ``test``; a
  file is one split. The image is the smallest square that holds every feature index (256:
  16x16; LIBSVM's MNIST, whose last pixels are always blank, 780: 28x28); missing features are
  0. Labels ``1..k`` (LIBSVM's habit) become ``0..k-1``. Values in [-1, 1] or [0, 1] are
  quantized to ``num_levels`` levels (default 256, 8 bits, as torchvision reads USPS, whose
  values are not on any coarser grid); integer values are levels already.
* a folder of images (PNG, JPEG, BMP, GIF), read by ``keras.utils.image_dataset_from_directory``:
  one subfolder per class (labels in the subfolders' sorted order) or all images in the folder
  itself (no labels). Subfolders named like the split (``train/``, ``test/``) are the splits;
  otherwise the folder is one split, in a fixed shuffled order (seed 0) so that slices such as
  ``train[:300]`` and ``train[300:]`` mix the classes. Images of one size keep it; images of
  several sizes need ``image_size``; the colour is grayscale when every image is, else RGB.
  8-bit images have 256 levels.

Every reader checks what it reads and raises `CorruptFileError` or ValueError with a one-line
reason that names the file.
"""

import bz2
import dataclasses
import gzip
import math
import os
import re
import struct
import zipfile
import zlib

import numpy as np

_SPLIT = re.compile(r"^(?P<split>[A-Za-z_]+)(\[(?P<start>-?\d*):(?P<stop>-?\d*)\])?$")
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGE_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


class DatasetUnavailableError(FileNotFoundError):
    """A dataset is not on this machine and could not be fetched; the message says what to do."""


class CorruptFileError(ValueError):
    """A local data file is truncated or not in the format its name promises."""


@dataclasses.dataclass(frozen=True)
class LocalData:
    images: np.ndarray
    labels: np.ndarray | None
    num_levels: int
    num_classes: int | None


def is_local(name, reserved=()):
    """Whether ``name`` means a file or folder here (not a TFDS name or one of ``reserved``)."""
    name = str(name)
    return name not in reserved and (
        os.path.sep in name
        or name.endswith((".npz", ".gz", ".bz2", "-ubyte"))
        or os.path.exists(name)
    )


def parse_split(split):
    """``"test[:1000]"`` -> ``("test", slice(None, 1000))``."""
    match = _SPLIT.match(str(split).replace(" ", ""))
    if not match:
        raise ValueError(f"Cannot read split {split!r}; expected e.g. 'train' or 'test[:1000]'.")
    start = int(match["start"]) if match["start"] else None
    stop = int(match["stop"]) if match["stop"] else None
    return match["split"], slice(start, stop)


def checked(window, size, split):
    """``window`` of a split of ``size`` examples; ValueError if it reaches past the split's
    ends (rather than silently cutting it) or selects nothing."""
    for bound in (window.start, window.stop):
        if bound is not None and not -size <= bound <= size:
            raise ValueError(
                f"Split {split!r} reaches example {bound}, but it has {size} examples."
            )
    if not range(size)[window]:
        raise ValueError(f"Split {split!r} is empty (of {size} examples).")
    return window


def read(path, split, num_levels=None, x_key=None, y_key=None, image_size=None, color=None):
    """Split ``split`` of the local source at ``path`` (see the module docstring)."""
    base, window = parse_split(split)
    path = str(path)
    if not os.path.exists(path):
        raise DatasetUnavailableError(
            f"No data file or folder at {path!r}. Give an .npz file, MNIST idx files, a LIBSVM "
            "file (e.g. usps.bz2) or a folder of images."
        )
    if (x_key or y_key) and not path.endswith(".npz"):
        raise ValueError(f"x_key and y_key name arrays in an .npz file; {path} is not one.")
    num_classes, every_label = None, None
    if path.endswith(".npz"):
        images, labels, every_label = _npz(path, base, x_key, y_key)
    elif pair := os.path.isdir(path) and _libsvm_pair(path):
        if base not in pair:
            raise ValueError(
                f"{path} has splits 'train' ({os.path.basename(pair['train'])}) and 'test' "
                f"({os.path.basename(pair['test'])}), not {base!r}."
            )
        images, labels, num_levels = _libsvm(pair[base], num_levels)
    elif os.path.isdir(path) and not _has_idx(path):
        images, labels, num_classes = _image_folder(path, base, image_size, color)
    elif os.path.isdir(path) or re.search(r"-ubyte(\.gz)?$", path):
        images, labels, every_label = _idx(path, base)
    else:
        images, labels, num_levels = _libsvm(path, num_levels)
    images = images[..., None] if images.ndim == 3 else images
    num_classes = num_classes or _num_classes(labels, every_label, path)
    window = checked(window, len(images), split)
    images, labels = images[window], None if labels is None else labels[window]
    return LocalData(images, labels, _levels(images, path, num_levels), num_classes)


def _num_classes(labels, every_label, path):
    """``max + 1`` over the source's every label (``every_label``: ``{name: labels}`` of all
    splits; default ``labels``), so that every split and slice of it agrees."""
    if labels is None:
        return None
    named = every_label or {"labels": labels}
    for name, found in named.items():
        if found.ndim != 1 or not np.issubdtype(found.dtype, np.integer):
            raise ValueError(
                f"{path} has labels of dtype {found.dtype} and shape {list(found.shape)}; the "
                "zoo needs one integer class 0..k-1 per image."
            )
        negative = np.flatnonzero(found < 0)
        if negative.size:
            index = int(negative[0])
            raise ValueError(
                f"{path}: labels must be whole numbers >= 0; {name}[{index}] is {found[index]}."
            )
    return max(int(found.max(initial=0)) for found in named.values()) + 1


def _levels(images, path, num_levels):
    """The number of levels of ``images``: checked against ``num_levels`` when given, else
    inferred where the dtype says it (uint8: 256, bool: 2)."""
    if num_levels is not None and (
        isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 2
    ):
        raise ValueError(f"num_levels must be a whole number >= 2, got {num_levels!r}.")
    if images.dtype == np.bool_:
        return num_levels or 2
    if images.dtype == np.uint8 and num_levels is None:
        return 256
    if not np.issubdtype(images.dtype, np.number):
        raise CorruptFileError(f"{path} holds {images.dtype} pixels, not numbers.")
    if not np.isfinite(images).all():
        raise ValueError(f"{path} holds NaN or infinite pixels; the images need integer levels.")
    low, high = images.min(), images.max()
    if np.issubdtype(images.dtype, np.floating) and not np.array_equal(images, np.round(images)):
        raise ValueError(
            f"{path} holds non-integer {images.dtype} pixels in [{low:g}, {high:g}]; the zoo "
            "needs integer levels 0 .. K-1: store e.g. round(x * 255) as uint8."
        )
    if num_levels is None:
        raise ValueError(
            f"{path} holds {images.dtype} pixels in [{low:g}, {high:g}]; say how many levels "
            "they have with num_levels (--num-levels), e.g. 256 for 8-bit images."
        )
    if low < 0 or high >= num_levels:
        raise ValueError(
            f"{path} holds pixels in [{low:g}, {high:g}], outside the {num_levels} levels "
            f"0 .. {num_levels - 1}."
        )
    return num_levels


def _npz(path, split, x_key, y_key):
    found = _npz_arrays(path)
    x_key = x_key or f"x_{split}"
    if y_key is None and x_key == f"x_{split}" and f"y_{split}" in found:
        y_key = f"y_{split}"
    for key in (x_key, y_key):
        if key is not None and key not in found:
            raise ValueError(
                f"{path} has no array {key!r} (it has {sorted(found)}); name the images and "
                "labels with x_key and y_key (--x-key, --y-key)."
            )
    images, labels = found[x_key], found.get(y_key)
    every_label = None if labels is None else {y_key: labels}
    if y_key == f"y_{split}":  # Keras' layout: every split's labels count the classes
        every_label = {k: found[k] for k in sorted(found) if k.startswith("y_")}
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{path} has {len(labels)} labels in {y_key!r} for {len(images)} images.")
    if images.ndim not in (3, 4):
        raise ValueError(
            f"{path}: {x_key!r} has shape {list(images.shape)}, not images [N, H, W(, C)]."
        )
    return images, labels, every_label


def _npz_arrays(path):
    """Every array of the ``.npz`` at ``path`` by name; `CorruptFileError` naming the file
    unless it is a whole zip of ``.npy`` arrays. Never unpickles (``allow_pickle=False``)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip's first member, or an empty zip
        raise CorruptFileError(f"{path} is not an .npz (zip of .npy arrays) archive.")
    if not zipfile.is_zipfile(path):
        raise CorruptFileError(
            f"{path} is a truncated or damaged .npz archive: its zip directory is missing."
        )
    found = {}
    try:
        with np.load(path, allow_pickle=False) as arrays:
            for name in arrays.files:
                try:
                    found[name] = arrays[name]
                except ValueError as error:
                    if "allow_pickle" in str(error):
                        raise CorruptFileError(
                            f"{path}: array {name!r} holds Python objects, which the zoo does "
                            "not unpickle; save numeric arrays."
                        ) from error
                    raise CorruptFileError(
                        f"{path}: member {name!r} is not a readable .npy array: "
                        f"{_first_line(error)}"
                    ) from error
                if not isinstance(found[name], np.ndarray):  # numpy gives other members as bytes
                    raise CorruptFileError(
                        f"{path} is not an .npz (zip of .npy arrays) archive: its member "
                        f"{name!r} is not a .npy array."
                    )
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
        raise CorruptFileError(f"{path} is a damaged .npz archive: {_first_line(error)}") from error
    return found


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _has_idx(folder):
    return any(re.search(r"-images-idx3-ubyte(\.gz)?$", f) for f in os.listdir(folder))


def _idx(path, split):
    images_path = _idx_images_path(path, split) if os.path.isdir(path) else path
    images = read_idx(images_path)
    if images.ndim != 3:
        raise CorruptFileError(
            f"{images_path} holds an array of shape {list(images.shape)}, not images [N, H, W]."
        )
    labels_path = images_path.replace("images-idx3", "labels-idx1")
    labels = read_idx(labels_path) if os.path.exists(labels_path) else None
    if labels is None:
        return images, None, None
    if len(labels) != len(images):
        raise CorruptFileError(f"{labels_path} has {len(labels)} labels for {len(images)} images.")
    # Both splits' labels where a folder has them, so that both count the same classes.
    siblings = [labels_path]
    if os.path.isdir(path):
        siblings = [
            os.path.join(path, f)
            for f in sorted(os.listdir(path))
            if re.search(r"-labels-idx1-ubyte(\.gz)?$", f)
        ]
    every_label = {
        os.path.basename(p): labels if p == labels_path else read_idx(p) for p in siblings
    }
    return images, labels.astype(np.int64), every_label


def _idx_images_path(folder, split):
    prefix = _IDX_PREFIX.get(split)
    if prefix is None:
        raise ValueError(f"MNIST idx folders have splits 'train' and 'test', not {split!r}.")
    for suffix in ("", ".gz"):
        path = os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}")
        if os.path.exists(path):
            return path
    raise DatasetUnavailableError(
        f"No {prefix}-images-idx3-ubyte[.gz] in {folder} for split {split!r}; found "
        f"{sorted(os.listdir(folder))}."
    )


def read_idx(path):
    """Reads an idx file (MNIST's format), gzip-compressed or plain, checking its size.

    Raises:
      CorruptFileError: a bad magic number, or fewer / more bytes than the header promises.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as error:
        raise CorruptFileError(f"Cannot read {path}: {error}") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise CorruptFileError(f"{path} is not an idx file (bad magic number {raw[:4]!r}).")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptFileError(f"{path} is truncated inside its header.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise CorruptFileError(
            f"{path} is corrupt: its header promises shape {list(shape)} ({expected} bytes of "
            f"data) but it holds {len(raw) - header} bytes."
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _libsvm_pair(folder):
    """``{"train": NAME[.bz2], "test": NAME.t[.bz2]}`` for the one such pair in ``folder``."""
    files = set(os.listdir(folder))
    for name in sorted(files):
        stem = re.sub(r"\.t(\.bz2)?$", "", name)
        if stem != name:
            for train in (stem, f"{stem}.bz2"):
                if train in files:
                    train, test = os.path.join(folder, train), os.path.join(folder, name)
                    return {"train": train, "test": test}
    return None


def _libsvm(path, num_levels):
    """Images, labels and levels from a LIBSVM text file (see the module docstring)."""
    opener = bz2.open if path.endswith(".bz2") else open
    labels, rows = [], []
    try:
        with opener(path, "rt") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    label, row = _libsvm_line(line, path, number)
                    labels.append(label)
                    rows.append(row)
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise CorruptFileError(
            f"Cannot read {path} as LIBSVM text (.npz, MNIST idx or LIBSVM expected): {error}"
        ) from error
    if not rows:
        raise ValueError(f"{path} holds no images.")
    side = math.isqrt(max(int(indices.max(initial=1)) for indices, _ in rows) - 1) + 1
    images = np.zeros((len(rows), side * side), np.float64)
    for image, (indices, values) in zip(images, rows, strict=True):
        image[indices - 1] = values
    if not np.isfinite(images).all():
        raise ValueError(f"{path} holds NaN or infinite values.")
    images = _quantized(images, path, num_levels).reshape(-1, side, side)
    labels = np.asarray(labels, np.int64)
    if labels.min() == 1:
        labels -= 1
    return images, labels, num_levels or (256 if images.dtype == np.uint8 else None)


def _libsvm_line(line, path, number):
    label, *pairs = line.split()
    try:
        label = float(label)
        indices, values = zip(*(p.split(":") for p in pairs), strict=True) if pairs else ((), ())
        indices, values = np.asarray(indices, np.int64), np.asarray(values, np.float64)
    except ValueError as error:
        raise CorruptFileError(
            f"{path} line {number} is not LIBSVM text ('label index:value ...'): {error}"
        ) from error
    if label != int(label) or indices.min(initial=1) < 1:
        raise CorruptFileError(
            f"{path} line {number}: labels must be integers and indices start at 1."
        )
    return int(label), (indices, values)


def _quantized(values, path, num_levels):
    """Values in [-1, 1] or [0, 1] as levels ``round(v01 (K - 1))``; integers as they are."""
    if np.array_equal(values, np.round(values)) and values.max() > 1:
        return values
    low, high = values.min(), values.max()
    if low < -1 or high > 1:
        raise ValueError(
            f"{path} holds values in [{low:g}, {high:g}]: neither levels (integers) nor "
            "intensities in [-1, 1] or [0, 1]."
        )
    unit = (values + 1) / 2 if low < 0 else values
    levels = num_levels or 256
    quantized = np.round(unit * (levels - 1))
    return quantized.astype(np.uint8) if levels <= 256 else quantized


def _image_folder(folder, split, image_size, color):
    """Images (uint8), labels and number of classes (None, None without class subfolders) of a
    folder of image files, via Keras. With split
    subfolders, the classes, size and colour are those of every split together, so that the
    splits agree (a test split without some class keeps the training split's numbering)."""
    import keras

    named = [s for s in ("train", "test", "validation") if os.path.isdir(f"{folder}/{s}")]
    if os.path.isdir(os.path.join(folder, split)):
        root, scope = os.path.join(folder, split), sorted({split, *named})
        scope = [os.path.join(folder, s) for s in scope]
    elif named:
        raise ValueError(f"{folder} has splits {named}, not {split!r}.")
    else:
        root, scope = folder, [folder]
    classes = sorted({e.name for r in scope for e in os.scandir(r) if e.is_dir()})
    found = {r: _image_paths(r) for r in scope}
    paths = found[root]
    if not paths:
        raise DatasetUnavailableError(
            f"No images ({', '.join(IMAGE_FORMATS)}) in {root} or its subfolders."
        )
    loose = [p for p in paths if os.path.dirname(p) == os.path.normpath(root)]
    if classes and loose:
        raise ValueError(
            f"{root} holds both images ({os.path.basename(loose[0])}, ...) and subfolders "
            f"({classes[0]}, ...): put every image in a class subfolder, or none."
        )
    sizes, gray = _sizes_and_gray([p for r in scope for p in found[r]])
    if image_size is None and len(sizes) > 1:
        examples = " and ".join(f"{h}x{w}" for h, w in sorted(sizes)[:2])
        raise ValueError(
            f"{folder} holds images of {len(sizes)} sizes (e.g. {examples}); pass image_size "
            "(--image-size H W) to resize them to one."
        )
    ds = keras.utils.image_dataset_from_directory(
        root,
        labels="inferred" if classes else None,
        label_mode="int" if classes else None,
        color_mode=color or ("grayscale" if gray else "rgb"),
        batch_size=None,
        image_size=tuple(image_size) if image_size is not None else next(iter(sizes)),
        shuffle=False,
        verbose=False,
    )
    elements = _decoded(ds)
    images = np.stack([e[0] if classes else e for e in elements])
    images = np.clip(np.round(images), 0, 255).astype(np.uint8)
    labels = None
    if classes:  # Keras numbers this split's own subfolders
        numbering = np.asarray([classes.index(name) for name in ds.class_names], np.int64)
        labels = numbering[np.asarray([e[1] for e in elements], np.int64)]
    order = np.random.RandomState(0).permutation(len(images))
    if labels is None:
        return images[order], None, None
    return images[order], labels[order], len(classes)


def _decoded(ds):
    """Every element of Keras' image dataset ``ds``; `CorruptFileError` naming the file that
    TensorFlow could not decode (it says only "Invalid PNG data")."""
    import tensorflow as tf

    elements = []
    iterator = ds.as_numpy_iterator()
    while True:
        try:
            elements.append(next(iterator))
        except StopIteration:
            return elements
        except tf.errors.OpError as error:
            # Elements come in file order, so the failing one is the next file; PIL confirms
            # it (else finds the file it cannot decode).
            paths = ds.file_paths[len(elements) :] + ds.file_paths[: len(elements)]
            for path in paths:
                _fully_decoded(path)
            reason = _first_line(error).split(": ")[-1]
            raise CorruptFileError(
                f"{paths[0]} is not a readable image (truncated or corrupt?): {reason}"
            ) from error


def _fully_decoded(path):
    """Decodes the image at ``path`` with PIL; `CorruptFileError` naming it where it fails."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise CorruptFileError(
            f"{path} is not a readable image (truncated or corrupt?): {_first_line(error)}"
        ) from error


def _image_paths(root):
    return sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.lower().endswith(IMAGE_FORMATS)
    )


def _sizes_and_gray(paths):
    """The set of ``(height, width)`` of the images, and whether every one is grayscale; reads
    headers only."""
    from PIL import Image, UnidentifiedImageError

    sizes, gray = set(), True
    for path in paths:
        try:
            with Image.open(path) as image:
                sizes.add((image.height, image.width))
                gray = gray and image.mode in _GRAY_MODES
        except (OSError, UnidentifiedImageError) as error:
            raise CorruptFileError(f"{path} is not a readable image: {error}") from error
    return sizes, gray
