"""THE model contract: everything the shared code asks of a zoo model, declared in one place.

One training run (`zoo.training.run`), one export (`zoo.serving.export`) and one command line
(`zoo.cli`) serve every model; they never ask for a model by name, only through the hooks below.
A zoo model is a `keras.Model` that also subclasses `ZooModel` (listed first among the bases:
``class M(ZooModel, keras.Model)``) and overrides what differs from the defaults. The hooks come
in three groups, one class each:

`TheModel`, what the model is, takes and gives:
  ``data_spec`` (``data_spec_for``), ``class_labels``, ``from_data``, ``check_data``,
  ``data_options``, ``serving_endpoints``, ``export_resources``, ``export_metadata``,
  ``sample`` (``unconditional``), ``feature_extractor``.
`Recipe`, how the model trains:
  ``prefers_bfloat16``, ``plan_run``, ``compile_defaults`` (with ``optimizer_options``, through
  ``adam``), ``optimizers_in_use``, ``min_batch_size``, ``training_phases``, ``prepare``,
  ``fit_callbacks``, ``monitor``, ``statistics_layers``, ``statistics_pass``.
`Report`, what the model shows after training:
  ``headline``, ``write_artifacts``.

A simple model implements ``serving_endpoints`` and, where its defaults do not fit,
``from_data``, ``compile_defaults`` and ``headline``: docs/adding-a-model.md walks through one.
"""

import dataclasses
import types

import keras
import tensorflow as tf

from tfflows.gradient_step import build_optimizer
from zoo.data import SCALINGS
from zoo.models.optimizers import FusedAdam


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


@dataclasses.dataclass(frozen=True)
class Prerequisite:
    """A run the trainer executes before the model's own: it trains ``model`` (a registered
    zoo class) with the main run's options but ``changes`` (fields of
    `zoo.training.RunConfig`, e.g. other ``classes``), into the sub-folder ``folder`` of the
    main run's output, with ``budget_share`` of its time budget; the trained ``model.keras``
    then becomes the main model's constructor option ``option``. ``what`` says why, in the
    run's log."""

    model: type
    folder: str
    option: str
    changes: dict = dataclasses.field(default_factory=dict)
    budget_share: float = 0.5
    what: str = ""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a model's recipe makes of a run before the model is built (`Recipe.plan_run`):
    ``changes`` to the run's options (fields of `zoo.training.RunConfig`) and the
    ``prerequisites`` to train first."""

    changes: dict = dataclasses.field(default_factory=dict)
    prerequisites: tuple = ()


class TheModel:
    """What the model is, what data it takes and what it gives (serving, sampling, features)."""

    #: How it wants its data scaled, and whether with labels (`DataSpec`).
    data_spec = DataSpec()
    #: A classifier's dataset label of each of its outputs (its classes renumbered
    #: ``0 .. k-1`` in training); None for a model that does not classify.
    class_labels = None
    #: Constructor options that take another model's ``.keras`` file, where a run also takes
    #: a preset's name (`zoo.training.run` puts the preset's file in).
    model_file_options = ()

    @classmethod
    def data_spec_for(cls, options):
        """The `DataSpec` of a run that builds this model with constructor ``options`` (its
        registered defaults included), before it is built: e.g. a class-conditional flow's
        labels. `data_spec` by default; a built model's own is its ``data_spec``."""
        return cls.data_spec

    @classmethod
    def from_data(cls, info, **options):
        """Builds the model for data described by ``info`` (a `zoo.data.DataInfo`: image shape,
        levels, classes) with constructor ``options``."""
        return cls(image_shape=info.image_shape, **options)

    def check_data(self, info):
        """Raises ValueError naming the mismatch when ``info``'s data cannot feed this built
        model (``zoo evaluate``): another image shape, or another number of levels for a model
        that has ``num_levels``."""
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

    def data_options(self):
        """`zoo.data.DataOptions` fields that the trained model's data must be loaded with
        unless the user says otherwise (``zoo evaluate``): a classifier's ``classes`` (its
        `class_labels`), so that its outputs' numbering holds; ``binarize`` for a model of
        2-level data (binarizing data that are binary already changes nothing)."""
        options = {}
        if self.class_labels is not None:
            options["classes"] = tuple(self.class_labels)
        if getattr(self, "num_levels", None) == 2:
            options["binarize"] = True
        return options

    def serving_endpoints(self):
        """The SavedModel's signatures (`zoo.serving.export`): an ordered mapping from
        signature name to ``(function, input_signature)``, whose functions return dicts of
        named output tensors; the first is also ``serving_default``."""
        raise NotImplementedError(f"{type(self).__name__} declares no serving endpoints.")

    def export_resources(self):
        """Objects the export must track beyond the model (e.g. a loaded SavedModel whose
        functions an endpoint calls). None by default: an empty list."""
        return []

    def export_metadata(self):
        """What a user of the SavedModel needs beyond its signatures (written to
        ``assets.extra/signatures.json``). Nothing by default."""
        return {}

    def sample(self, num_samples, temperature=1.0, seed=None, class_id=None):
        """Generative models: ``num_samples`` images in ``[0, 1]``, their latent spread times
        ``temperature``; ``seed`` an int (stateful) or a shape-[2] stateless seed. A
        class-conditional model draws them of class ``class_id`` (one class, or one per
        sample); others refuse a class (`unconditional`)."""
        raise ValueError(f"{type(self).__name__} does not sample; it has no generative model.")

    def unconditional(self, class_id):
        """For `sample` of a model without classes: a ValueError unless ``class_id`` is None."""
        if class_id is not None:
            raise ValueError(
                f"{type(self).__name__} is not class-conditional: it samples no class_id."
            )

    def feature_extractor(self):
        """``(network, scaling)``: a Keras network from images scaled as ``scaling`` (see
        `zoo.models.transfer.backbones`) to features; what `zoo.TransferClassifier` builds
        on."""
        raise NotImplementedError(f"{type(self).__name__} has no feature extractor.")


class Recipe:
    """How the model trains: options settled before it is built, its compile, phases and
    callbacks."""

    #: The logged value whose minimum picks ``best.keras`` (None: keep the last only).
    monitor = "val_loss"
    #: The smallest batch a replica may train on (2 where batch statistics of one example are
    #: meaningless).
    min_batch_size = 1
    #: Keras optimizer arguments of the run (``global_clipnorm``, ``use_ema``,
    #: ``ema_momentum``, ``ema_every``), set by `zoo.training.run` before it compiles; `adam`
    #: builds every optimizer with them.
    optimizer_options = types.MappingProxyType({})

    @classmethod
    def prefers_bfloat16(cls, options):
        """Whether ``--mixed-precision auto`` trains this model, built with ``options`` (its
        registered defaults included), in mixed_bfloat16 on a CPU with bfloat16 matrix units
        (`zoo.training.precision`). True where bench/train_step.py measured the step at least
        1.25x faster than float32, to the same held-out figure after the same steps. Small
        dense nets gain about 1.06x, and MobileNetV2's depthwise convolutions run slower
        (0.72x)."""
        return False

    @classmethod
    def plan_run(cls, run, describe):
        """The `RunPlan` of a run of this model, before it is built: changes to the run's
        options and prerequisite runs (e.g. pretraining what it builds on). ``run`` is the
        run's `zoo.training.RunConfig` (read only); ``describe()`` gives the `zoo.data.DataInfo`
        of its whole training split, every class included. Nothing changes by default."""
        return RunPlan()

    def compile_defaults(self, learning_rate=None):
        """``compile`` keyword arguments of the model's default training recipe (one
        optimizer for most models, two for a GAN); ``learning_rate`` None: the model's own."""
        return {"optimizer": self.adam(learning_rate or 1e-3)}

    def adam(self, learning_rate, **kwargs):
        """The zoo's Adam (`FusedAdam`) at ``learning_rate``, with the run's
        ``optimizer_options``. `compile_defaults` builds its optimizers through this, so a
        phase that recompiles (e.g. a transfer model's fine-tuning) keeps them."""
        return FusedAdam(learning_rate, **{**kwargs, **self.optimizer_options})

    def optimizers_in_use(self):
        """The optimizers ``fit`` steps with (a learning-rate schedule sets each)."""
        return [self.optimizer]

    def training_phases(self, epochs):
        """The recipe's `Phase` s, ``epochs`` each unless the recipe says otherwise; one by
        default."""
        return [Phase("train", int(epochs))]

    def prepare(self, train, info):
        """Work before ``fit`` that needs the (batched) training data ``train`` and its
        `zoo.data.DataInfo` (e.g. a GAN's judge); nothing by default. Runs on a resume too."""

    def fit_callbacks(self, out):
        """Keras callbacks of the model's own during ``fit``, writing under the run folder
        ``out`` (e.g. a picture per epoch); none by default."""
        return []

    def statistics_layers(self):
        """What holds running statistics that a train step moves: objects with ``moving_mean``,
        ``moving_variance`` and a settable ``momentum`` (``s <- momentum s + (1 - momentum)
        batch``). `zoo.training.statistics` recomputes them for averaged weights. By default
        the trainable Keras ``BatchNormalization`` layers."""
        return [
            layer
            for layer in self._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
        ]

    def statistics_pass(self, batch):
        """A forward pass over one training ``batch`` (what a train step gets), in training
        mode and without a gradient, that moves the `statistics_layers` as a train step would:
        ``self(images, training=True)`` by default."""
        images, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        self(images, training=True)


class Report:
    """What the model shows after training: its headline figures and its pictures."""

    def headline(self, results):
        """The figures that sum a trained model up, from ``evaluate(..., return_dict=True)``:
        the last line of a run and the top of ``metrics.json``."""
        return {f"held_out_{k}": round(float(v), 4) for k, v in results.items()}

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """Writes the model's pictures (PNG) into the folder ``out``, drawn on the held-out
        ``data`` with a fixed ``seed``; returns the file names written. Also drawn every epoch
        into TensorBoard. None by default: an empty list."""
        return []


class ZooModel(TheModel, Recipe, Report):
    """The contract (see the module docstring), and what makes a Keras model a well-behaved
    zoo citizen: a ``fit`` or ``evaluate`` that fails leaves it usable, an empty dataset is an
    error, nested Keras objects round-trip through the config."""

    def base_config(self):
        """The config entries every Keras model has: name, trainable and the dtype policy (so a
        per-instance ``dtype="mixed_bfloat16"`` survives a round trip)."""
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }

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

    def _forget_traces(self):
        """After a failure (a bad batch shape, an interrupt) the model stays usable: Keras keeps
        a half-traced function, whose next trace fails with "Creating variables on a non-first
        call", so they are dropped and traced afresh."""
        self.train_function = self.test_function = self.predict_function = None

    def fit(self, *args, **kwargs):
        """``keras.Model.fit``, usable again after a failure (`_forget_traces`); its optimizer
        built before the step is traced (`tfflows.build_optimizer`: one trace, not two)."""
        build_optimizer(self)
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
