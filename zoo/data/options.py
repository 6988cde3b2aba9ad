"""`DataOptions`: where a run's images come from and how they are read, as one object.

It travels whole from the command line (`zoo.cli`'s option groups: one argument per field,
named as the field) through `zoo.training.RunConfig` (which extends it) and its resume
fingerprint to `zoo.data.load` (`DataOptions.load`). A new option is a field here, a keyword of
`load` of the same name, and an argument of the command line's data group.
"""

import dataclasses


@dataclasses.dataclass(kw_only=True)
class DataOptions:
    """The options of `zoo.data.load` that say which data a run reads (every field is one of
    its keywords, but ``dataset``, its ``name``, and ``labels_per_class``, its ``per_class``
    for the training split).

    Attributes:
      dataset: ``"digits"``, a TFDS name or a local path.
      data_dir, download: TFDS's data folder, and whether TFDS may download.
      image_size: ``(height, width)`` to resize to; color: ``"grayscale"`` or ``"rgb"``.
      num_levels: pixel levels of a local file's integer images.
      x_key, y_key: the arrays of an ``.npz`` file.
      binarize: Bernoulli-binarize the pixels (`zoo.data.load`): fresh draws each epoch for
        training, one fixed draw for held-out data.
      classes: labels to keep, renumbered ``0 .. k-1`` in this order.
      labels_per_class: training images drawn per class (few-label subsets).
      batch_size: examples per batch.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    image_size: tuple | None = None
    color: str | None = None
    num_levels: int | None = None
    x_key: str | None = None
    y_key: str | None = None
    binarize: bool = False
    classes: tuple | None = None
    labels_per_class: int | None = None
    batch_size: int = 64

    def __post_init__(self):
        # Lists (the command line's, JSON's) become tuples, so that options compare equal.
        for name in ("image_size", "classes"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                setattr(self, name, tuple(value))

    @classmethod
    def names(cls):
        """The names of the data options (`DataOptions`' own fields)."""
        return [f.name for f in dataclasses.fields(DataOptions)]

    def load(self, split, spec=None, training=False, **kwargs):
        """`zoo.data.load` of ``split`` with these options, scaled and labelled as ``spec``
        (a model's `zoo.models.DataSpec`) asks; ``training``: the training split, so
        ``labels_per_class`` applies; ``kwargs``: more of `load`'s keywords."""
        if spec is not None:
            kwargs.update(scaling=spec.scaling, with_labels=spec.labels)
        if training:
            kwargs.setdefault("per_class", self.labels_per_class)
        options = {name: getattr(self, name) for name in self.names()}
        name = options.pop("dataset")
        del options["labels_per_class"]
        from zoo.data.pipeline import load

        return load(name, split, **options, **kwargs)
