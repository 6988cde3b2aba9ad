"""Where a dataset's images come from, by name: the embedded digits, a local file or folder
(`zoo.data.files`), or TFDS. `read` gives one split as a `Source`, before any selection,
resizing or scaling."""

import dataclasses
import difflib

import numpy as np
import tensorflow as tf

from zoo.data import files
from zoo.data.files import DatasetUnavailableError

DIGITS = "digits"
DIGITS_TRAIN_SIZE = 1500


@dataclasses.dataclass(frozen=True)
class Source:
    """One split as read: a dataset of ``(image, label)`` (integer levels; label -1 where
    there is none), the images' shape, levels, the number of classes and of examples."""

    dataset: tf.data.Dataset
    shape: tuple
    num_levels: int
    num_classes: int | None
    num_examples: int | None


def is_local(name):
    """Whether ``name`` is a file or folder here (not the digits or a TFDS name)."""
    return files.is_local(name, reserved=(DIGITS,))


def read(name, split, data_dir, download, num_levels, x_key, y_key, image_size, color):
    """Split ``split`` of dataset ``name`` as a `Source` (see `zoo.data.load` for the options)."""
    if is_local(name):
        found = files.read(name, split, num_levels, x_key, y_key, image_size, color)
        return _arrays(found.images, found.labels, found.num_levels, found.num_classes)
    if name == DIGITS:
        images, labels = _digits(split)
        return _arrays(images, labels, 17, 10)
    return _tfds(name, split, data_dir, download)


def _arrays(images, labels, num_levels, num_classes):
    labels = np.full(len(images), -1, np.int64) if labels is None else labels.astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return Source(dataset, images.shape[1:], num_levels, num_classes, len(images))


def _digits(split):
    from sklearn.datasets import load_digits

    base, window = files.parse_split(split)
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.images))
    parts = {"train": order[:DIGITS_TRAIN_SIZE], "test": order[DIGITS_TRAIN_SIZE:]}
    if base not in parts:
        raise ValueError(f"The digits dataset has splits 'train' and 'test', not {base!r}.")
    index = parts[base][files.checked(window, len(parts[base]), split)]
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
    return Source(ds, features[image_key].shape, 256, num_classes, num_examples)
