"""Transfer learning: `TransferClassifier` reuses a network trained on one dataset as a frozen
feature extractor and trains a new head on the target task, then optionally fine-tunes the top
of the backbone at a low learning rate (keras.io's "Transfer learning & fine-tuning" recipe).
`ConvClassifier` is the zoo's small conv net with the same head, trained from scratch: the
recipe's pretraining and its baseline.

The objective is the cross-entropy of the head's logits ``f(x) = W pool(g(x)) + b`` over the
backbone's features ``g(x)``: ``L = -E[log softmax(f(x))_y]``. Phase 1 minimizes it over
``(W, b)`` only; phase 2 (`TransferClassifier.unfreeze`) also over the top layers of ``g``.
Batch-norm layers of a pretrained backbone stay in inference mode throughout (frozen, and the
backbone is called with ``training=False``), so their moving statistics never change: with a
few labelled images, batch statistics would be noise.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfflows import minimize, record_step, skipped_steps_metric
from tfflows.checks import in_range
from zoo import plots
from zoo.models import checks, nets
from zoo.models.contract import DataSpec, Phase, Prerequisite, RunPlan, ZooModel
from zoo.models.transfer import backbones

POOLINGS = ("avg", "max", "flatten")
# TFSMLayer trains copies of a SavedModel's variables that its function never reads.
_FROZEN_SAVEDMODEL = (
    "A SavedModel backbone can only be frozen; pass the model's .keras file to fine-tune it."
)


def _pool_layer(pooling, dtype):
    return {
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
        "flatten": keras.layers.Flatten,
    }[pooling](dtype=dtype, name="pool")


@keras.saving.register_keras_serializable(package="zoo")
class TransferClassifier(ZooModel, keras.Model):
    """A classifier of images in ``[0, 1]``: the backbone's input preparation (resize, channels,
    its own scaling; `zoo.models.transfer.backbones.BackboneInput`), the backbone, pooling,
    dropout and a dense head whose logits stay float32 under mixed precision.

    ``compile()`` with `compile_defaults` (Adam, sparse cross-entropy of logits, accuracy), then
    ``fit`` trains the head; ``unfreeze(...)`` then ``fit`` fine-tunes.

    Args:
      backbone: an application name (``"mobilenet_v2"``, ``"efficientnet_v2_b0"``,
        ``"resnet50"``; ``keras.applications`` class names work too), a ``keras.Model`` (a zoo
        model gives its ``feature_extractor()``: an autoencoder's encoder, a GAN's
        discriminator), or the path of a ``.keras`` file or a SavedModel folder. A model
        given as an object is used as it is, not copied, as Keras shares layers: freezing or
        fine-tuning here freezes or changes it there. A SavedModel backbone can only be frozen.
      num_classes: outputs of the head.
      image_shape: ``(H, W, C)`` of the data the model takes.
      weights: a named backbone's weights: ``"imagenet"`` (from the Keras cache; never
        downloaded), None (random) or the path of a weights file.
      input_size, input_scaling, endpoint, output_key: see `zoo.models.transfer.backbones.resolve`.
      pooling: ``"avg"``, ``"max"`` or ``"flatten"`` of 4-D features; default ``"avg"`` for
        an application (ImageNet networks end in a few pixels of many channels) and
        ``"flatten"`` otherwise: on the zoo's small images where a stroke is carries the class
        (bench/mnist_transfer.py: frozen features of digits 0-4, 10 labels of 5-9, held-out
        accuracy 0.86 flattened vs 0.69 averaged).
      dropout: rate before the head.
      class_labels: the dataset's label of each output (``zoo.data``'s ``classes``); default
        ``0 .. num_classes - 1``. The ``classify`` signature returns them.
      trainable_layers: how many of the backbone's top layers train (0: frozen); set by
        `unfreeze` and kept in the config.
      train_backbone: train every backbone layer, batch norm in training mode (from scratch).
      fine_tune_layers, fine_tune_epochs, fine_tune_learning_rate: the recipe's phase 2
        (`training_phases`): top layers to unfreeze (``"all"``, a count, or 0 for no phase 2;
        default ``"all"``, 0 for a SavedModel backbone),
        its epochs (default: as phase 1) and Adam's learning rate (default: 1e-5 for an
        application, as the Keras guide fine-tunes ImageNet networks; 1e-3, a tenth of the
        head's, for the small networks the zoo trains).
      validate_args: check that images are finite and in ``[0, 1]``.
    """

    data_spec = DataSpec(scaling="unit", labels=True)
    model_file_options = ("backbone",)

    def __init__(
        self,
        backbone="mobilenet_v2",
        num_classes=10,
        image_shape=(28, 28, 1),
        weights="imagenet",
        input_size=None,
        input_scaling=None,
        endpoint=None,
        output_key=None,
        pooling=None,
        dropout=0.2,
        class_labels=None,
        trainable_layers=0,
        train_backbone=False,
        fine_tune_layers=None,
        fine_tune_epochs=None,
        fine_tune_learning_rate=None,
        validate_args=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.skipped_steps = skipped_steps_metric()
        self.image_shape = tuple(int(n) for n in image_shape)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C), got {list(image_shape)}.")
        if int(num_classes) < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        if fine_tune_learning_rate is not None and float(fine_tune_learning_rate) <= 0:
            raise ValueError(f"fine_tune_learning_rate must be positive: {fine_tune_learning_rate}")
        self.num_classes = int(num_classes)
        self.class_labels = checks.class_labels(class_labels, self.num_classes)
        self.dropout = float(dropout)
        self.train_backbone = bool(train_backbone)
        self.fine_tune_epochs = None if fine_tune_epochs is None else int(fine_tune_epochs)
        if self.fine_tune_epochs is not None and self.fine_tune_epochs < 0:
            raise ValueError(f"fine_tune_epochs must be >= 0, got {fine_tune_epochs}.")

        found = backbones.resolve(
            backbone, self.image_shape, weights, input_size, input_scaling, endpoint, output_key
        )
        self.backbone = backbones.with_policy(found.network, self.dtype_policy.name)
        self.backbone_name = found.name
        self.pooling = pooling or ("avg" if found.name else "flatten")
        if fine_tune_learning_rate is None:
            fine_tune_learning_rate = 1e-5 if found.name else 1e-3
        self.fine_tune_learning_rate = float(fine_tune_learning_rate)
        self.output_key = found.output_key
        self.endpoint = getattr(self.backbone, "call_endpoint", None)
        if fine_tune_layers is None:
            fine_tune_layers = 0 if self.endpoint else "all"
        self.fine_tune_layers = self._layer_count(fine_tune_layers, "fine_tune_layers")
        if self.endpoint and self.fine_tune_layers != 0:
            raise ValueError(_FROZEN_SAVEDMODEL)
        layers = len(self.backbone_layers())
        if self.fine_tune_layers != "all" and self.fine_tune_layers > layers:
            raise ValueError(
                f"The backbone has {layers} layers; cannot fine-tune {fine_tune_layers}."
            )
        self.input_size = found.input_shape[:2]
        self.input_scaling = found.scaling
        self.preprocess = backbones.BackboneInput(
            found.input_shape[:2],
            found.input_shape[2],
            found.scaling,
            validate_args=validate_args,
            name="preprocess",
        )
        features = self.backbone(self.preprocess(tf.zeros([1, *self.image_shape])))
        if isinstance(features, dict):
            if self.output_key is None and len(features) != 1:
                raise ValueError(f"The backbone returns {sorted(features)}; pass output_key.")
            self.output_key = self.output_key or next(iter(features))
            features = features[self.output_key]
        if features.shape.rank not in (2, 4):
            raise ValueError(
                f"The backbone gives features of shape {features.shape}; the head takes "
                "[batch, features] or [batch, height, width, channels]."
            )
        rank4 = features.shape.rank == 4
        self.pool = _pool_layer(self.pooling, "float32") if rank4 else None
        pooled = self.pool(features) if self.pool is not None else features
        self.head_dropout = keras.layers.Dropout(self.dropout, dtype="float32", name="head_dropout")
        self.head = keras.layers.Dense(self.num_classes, dtype="float32", name="head")
        self.head.build((None, int(pooled.shape[-1])))
        self.built = True
        self.set_trainable_layers(trainable_layers)

    def train_step(self, data):
        """Keras' supervised step (``compute_loss``, compiled metrics) through
        `tfflows.minimize`: a step whose loss or gradients are not finite changes nothing and
        counts in ``skipped_steps``."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync

        def loss_fn():
            y_pred = self(x, training=True)
            # compute_loss divides by the replicas already; minimize does that itself.
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=True) * replicas
            return loss, y_pred

        # Only batch-norm statistics can move in a forward pass; a frozen backbone's kernels
        # (non-trainable too, and most of the weights) need no copy each step.
        moving = [v for v in self.non_trainable_weights if "moving_" in v.path]
        loss, y_pred, applied = minimize(self.optimizer, self.trainable_weights, loss_fn, moving)

        def update_metrics():
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
            self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

        record_step(applied, self.skipped_steps, update_metrics)
        return self.get_metrics_result()

    # The network.

    def _features(self, x, training=False):
        features = self.backbone(x, training=training)
        if isinstance(features, dict):
            features = features[self.output_key]
        return features

    def features(self, images):
        """Pooled backbone features of ``images`` in ``[0, 1]`` (inference mode)."""
        features = self._features(self.preprocess(images))
        return features if self.pool is None else self.pool(features)

    def call(self, images, training=False):
        """Logits ``[batch, num_classes]``, float32."""
        features = self._features(
            self.preprocess(self.images(images)),
            training=training if self.train_backbone else False,
        )
        if self.pool is not None:
            features = self.pool(features)
        return self.head(self.head_dropout(features, training=training))

    def predict_proba(self, images):
        return tf.nn.softmax(self(images))

    # Freezing.

    def backbone_layers(self):
        """The backbone's layers, bottom first (the unit of `unfreeze`; a SavedModel is one)."""
        return list(getattr(self.backbone, "layers", [self.backbone]))

    def _layer_count(self, count, what):
        if count == "all":
            return count
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
            raise ValueError(f"{what} must be 'all' or a count >= 0, got {count!r}.")
        return int(count)

    def set_trainable_layers(self, count):
        """Makes the top ``count`` backbone layers (``"all"``: every one) trainable and the rest
        frozen; batch-norm layers stay frozen unless ``train_backbone``. Recompile after it."""
        layers = self.backbone_layers()
        count = self._layer_count(count, "trainable_layers")
        n = len(layers) if count == "all" or self.train_backbone else count
        if n > len(layers):
            raise ValueError(f"The backbone has {len(layers)} layers; cannot unfreeze {n}.")
        if n and self.endpoint:
            raise ValueError(_FROZEN_SAVEDMODEL)
        self.backbone.trainable = n > 0
        if 0 < n and not self.train_backbone:
            for i, layer in enumerate(layers):
                layer.trainable = i >= len(layers) - n
            for layer in self.backbone._flatten_layers(include_self=False):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
        self.trainable_layers = n

    def unfreeze(self, layers="all", from_layer=None, learning_rate=None, optimizer=None):
        """Phase 2: unfreezes the top ``layers`` backbone layers (or every layer from the one
        named ``from_layer`` up), batch norm excepted, and recompiles with ``optimizer`` or
        Adam at ``learning_rate`` (default ``fine_tune_learning_rate``), keeping the compiled
        loss."""
        if from_layer is not None:
            names = [layer.name for layer in self.backbone_layers()]
            if from_layer not in names:
                raise ValueError(
                    f"The backbone has no layer {from_layer!r}; its top layers are {names[-5:]}."
                )
            layers = len(names) - names.index(from_layer)
        self.set_trainable_layers(layers)
        defaults = self.compile_defaults(learning_rate or self.fine_tune_learning_rate)
        if getattr(self, "compiled", False) and self.loss is not None:
            defaults["loss"] = self.loss
        self.compile(**{**defaults, **({"optimizer": optimizer} if optimizer else {})})
        return self

    # What the shared training path asks.

    @classmethod
    def from_data(cls, info, **options):
        if not info.num_classes:
            raise ValueError(f"{cls.__name__} needs labelled data; {info.name} has no labels.")
        classes = info.classes if info.classes is not None else range(info.num_classes)
        return cls(
            image_shape=info.image_shape,
            num_classes=info.num_classes,
            class_labels=list(classes),
            **options,
        )

    def compile(self, optimizer=None, loss=None, metrics=None, **kwargs):
        """``keras.Model.compile`` with what is not given from `compile_defaults`."""
        defaults = self.compile_defaults()
        super().compile(
            optimizer=optimizer or defaults["optimizer"],
            loss=loss or defaults["loss"],
            metrics=metrics if metrics is not None else defaults["metrics"],
            **kwargs,
        )

    def compile_from_config(self, config):
        # Keras skips models whose compile is overridden; ours takes the same arguments.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compile_defaults(self, learning_rate=None):
        """Adam at ``learning_rate``, default 1e-2 for a head on a frozen backbone (a linear
        model on fixed features), ``fine_tune_learning_rate`` once backbone layers are
        unfrozen, and 1e-3 when the whole network trains from scratch."""
        if self.train_backbone:
            default = 1e-3
        elif getattr(self, "trainable_layers", 0):
            default = self.fine_tune_learning_rate
        else:
            default = 1e-2
        return {
            "optimizer": self.adam(learning_rate or default),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def training_phases(self, epochs):
        """``frozen`` (the head), then ``fine_tuned`` (`unfreeze` of ``fine_tune_layers``)
        unless that is 0; one ``train`` phase for a model trained from scratch or one whose
        backbone is already unfrozen."""
        if self.train_backbone or self.trainable_layers:
            return [Phase("train" if self.train_backbone else "fine_tuned", int(epochs))]
        phases = [Phase("frozen", int(epochs))]
        if self.fine_tune_layers != 0 and self.fine_tune_epochs != 0:
            phases.append(
                Phase(
                    "fine_tuned",
                    int(epochs) if self.fine_tune_epochs is None else self.fine_tune_epochs,
                    lambda: self.unfreeze(self.fine_tune_layers),
                )
            )
        return phases

    @classmethod
    def plan_run(cls, run, describe):
        """``zoo train transfer`` without a ``backbone`` option is the whole recipe: a
        prerequisite run pretrains a `ConvClassifier` on the source classes (option
        ``source_classes``; default: the first half, or those not in ``--classes``) into
        ``OUT/backbone/``, whose model this one then transfers to the target classes
        (``--classes``; default: the others) with ``--labels-per-class`` (default 10) labelled
        images each. With few labels per class, an epoch is ``--steps-per-epoch`` batches
        (default 10) of the repeated labelled set. A ``--time-budget`` is shared half and half
        between pretraining and transfer."""
        options = dict(run.options)
        source = options.pop("source_classes", None)
        if options.get("backbone") is not None:
            if source is not None:
                raise ValueError("source_classes is for pretraining, which a backbone skips.")
            steps = _steps(run.steps_per_epoch, run.labels_per_class)
            return RunPlan(changes={"options": options, "steps_per_epoch": steps})
        info = describe()
        if not info.num_classes:
            raise ValueError(f"Transfer needs labelled data; {info.name} has no labels.")
        target = [int(c) for c in run.classes or []]
        if source is None:
            rest = [c for c in range(info.num_classes) if c not in target]
            source = rest if target else rest[: info.num_classes // 2]
        source = [int(c) for c in source]
        target = target or [c for c in range(info.num_classes) if c not in source]
        if not source or not target or set(source) & set(target):
            raise ValueError(f"source {source} and target {target} classes must be disjoint.")
        labels = run.labels_per_class or 10
        pretraining = Prerequisite(
            ConvClassifier,
            folder="backbone",
            option="backbone",
            changes={
                "classes": tuple(source),
                "labels_per_class": None,
                "steps_per_epoch": None,
                "options": {},
            },
            budget_share=0.5,
            what=f"pretraining a conv net on classes {source} for transfer to {target}",
        )
        changes = {
            "classes": tuple(target),
            "labels_per_class": labels,
            "steps_per_epoch": _steps(run.steps_per_epoch, labels),
            "options": options,
        }
        return RunPlan(changes=changes, prerequisites=(pretraining,))

    def check_data(self, info):
        super().check_data(info)
        if info.num_classes != self.num_classes:
            raise ValueError(
                f"The model has {self.num_classes} classes; {info.name} has {info.num_classes}."
            )

    def feature_extractor(self):
        return self.backbone, self.input_scaling

    def headline(self, results):
        return {f"held_out_{k}": round(float(results[k]), 4) for k in ("accuracy", "loss")}

    def write_artifacts(self, out, data, seed=0, temperature=1.0):
        """``confusion_matrix.png`` of the held-out data."""
        plots.held_out_confusion(
            data,
            lambda images: tf.argmax(self(images), axis=-1),
            os.path.join(out, "confusion_matrix.png"),
            [str(c) for c in self.class_labels],
            self.name,
        )
        return ["confusion_matrix.png"]

    def classify(self, images):
        """``images`` ``[batch, height, width, 1 or 3]`` in ``[0, 1]``, any size: resized
        (bilinear, antialiased) to ``image_shape`` and converted to its channels, then
        ``probabilities``, ``class_ids`` (their argmax) and ``labels`` (the dataset's label
        of each class id)."""
        images = tf.convert_to_tensor(images, tf.float32)
        channels = tf.shape(images)[-1]
        message = (
            f"classify takes images [batch, height, width, 1 or 3 channels] with values in "
            f"[0, 1] (uint8: 0-255); this model's are {list(self.image_shape)}"
        )
        shape_checks = [
            tf.debugging.assert_rank(images, 4, message=message),
            tf.debugging.assert_equal(
                (channels == 1) | (channels == 3) | (channels == self.image_shape[-1]),
                True,
                message=message,
            ),
        ]
        with tf.control_dependencies(shape_checks):
            images = in_range(images, 0.0, 1.0, message)
        x = tf.image.resize(images, self.image_shape[:2], antialias=True)
        x = backbones.convert_channels(tf.clip_by_value(x, 0.0, 1.0), self.image_shape[-1])
        probabilities = tf.nn.softmax(self(x))
        class_ids = tf.argmax(probabilities, axis=-1)
        labels = tf.gather(tf.constant(self.class_labels, tf.int64), class_ids)
        return {"probabilities": probabilities, "class_ids": class_ids, "labels": labels}

    def serving_endpoints(self):
        """``classify`` (also ``serving_default``): uint8 ``images`` ``[batch, height, width,
        1 or 3]`` of any size; ``classify_float``: the same in float32 ``[0, 1]``. Both give
        ``probabilities``, ``class_ids`` and ``labels`` (see `classify`)."""
        any_size = [None, None, None, None]

        def classify_uint8(images):
            return self.classify(tf.cast(images, tf.float32) / 255.0)

        return {
            "classify": (classify_uint8, [tf.TensorSpec(any_size, tf.uint8, name="images")]),
            "classify_float": (
                self.classify,
                [tf.TensorSpec(any_size, tf.float32, name="images")],
            ),
        }

    def get_config(self):
        if self.backbone_name is not None:
            backbone = self.backbone_name
        elif self.endpoint:
            backbone = self.backbone.filepath  # a SavedModel is read again from its folder
        else:
            # Through JSON, as a .keras file stores it: tuples become lists.
            backbone = json.loads(json.dumps(keras.saving.serialize_keras_object(self.backbone)))
        return {
            **self.base_config(),
            "backbone": backbone,
            "num_classes": self.num_classes,
            "image_shape": list(self.image_shape),
            "weights": None,  # the weights travel in the .keras file, not the config
            **self._head_config(),
            "input_size": list(self.input_size),
            "input_scaling": self.input_scaling,
            "endpoint": self.endpoint,
            "output_key": self.output_key,
            "trainable_layers": self.trainable_layers,
            "train_backbone": self.train_backbone,
            "fine_tune_layers": self.fine_tune_layers,
            "fine_tune_epochs": self.fine_tune_epochs,
            "fine_tune_learning_rate": self.fine_tune_learning_rate,
        }

    def _head_config(self):
        return {
            "pooling": self.pooling,
            "dropout": self.dropout,
            "class_labels": self.class_labels,
            "validate_args": self.preprocess.validate_args,
        }


@keras.saving.register_keras_serializable(package="zoo")
class ConvClassifier(TransferClassifier):
    """The zoo's small conv net (`zoo.models.nets.conv_net`: ``stages`` of conv-BN-ReLU and
    stride-2 conv-BN-ReLU) with `TransferClassifier`'s head, every layer trained from scratch,
    batch norm in training mode. `TransferClassifier` reuses a trained one's conv net.

    Args:
      image_shape, num_classes, dropout, class_labels, validate_args: see `TransferClassifier`.
      filters: width of the first stage (doubling per stage).
      stages: number of stride-2 stages.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        filters=32,
        stages=2,
        dropout=0.2,
        class_labels=None,
        validate_args=True,
        **kwargs,
    ):
        self.filters = int(filters)
        self.stages = int(stages)
        if self.filters < 1 or self.stages < 1:
            raise ValueError(f"filters and stages must be positive, got {filters}, {stages}.")
        net = nets.conv_net(image_shape, self.filters, self.stages, dtype=kwargs.get("dtype"))
        super().__init__(
            backbone=net,
            num_classes=num_classes,
            image_shape=image_shape,
            weights=None,
            dropout=dropout,
            class_labels=class_labels,
            train_backbone=True,
            fine_tune_layers=0,
            validate_args=validate_args,
            **kwargs,
        )

    @classmethod
    def plan_run(cls, run, describe):
        """Trained from scratch: nothing to pretrain."""
        return RunPlan()

    def get_config(self):
        return {
            **self.base_config(),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "filters": self.filters,
            "stages": self.stages,
            **self._head_config(),
        }


def _steps(steps_per_epoch, labels_per_class, few=100):
    """Batches per epoch: 10 when at most ``few`` labels per class, else the run's own."""
    if steps_per_epoch or not labels_per_class or labels_per_class > few:
        return steps_per_epoch
    return 10
