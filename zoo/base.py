"""What every zoo model implements, so that one training / export / evaluation path serves all.

A zoo model is a `keras.Model` that also subclasses `ZooModel` and answers, for the shared code
(`zoo.training`, `zoo.export`, the `zoo` command), the questions that differ between models:

* ``data_spec``: how it wants its images scaled, and whether it wants labels (`DataSpec`);
* ``from_data(info, **options)``: how it is built from the data's description (`data.DataInfo`);
* ``compile_defaults(learning_rate)``: the keyword arguments of its default ``compile`` (one
  optimizer for a flow, two for a GAN);
* ``prepare(train, info)``: work before ``fit`` that needs the training data (default: none);
* ``fit_callbacks(out)``: its own callbacks during ``fit`` (e.g. a picture per epoch);
* ``monitor``: the logged value whose minimum picks ``best.keras`` (None: keep the last only);
* ``serving_endpoints()``: its SavedModel signatures (see `zoo.export`);
* ``write_artifacts(out, data, seed, temperature)``: its pictures after training;
* ``headline(results)``: its figures from ``evaluate``'s dict, for ``metrics.json`` and the last
  printed line;
* ``check_data(info)``: whether a dataset fits the built model (``zoo evaluate``);
* ``training_phases(epochs)``: the `Phase` s of its recipe (default: one), e.g. a frozen
  backbone, then fine-tuning;
* ``plan_run(config)`` (class method): the run's `zoo.training.RunConfig` completed before the
  model is built, e.g. by first training what it builds on (default: unchanged);
* ``feature_extractor()``: a network from its images to features, for transfer learning.

Shared code never asks for a model by name: a new model joins by implementing these and
registering itself (`zoo.registry.register`).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfflows import noise
from zoo.optimizers import FusedAdam

SCALINGS = ("dequantize", "centered", "unit", "symmetric")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a model asks of `zoo.data.load`.

    Attributes:
      scaling: ``"dequantize"`` (``(x + u) / K`` in ``[0, 1)``, for densities),
        ``"centered"`` (``(x + 1/2) / K``, the bins' centres: the mean of the dequantized
        value, a deterministic input for a density model), ``"unit"``
        (``x / (K - 1)`` in ``[0, 1]``) or ``"symmetric"`` (``[-1, 1]``, for a tanh output).
      labels: batches are ``(images, labels)`` rather than images.
    """

    scaling: str = "dequantize"
    labels: bool = False

    def __post_init__(self):
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}.")


@dataclasses.dataclass(frozen=True)
class Phase:
    """One ``fit`` of a model's training recipe: ``epochs`` epochs after ``begin()`` (e.g. one
    that unfreezes layers and recompiles; None: nothing to do)."""

    name: str
    epochs: int
    begin: object = None


def standard_normal(shape, seed=None):
    """``N(0, I)`` noise of ``shape``; ``seed``: None or an int (stateful: a new draw each
    call), or a shape-[2] stateless seed such as ``[1, 2]`` (the same draw every call)."""
    if seed is not None and tf.size(seed) == 2:
        return tf.random.stateless_normal(shape, seed=seed)
    return tf.random.normal(shape, seed=seed)


def training_noise(generator, shape):
    """``N(0, I)`` noise of ``shape`` for a train or test step, drawn from ``generator`` (a
    `keras.random.SeedGenerator` the model owns): resumable, different on each replica
    (`tfflows.noise.step_seed`)."""
    return tf.random.stateless_normal(shape, seed=noise.step_seed(generator))


def whole_number(name, value, minimum=1):
    """``value`` as an int; a ValueError naming ``name`` unless it is a whole number (not a
    bool, a float or a string) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def whole_numbers(name, values, minimum=1):
    """``values`` (a list or tuple, maybe empty) as a tuple of ints, each checked by
    `whole_number`."""
    if not isinstance(values, list | tuple):
        raise ValueError(
            f"{name} must be a list of whole numbers >= {minimum}, e.g. [256, 256]; got {values!r}."
        )
    return tuple(whole_number(name, v, minimum) for v in values)


def positive_number(name, value):
    """``value`` as a float; a ValueError naming ``name`` unless it is finite and > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    if not 0 < value < np.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)


def class_labels(labels, num_classes):
    """The dataset's label of each of ``num_classes`` outputs (default ``0 .. k-1``), checked."""
    labels = [int(c) for c in (range(num_classes) if labels is None else labels)]
    if len(labels) != num_classes:
        raise ValueError(f"class_labels has {len(labels)} labels for {num_classes} classes.")
    return labels


class ZooModel:
    """Mixin for zoo models (listed first among the bases: ``class M(ZooModel, keras.Model)``)."""

    data_spec = DataSpec()
    monitor = "val_loss"
    min_batch_size = 1  # e.g. 2 where batch statistics of one example are meaningless

    @classmethod
    def prefers_bfloat16(cls, options):
        """Whether ``--mixed-precision auto`` trains this model, built with ``options`` (its
        registered defaults included), in mixed_bfloat16 on a CPU with bfloat16 matrix units
        (`zoo.precision`). True where bench/train_step.py measured the step at least 1.25x
        faster than float32, to the same held-out figure after the same steps. Small dense nets
        gain about 1.06x, and MobileNetV2's depthwise convolutions run slower (0.72x)."""
        return False

    @classmethod
    def from_data(cls, info, **options):
        """Builds the model for data described by ``info`` (a `zoo.data.DataInfo`)."""
        return cls(image_shape=info.image_shape, **options)

    def compile_defaults(self, learning_rate=None):
        """``compile`` keyword arguments of the model's default training recipe."""
        return {"optimizer": self.adam(learning_rate or 1e-3)}

    def adam(self, learning_rate, **kwargs):
        """The zoo's Adam (`FusedAdam`) at ``learning_rate``, with the run's
        ``optimizer_options`` (Keras' ``global_clipnorm``, ``use_ema``, ``ema_momentum``; set by
        `zoo.training.run`). `compile_defaults` builds its optimizers through this, so a phase
        that recompiles (e.g. a transfer model's fine-tuning) keeps them."""
        return FusedAdam(learning_rate, **{**kwargs, **getattr(self, "optimizer_options", {})})

    def optimizers_in_use(self):
        """The optimizers ``fit`` steps with (a learning-rate schedule sets each)."""
        return [self.optimizer]

    def prepare(self, train, info):
        """Called once with the (batched) training data before ``fit``; nothing by default."""

    def fit_callbacks(self, out):
        """Extra callbacks for ``fit``, writing under the run folder ``out``."""
        return []

    def serving_endpoints(self):
        raise NotImplementedError

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """Writes the model's pictures into ``out``; returns the file names written."""
        return []

    def headline(self, results):
        """The figures that sum a trained model up, from ``evaluate(..., return_dict=True)``."""
        return {f"held_out_{k}": round(float(v), 4) for k, v in results.items()}

    def base_config(self):
        """The config entries every Keras model has: name, trainable and the dtype policy (so a
        per-instance ``dtype="mixed_bfloat16"`` survives a round trip)."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

    def check_data(self, info):
        """Raises ValueError naming the mismatch when ``info``'s data cannot feed this model:
        another image shape, or another number of levels for a model that has ``num_levels``."""
        if tuple(info.image_shape) != tuple(self.image_shape):
            raise ValueError(
                f"The model expects images {list(self.image_shape)}; "
                f"{info.name} has {list(info.image_shape)}."
            )
        levels = getattr(self, "num_levels", None)
        if levels is not None and info.num_levels != levels:
            raise ValueError(
                f"The model expects data with {levels} levels; {info.name} has {info.num_levels}."
            )

    def images(self, x):
        """``x`` as a float32 tensor, after a static check that it is a batch of the model's
        images ``[batch, H, W, C]`` (a ValueError naming both shapes otherwise)."""
        x = tf.convert_to_tensor(x)
        expected = tuple(self.image_shape)
        if x.shape.rank is not None and (
            x.shape.rank != len(expected) + 1 or not x.shape[1:].is_compatible_with(expected)
        ):
            raise ValueError(
                f"{type(self).__name__} expects images [batch, {', '.join(map(str, expected))}]; "
                f"got shape {x.shape.as_list()}."
            )
        return tf.cast(x, tf.float32)

    def training_phases(self, epochs):
        """The recipe's phases; one by default."""
        return [Phase("train", int(epochs))]

    @classmethod
    def plan_run(cls, config):
        """The run config to train with (`zoo.training.run` asks before building the model)."""
        return config

    def feature_extractor(self):
        """``(network, scaling)``: a Keras network from images scaled as ``scaling`` (see
        `zoo.backbones`) to features; what `zoo.TransferClassifier` builds on."""
        raise NotImplementedError(f"{type(self).__name__} has no feature extractor.")

    def _forget_traces(self):
        """After a failure (a bad batch shape, an interrupt) the model stays usable: Keras keeps
        a half-traced function, whose next trace fails with "Creating variables on a non-first
        call", so they are dropped and traced afresh."""
        self.train_function = self.test_function = self.predict_function = None

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, usable again after a failure (`_forget_traces`)."""
        try:
            history = super().fit(*args, **kwargs)
        except BaseException:
            self._forget_traces()
            raise
        if not history.history and kwargs.get("epochs", 1) > kwargs.get("initial_epoch", 0):
            raise ValueError("fit got no training data: the dataset is empty.")
        return history

    def evaluate(self, *args, **kwargs):
        """``keras.Model.evaluate``, usable again after a failure (`_forget_traces`); a dict of
        results leaves out ``skipped_steps`` (a count of refused training steps, 0 here)."""
        try:
            results = super().evaluate(*args, **kwargs)
        except BaseException:
            self._forget_traces()
            raise
        if isinstance(results, dict):
            results.pop("skipped_steps", None)
        return results

    @classmethod
    def from_config(cls, config):
        """``cls(**config)`` with nested serialized Keras objects (sub-networks such as a
        GAN's generator, a backbone, a flow) deserialized."""
        return cls(
            **{
                key: keras.saving.deserialize_keras_object(value)
                if isinstance(value, dict) and {"class_name", "config"} <= value.keys()
                else value
                for key, value in config.items()
            }
        )
