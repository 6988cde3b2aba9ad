"""Image input pipelines: TFDS datasets by name, the embedded digits, local MNIST files.

``load(name, split)`` returns a ``tf.data.Dataset`` of float32 images scaled as the model asks
(``scaling``: dequantized for densities, ``[0, 1]``, or ``[-1, 1]``; with labels when asked) and
a `DataInfo` that carries the images' shape, their number of discrete levels (which
dequantization and bits/dim need: 256 for 8-bit images, 17 for the embedded digits) and classes.
A zoo model states what it wants in its ``data_spec`` (`zoo.base.DataSpec`).

Sources, chosen by ``name``:

* ``"digits"``: the 8x8 handwritten digits bundled with scikit-learn (1,797 images, 17 levels),
  no download; split deterministically into ``train`` (1,500) and ``test`` (297).
* a path to a file or folder here (`zoo.data_files`): an ``.npz`` (Keras' ``mnist.npz`` layout,
  or arrays named by ``x_key`` / ``y_key``), MNIST idx files, LIBSVM text such as USPS's
  ``usps.bz2`` / ``usps.t.bz2``, or a folder of PNG / JPEG images (class subfolders or flat);
* any other name is a TFDS dataset (``mnist``, ``fashion_mnist``, ``kmnist``, ``cifar10``,
  ``svhn_cropped``, ...) loaded with ``tfds.load(name, data_dir=..., download=...)``.

Splits take slices, as in TFDS: ``"test[:9000]"``, ``"test[9000:]"``. ``classes`` keeps some
labels (renumbered ``0 .. k-1`` in the order given) and ``per_class`` draws that many labelled
images of each, the few-label subsets of transfer learning.
"""

import dataclasses
import difflib

import numpy as np
import tensorflow as tf

from tfflows import uniform_dequantize
from zoo import data_files
from zoo.base import SCALINGS
from zoo.data_files import CorruptFileError, DatasetUnavailableError, read_idx

__all__ = ["CorruptFileError", "DataInfo", "DatasetUnavailableError", "load", "read_idx"]

DIGITS = "digits"
DIGITS_TRAIN_SIZE = 1500


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data."""

    name: str
    image_shape: tuple
    num_levels: int
    num_classes: int | None = None
    num_examples: int | None = None
    classes: tuple | None = None

    @property
    def num_dims(self):
        return int(np.prod(self.image_shape))


def load(
    name=DIGITS,
    split="train",
    *,
    data_dir=None,
    download=False,
    image_size=None,
    color=None,
    scaling="dequantize",
    dequantize_seed=None,
    with_labels=False,
    batch_size=None,
    shuffle=False,
    seed=None,
    cache=True,
    prefetch=True,
    drop_remainder=False,
    classes=None,
    per_class=None,
    num_levels=None,
    x_key=None,
    y_key=None,
):
    """Returns ``(dataset, info)`` for image dataset ``name``.

    Args:
      name: ``"digits"``, a path to a local file or folder (`zoo.data_files`), or a TFDS name.
      split: ``"train"``, ``"test"`` (or any TFDS split), with an optional ``[start:stop]``.
      data_dir: TFDS data folder (TFDS sources only).
      download: let TFDS download and prepare a missing dataset.
      image_size: ``(height, width)`` to resize to; pixels are re-quantized to the levels.
      color: ``"grayscale"`` or ``"rgb"`` to convert to; None keeps the source's channels.
      scaling: ``"dequantize"``: ``(x + u) / K`` with ``u ~ U[0, 1)``, in ``[0, 1)``, the input
        density models need (`tfflows.uniform_dequantize`); ``"centered"``: ``(x + 1/2) / K``,
        the bins' centres; ``"unit"``: ``x / (K - 1)`` in ``[0, 1]``; ``"symmetric"``:
        ``2 x / (K - 1) - 1`` in ``[-1, 1]``.
      dequantize_seed: fixed dequantization noise (the same every epoch), e.g. for reproducible
        evaluation; by default the noise is drawn afresh each epoch (from ``seed``).
      with_labels: yield ``(image, label)`` pairs.
      classes: labels to keep, renumbered ``0 .. len(classes) - 1`` in this order (``info``
        records them as ``classes``).
      per_class: keep this many images of each class, drawn at random (``seed``) once: the
        same subset every epoch.
      num_levels: the number of pixel levels ``K`` of a local file's images (integers
        ``0 .. K-1``); needed unless they are uint8 (256) or bool (2), since guessing from the
        largest value present is unsafe; LIBSVM values in [-1, 1] are quantized to this
        many (default 256).
      x_key, y_key: the names of the images and labels arrays in an ``.npz`` file that does
        not follow ``mnist.npz``'s ``x_train`` / ``y_test`` names; the file is then one split.
      batch_size, shuffle, seed, cache, prefetch, drop_remainder: the usual ``tf.data`` steps;
        ``shuffle`` is a buffer size (True: the whole split).

    Raises:
      DatasetUnavailableError: the dataset is not here and cannot be downloaded.
      CorruptFileError: a local file is truncated or malformed.
      ValueError: an unknown split, color or bad option; a class out of range, or with fewer
        than ``per_class`` images.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}.")
    if color not in (None, "grayscale", "rgb"):
        raise ValueError(f"color must be None, 'grayscale' or 'rgb', got {color!r}.")
    local = data_files.is_local(name, reserved=(DIGITS,))
    for option, value in (("num_levels", num_levels), ("x_key", x_key), ("y_key", y_key)):
        if value is not None and not local:
            raise ValueError(f"{option} is for local files; {name!r} knows its own layout.")
    if local:
        found = data_files.read(name, split, num_levels, x_key, y_key, image_size, color)
        images, labels, num_levels = found.images, found.labels, found.num_levels
        ds, shape, num_examples = _from_arrays(images, labels), images.shape[1:], len(images)
        num_classes = found.num_classes
    elif name == DIGITS:
        images, labels = _digits(split)
        ds, shape, num_examples = _from_arrays(images, labels), images.shape[1:], len(images)
        num_levels, num_classes = 17, 10
    else:
        ds, shape, num_levels, num_classes, num_examples = _tfds(name, split, data_dir, download)

    if classes is not None or per_class is not None:
        ds, num_classes, num_examples, classes = _select(
            ds, name, split, num_classes, num_examples, classes, per_class, seed
        )
    if num_examples == 0:
        raise ValueError(f"Split {split!r} of {name!r} is empty.")
    shape = tuple(shape)
    resize = image_size is not None and tuple(shape[:2]) != tuple(image_size)
    if image_size is not None:
        shape = (int(image_size[0]), int(image_size[1]), shape[2])
    if any(n is None for n in shape):
        raise ValueError(f"{name!r} has images of varying shape {list(shape)}; pass image_size.")
    shape = tuple(int(n) for n in shape)
    if color is not None:
        shape = (*shape[:2], 1 if color == "grayscale" else 3)
    info = DataInfo(
        name=str(name),
        image_shape=shape,
        num_levels=int(num_levels),
        num_classes=num_classes,
        num_examples=num_examples,
        classes=classes,
    )

    def levels(image, label):
        image = tf.cast(image, tf.float32)
        if resize:
            image = tf.image.resize(image, info.image_shape[:2], antialias=True)
        if color == "grayscale" and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        elif color == "rgb" and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        image = tf.clip_by_value(tf.round(image), 0.0, float(num_levels - 1))
        return tf.ensure_shape(image, info.image_shape), label

    ds = ds.map(levels, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        buffer = (num_examples or 10_000) if shuffle is True else int(shuffle)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    # Scaling whole batches is one op per batch rather than per image, except where the noise
    # is keyed by each image's index (fixed noise, whatever the batching).
    per_image = scaling == "dequantize" and dequantize_seed is not None
    if per_image:
        ds = _scale(ds, num_levels, scaling, dequantize_seed, seed)
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if not per_image:
        ds = _scale(ds, num_levels, scaling, dequantize_seed, seed)
    if not with_labels:
        ds = ds.map(lambda image, label: image)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds, info


def _select(ds, name, split, num_classes, num_examples, classes, per_class, seed):
    """The examples of ``classes`` (renumbered), ``per_class`` of each drawn with ``seed``;
    returns ``(ds, num_classes, num_examples, classes)``."""
    if not num_classes:
        raise ValueError(f"{name!r} split {split!r} has no labels to select classes by.")
    classes = tuple(range(num_classes)) if classes is None else tuple(int(c) for c in classes)
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct labels, got {list(classes)}.")
    if min(classes) < 0 or max(classes) >= num_classes:
        raise ValueError(f"classes {list(classes)} are not all in 0 .. {num_classes - 1}.")
    if per_class is not None and int(per_class) < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}.")
    k = len(classes)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(classes, tf.int64), tf.range(k, dtype=tf.int64)
        ),
        default_value=-1,
    )
    ds = ds.map(lambda image, label: (image, table.lookup(label)))
    ds = ds.filter(lambda image, label: label >= 0)
    if per_class is not None:
        ds = ds.shuffle(num_examples or 100_000, seed=seed, reshuffle_each_iteration=False)

        def count(counts, element):
            image, label = element
            keep = counts[label] < int(per_class)
            return tf.tensor_scatter_nd_add(counts, [[label]], [1]), (image, label, keep)

        ds = ds.scan(tf.zeros([k], tf.int64), count)
        ds = ds.filter(lambda image, label, keep: keep).map(
            lambda image, label, keep: (image, label)
        )
        ds = ds.cache()
    found = ds.map(lambda image, label: tf.one_hot(label, k, dtype=tf.int64)).reduce(
        tf.zeros([k], tf.int64), lambda total, one_hot: total + one_hot
    )
    found = found.numpy()
    short = [c for c, n in zip(classes, found, strict=True) if n < (per_class or 1)]
    if short:
        have = ", ".join(
            f"class {c}: {n}" for c, n in zip(classes, found, strict=True) if c in short
        )
        raise ValueError(
            f"{name!r} split {split!r} has too few images ({have}); asked for "
            f"{per_class or 1} per class."
        )
    ds = ds.apply(tf.data.experimental.assert_cardinality(int(found.sum())))
    return ds, k, int(found.sum()), classes


def _scale(ds, num_levels, scaling, fixed_seed, seed):
    top = float(num_levels - 1)
    if scaling == "unit":
        return ds.map(lambda image, label: (image / top, label))
    if scaling == "symmetric":
        return ds.map(lambda image, label: (2.0 * image / top - 1.0, label))
    if scaling == "centered":
        return ds.map(lambda image, label: ((image + 0.5) / float(num_levels), label))
    if fixed_seed is None:
        # Stateful random ops in a map restart their sequence with every iterator, i.e. every
        # epoch of `fit`: seeds (per element: image or batch) from a dataset that redraws each
        # pass do not.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    else:
        seeds = tf.data.Dataset.from_tensors(tf.cast(fixed_seed, tf.int64)).repeat()

    def dequantize(index, element, seed):
        image, label = element
        noise_seed = tf.stack([seed, index])
        return uniform_dequantize(image, num_levels, seed=noise_seed), label

    ds = tf.data.Dataset.zip(ds.enumerate(), seeds)
    return ds.map(lambda i_e, s: dequantize(*i_e, s), num_parallel_calls=tf.data.AUTOTUNE)


def _from_arrays(images, labels):
    labels = np.full(len(images), -1, np.int64) if labels is None else labels.astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((images, labels))


def _digits(split):
    from sklearn.datasets import load_digits

    base, window = data_files.parse_split(split)
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.images))
    parts = {"train": order[:DIGITS_TRAIN_SIZE], "test": order[DIGITS_TRAIN_SIZE:]}
    if base not in parts:
        raise ValueError(f"The digits dataset has splits 'train' and 'test', not {base!r}.")
    index = parts[base][data_files.checked(window, len(parts[base]), split)]
    images = digits.images[index].astype(np.uint8)[..., None]
    return images, digits.target[index]


def _tfds(name, split, data_dir, download):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several types for unknown names
        # Its message lists the whole catalogue (about a thousand lines): say it in one.
        close = difflib.get_close_matches(str(name).split(":")[0], tfds.list_builders(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise DatasetUnavailableError(
            f"Unknown dataset {name!r}: not 'digits', an existing file or folder, nor a TFDS "
            f"name (tfds.list_builders()).{hint}"
        ) from error
    features = builder.info.features
    image_key = "image" if "image" in features else next(iter(features))
    label_key = "label" if "label" in features else None
    supervised = label_key is not None and builder.info.supervised_keys == (image_key, label_key)
    try:
        if download:
            builder.download_and_prepare()
        ds = builder.as_dataset(split=split, as_supervised=supervised)
    except Exception as error:
        if isinstance(error, ValueError) and "split" in str(error).lower():
            raise
        raise DatasetUnavailableError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir!r}"
            + ("" if download else " and download=False")
            + f" ({type(error).__name__}). Without network, prepare it elsewhere and pass its "
            "folder as data_dir, or give a local file (mnist.npz or MNIST idx files)."
        ) from error
    num_classes = features[label_key].num_classes if label_key else None
    try:
        num_examples = builder.info.splits[split].num_examples or None
    except Exception:
        num_examples = None
    if supervised:
        ds = ds.map(lambda image, label: (image, tf.cast(label, tf.int64)))
    else:
        ds = ds.map(lambda example: (example[image_key], tf.constant(-1, tf.int64)))
    return ds, features[image_key].shape, 256, num_classes, num_examples
