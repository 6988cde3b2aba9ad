"""`load`: one split of an image dataset as a ``tf.data`` pipeline scaled as the model asks.

The steps, in order: read the split (`zoo.data.sources`), keep some classes (`select`), describe
it (`DataInfo`), then the ``tf.data`` pipeline: levels (resize, colour), cache, shuffle, batch,
binarize (`binarized`, optional), scale (`scale`: dequantize for densities, ``[0, 1]`` or
``[-1, 1]``), labels or not, prefetch.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfflows import uniform_dequantize
from zoo.data import sources
from zoo.data.formats import COLORS, SCALINGS


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
    name=sources.DIGITS,
    split="train",
    *,
    data_dir=None,
    download=False,
    image_size=None,
    color=None,
    scaling="dequantize",
    dequantize_seed=None,
    binarize=False,
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
      name: ``"digits"``, a path to a local file or folder (`zoo.data.files`), or a TFDS name.
      split: ``"train"``, ``"test"`` (or any TFDS split), with an optional ``[start:stop]``.
      data_dir: TFDS data folder (TFDS sources only).
      download: let TFDS download and prepare a missing dataset.
      image_size: ``(height, width)`` to resize to; pixels are re-quantized to the levels.
      color: ``"grayscale"`` or ``"rgb"`` to convert to; None keeps the source's channels.
      scaling: ``"dequantize"``: ``(x + u) / K`` with ``u ~ U[0, 1)``, in ``[0, 1)``, the input
        density models need (`tfflows.uniform_dequantize`); ``"centered"``: ``(x + 1/2) / K``,
        the bins' centres; ``"unit"``: ``x / (K - 1)`` in ``[0, 1]``; ``"symmetric"``:
        ``2 x / (K - 1) - 1`` in ``[-1, 1]``.
      dequantize_seed: fixed noise (dequantization's and binarization's, the same every
        epoch), e.g. for reproducible evaluation; by default the noise is drawn afresh each
        epoch (from ``seed``).
      binarize: replace each pixel of level ``x`` by a Bernoulli draw of mean ``x / (K - 1)``
        (`binarized`): 2 levels, drawn afresh each epoch ("dynamically binarized MNIST", the
        benchmark of Burda, Grosse and Salakhutdinov, 2016), or once for a fixed
        ``dequantize_seed`` (a held-out set binarized for good).
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
    _check_options(
        name, scaling, color, image_size, num_levels=num_levels, x_key=x_key, y_key=y_key
    )
    source = sources.read(
        name, split, data_dir, download, num_levels, x_key, y_key, image_size, color
    )
    ds, num_classes, num_examples = source.dataset, source.num_classes, source.num_examples
    if classes is not None or per_class is not None:
        ds, num_classes, num_examples, classes = select(
            ds, name, split, num_classes, num_examples, classes, per_class, seed
        )
    if num_examples == 0:
        raise ValueError(f"Split {split!r} of {name!r} is empty.")
    info = DataInfo(
        name=str(name),
        image_shape=_image_shape(name, source.shape, image_size, color),
        num_levels=2 if binarize else int(source.num_levels),
        num_classes=num_classes,
        num_examples=num_examples,
        classes=classes,
    )
    resize = image_size is not None and tuple(source.shape[:2]) != tuple(info.image_shape[:2])
    levels = int(source.num_levels)
    ds = ds.map(_to_levels(levels, info, resize, color), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        buffer = (num_examples or 10_000) if shuffle is True else int(shuffle)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    # Noise on whole batches is one op per batch rather than per image, except where it is
    # keyed by each image's index (fixed noise, whatever the batching).
    per_image = dequantize_seed is not None
    if per_image:
        ds = _noised(ds, levels, info.num_levels, binarize, scaling, dequantize_seed, seed)
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if not per_image:
        ds = _noised(ds, levels, info.num_levels, binarize, scaling, dequantize_seed, seed)
    if not with_labels:
        ds = ds.map(lambda image, label: image)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds, info


def _check_options(name, scaling, color, image_size, **local_options):
    if image_size is not None and (
        len(image_size) != 2
        or not all(isinstance(n, int | np.integer) and not isinstance(n, bool) for n in image_size)
        or min(image_size) < 1
    ):
        raise ValueError(
            f"image_size must be two whole numbers >= 1 (--image-size H W), got {image_size!r}."
        )
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}.")
    if color not in COLORS:
        raise ValueError(f"color must be None, 'grayscale' or 'rgb', got {color!r}.")
    if not sources.is_local(name):
        for option, value in local_options.items():
            if value is not None:
                raise ValueError(f"{option} is for local files; {name!r} knows its own layout.")


def _image_shape(name, shape, image_size, color):
    """The images' shape after resizing to ``image_size`` and converting to ``color``."""
    shape = tuple(shape)
    if image_size is not None:
        shape = (int(image_size[0]), int(image_size[1]), shape[2])
    if any(n is None for n in shape):
        raise ValueError(f"{name!r} has images of varying shape {list(shape)}; pass image_size.")
    shape = tuple(int(n) for n in shape)
    if color is not None:
        shape = (*shape[:2], 1 if color == "grayscale" else 3)
    return shape


def _to_levels(num_levels, info, resize, color):
    """The map from a source's ``(image, label)`` to float levels ``0 .. num_levels-1`` of
    ``info.image_shape``, resized and converted as asked."""
    top = float(num_levels - 1)

    def levels(image, label):
        image = tf.cast(image, tf.float32)
        if resize:
            image = tf.image.resize(image, info.image_shape[:2], antialias=True)
        if color == "grayscale" and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        elif color == "rgb" and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        image = tf.clip_by_value(tf.round(image), 0.0, top)
        return tf.ensure_shape(image, info.image_shape), label

    return levels


def select(ds, name, split, num_classes, num_examples, classes, per_class, seed):
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


def _noised(ds, levels, num_levels, binarize, scaling, fixed_seed, seed):
    """`binarized` (when asked) then `scale`."""
    if binarize:
        ds = binarized(ds, levels, fixed_seed, seed)
    return scale(ds, num_levels, scaling, fixed_seed, seed)


def binarized(ds, num_levels, fixed_seed, seed):
    """``ds``'s ``(levels, label)`` elements with each pixel replaced by a Bernoulli draw of
    mean ``x / (K - 1)``: levels 0 and 1. Noise as in `scale`, from seeds of its own (folded
    in), so that a binarized image's dequantization noise is independent of its draw."""

    def draw(image, noise_seed):
        noise_seed = tf.random.experimental.stateless_fold_in(noise_seed, 1)
        u = tf.random.stateless_uniform(tf.shape(image), seed=noise_seed)
        return tf.cast(u < image / float(num_levels - 1), tf.float32)

    return _with_noise(ds, fixed_seed, seed, draw)


def scale(ds, num_levels, scaling, fixed_seed, seed):
    """``ds``'s ``(levels, label)`` elements (images or batches) scaled as ``scaling`` (see
    `load`); dequantization noise fixed by ``fixed_seed``, else new each pass (from ``seed``)."""
    top = float(num_levels - 1)
    if scaling == "unit":
        return ds.map(lambda image, label: (image / top, label))
    if scaling == "symmetric":
        return ds.map(lambda image, label: (2.0 * image / top - 1.0, label))
    if scaling == "centered":
        return ds.map(lambda image, label: ((image + 0.5) / float(num_levels), label))
    return _with_noise(
        ds, fixed_seed, seed, lambda image, s: uniform_dequantize(image, num_levels, seed=s)
    )


def _with_noise(ds, fixed_seed, seed, transform):
    """``ds``'s ``(image, label)`` elements as ``(transform(image, noise_seed), label)``, with
    a stateless ``noise_seed`` per element: ``[fixed_seed, index]``, the same each pass, or,
    without ``fixed_seed``, drawn afresh each pass from ``seed``."""
    if fixed_seed is None:
        # Stateful random ops in a map restart their sequence with every iterator, i.e. every
        # epoch of `fit`: seeds (per element: image or batch) from a dataset that redraws each
        # pass do not.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    else:
        seeds = tf.data.Dataset.from_tensors(tf.cast(fixed_seed, tf.int64)).repeat()

    def noised(index, element, seed):
        image, label = element
        return transform(image, tf.stack([seed, index])), label

    ds = tf.data.Dataset.zip(ds.enumerate(), seeds)
    return ds.map(lambda i_e, s: noised(*i_e, s), num_parallel_calls=tf.data.AUTOTUNE)
