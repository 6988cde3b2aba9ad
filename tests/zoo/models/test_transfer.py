import dataclasses

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.model_checks import ModelChecks
from zoo import data
from zoo.models import autoencoders, gan, nets
from zoo.models.transfer import ConvClassifier, TransferClassifier, backbones
from zoo.serving import export

SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


def labelled(split, classes, per_class=None, seed=0, batch_size=64):
    ds, info = data.load(
        "digits",
        split,
        scaling="unit",
        with_labels=True,
        classes=classes,
        per_class=per_class,
        seed=seed,
        batch_size=batch_size,
    )
    return ds, info


def arrays(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A small ConvClassifier trained on digits 0-4, saved as .keras."""
    keras.utils.set_random_seed(0)
    train, info = labelled("train", SOURCE)
    model = ConvClassifier(info.image_shape, info.num_classes, filters=16, name="source")
    model.compile(**model.compile_defaults(3e-3))
    model.fit(train, epochs=6, verbose=0)
    path = str(tmp_path_factory.mktemp("pretrained") / "source.keras")
    model.save(path)
    return path


@pytest.fixture(scope="module")
def few_labels():
    train, info = labelled("train", TARGET, per_class=10, seed=0)
    test, _ = labelled("test", TARGET, batch_size=512)
    return train.repeat(), test, info


def weights_by_name(layers):
    return {w.path: w.numpy().copy() for layer in layers for w in layer.weights}


def bn_statistics(model):
    return {
        w.path: w.numpy().copy()
        for layer in model.backbone._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
        for w in layer.weights
    }


def changed(before, after):
    return {k for k in before if not np.array_equal(before[k], after[k])}


def uint8_images(x):
    return np.round(np.asarray(x) * 255).astype(np.uint8)


def classify_inputs(model, batch):
    x = batch[0]
    return {"classify": {"images": uint8_images(x)}, "classify_float": {"images": x}}


def test_conv_classifier_shared_model_checks(tmp_path):
    ds, _ = labelled("test", None, batch_size=16)
    ModelChecks(
        make=lambda **kw: ConvClassifier((8, 8, 1), 10, filters=4, **kw),
        batch=next(iter(ds)),
        outputs=lambda model, batch: {"logits": model(batch[0])},
        signature_inputs=classify_inputs,
    ).run_all(tmp_path)


def test_transfer_classifier_shared_model_checks(tmp_path):
    ds, _ = labelled("test", TARGET, batch_size=16)
    ModelChecks(
        make=lambda **kw: TransferClassifier(
            nets.conv_net((8, 8, 1), 4), num_classes=5, image_shape=(8, 8, 1), **kw
        ),
        batch=next(iter(ds)),
        outputs=lambda model, batch: {"logits": model(batch[0])},
        signature_inputs=classify_inputs,
    ).run_all(tmp_path)


def test_the_head_stays_float32_under_mixed_precision():
    model = TransferClassifier(nets.conv_net((8, 8, 1), 4), 5, (8, 8, 1), dtype="mixed_bfloat16")
    assert {layer.compute_dtype for layer in model.backbone.layers} == {"bfloat16"}
    assert model.head.compute_dtype == "float32" and model.head.kernel.dtype == "float32"
    assert model(np.zeros((2, 8, 8, 1), np.float32)).dtype == tf.float32


def test_phase_one_trains_the_head_only(pretrained, few_labels):
    train, test, info = few_labels
    model = TransferClassifier(pretrained, info.num_classes, info.image_shape)
    source = keras.saving.load_model(pretrained)
    x, _ = arrays(test)
    # The backbone is the trained one: same features as the source model's conv net.
    np.testing.assert_array_equal(model.features(x), source.features(x))
    backbone = weights_by_name(model.backbone_layers())
    head = weights_by_name([model.head])
    model.compile(**model.compile_defaults(1e-2))
    first = model.evaluate(test, verbose=0, return_dict=True)["loss"]
    model.fit(train, epochs=6, steps_per_epoch=10, verbose=0)
    assert changed(backbone, weights_by_name(model.backbone_layers())) == set()
    assert changed(head, weights_by_name([model.head])) == set(head)
    result = model.evaluate(test, verbose=0, return_dict=True)
    assert result["loss"] < first - 0.5, (first, result)
    assert result["accuracy"] > 0.6, result  # 5 classes, 10 labels each: chance is 0.2


def test_phase_two_changes_only_the_unfrozen_layers(pretrained, few_labels):
    train, _, info = few_labels
    model = TransferClassifier(pretrained, info.num_classes, info.image_shape)
    model.compile(**model.compile_defaults(3e-3))
    model.fit(train, epochs=1, steps_per_epoch=10, verbose=0)
    model.unfreeze(from_layer="stage2_conv1", learning_rate=1e-3)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    layers = model.backbone_layers()
    names = [layer.name for layer in layers]
    top = layers[names.index("stage2_conv1") :]
    assert model.trainable_layers == len(top)
    below = weights_by_name(layers[: names.index("stage2_conv1")])
    unfrozen = weights_by_name(
        [la for la in top if not isinstance(la, keras.layers.BatchNormalization)]
    )
    statistics = bn_statistics(model)
    model.fit(train, epochs=2, steps_per_epoch=10, verbose=0)
    assert changed(below, weights_by_name(layers[: names.index("stage2_conv1")])) == set()
    assert changed(statistics, bn_statistics(model)) == set()
    assert changed(
        unfrozen,
        weights_by_name(
            [la for la in top if la.weights and not isinstance(la, keras.layers.BatchNormalization)]
        ),
    ) == set(unfrozen)
    # Batch norm is frozen whole (scale and offset too) and runs on its moving statistics.
    assert not any(
        w.trainable
        for la in top
        if isinstance(la, keras.layers.BatchNormalization)
        for w in la.weights
    )


def test_unfreeze_survives_a_keras_round_trip(pretrained, few_labels, tmp_path):
    train, test, info = few_labels
    model = TransferClassifier(pretrained, info.num_classes, info.image_shape)
    model.compile(**model.compile_defaults())
    model.unfreeze(2)
    model.fit(train, epochs=1, steps_per_epoch=3, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.trainable_layers == 2
    assert [w.path for w in loaded.trainable_weights] == [w.path for w in model.trainable_weights]
    x, _ = arrays(test)
    np.testing.assert_array_equal(loaded(x), model(x))
    # Compiled as saved: the fine-tuning optimizer, its step count, the same figures.
    assert float(loaded.optimizer.learning_rate) == pytest.approx(1e-3)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 3
    assert loaded.evaluate(test, verbose=0, return_dict=True) == pytest.approx(
        model.evaluate(test, verbose=0, return_dict=True)
    )
    with pytest.raises(ValueError, match="no layer 'nope'"):
        model.unfreeze(from_layer="nope")
    with pytest.raises(ValueError, match="cannot unfreeze 99"):
        model.unfreeze(99)
    assert model.trainable_layers == 2  # a refused call changes nothing


def test_training_phases_are_frozen_then_fine_tuned(pretrained):
    model = TransferClassifier(pretrained, 5, (8, 8, 1), fine_tune_epochs=3)
    model.compile(**model.compile_defaults())
    phases = model.training_phases(4)
    assert [(p.name, p.epochs) for p in phases] == [("frozen", 4), ("fine_tuned", 3)]
    assert not model.backbone.trainable_weights
    phases[1].begin()
    assert model.trainable_layers == len(model.backbone_layers())
    assert float(model.optimizer.learning_rate) == pytest.approx(model.fine_tune_learning_rate)
    assert [p.name for p in model.training_phases(4)] == ["fine_tuned"]
    no_phase_two = TransferClassifier(pretrained, 5, (8, 8, 1), fine_tune_layers=0)
    assert [p.name for p in no_phase_two.training_phases(4)] == ["frozen"]
    assert [p.name for p in ConvClassifier((8, 8, 1), 5).training_phases(4)] == ["train"]


def test_classify_takes_uint8_images_of_any_size(pretrained, few_labels, tmp_path):
    _, test, info = few_labels
    model = TransferClassifier(pretrained, info.num_classes, info.image_shape, class_labels=TARGET)
    model.compile(**model.compile_defaults(3e-3))
    model.fit(few_labels[0], epochs=2, steps_per_epoch=10, verbose=0)
    loaded = tf.saved_model.load(export.export(model, str(tmp_path), model_name="t"))
    x, y = arrays(test)
    for size, channels in (((16, 16), 1), ((12, 20), 3)):
        big = tf.image.resize(x, size, method="nearest")
        big = tf.tile(big, [1, 1, 1, channels])
        images = uint8_images(big)
        out = loaded.signatures["classify"](images=tf.constant(images))
        floats = tf.image.resize(images.astype(np.float32) / 255.0, (8, 8), antialias=True)
        if channels == 3:
            floats = tf.image.rgb_to_grayscale(floats)
        expected = tf.nn.softmax(model(tf.clip_by_value(floats, 0.0, 1.0))).numpy()
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
        np.testing.assert_array_equal(out["class_ids"], expected.argmax(-1))
        np.testing.assert_array_equal(out["labels"], np.asarray(TARGET)[expected.argmax(-1)])
        # Upsampled digits are still the digits.
        assert np.mean(out["class_ids"].numpy() == y) > 0.5
    default = loaded.signatures["serving_default"](images=tf.constant(uint8_images(x)))
    np.testing.assert_array_equal(default["class_ids"], np.argmax(model(x), -1))


def test_classify_explains_bad_images(pretrained):
    model = TransferClassifier(pretrained, 5, (8, 8, 1))
    good = np.full((1, 8, 8, 1), 0.5, np.float32)
    for bad in (good * np.nan, good + 1.0, np.zeros((1, 8, 8, 2), np.float32)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="1 or 3 channels"):
            model.classify(bad)
    with pytest.raises(tf.errors.InvalidArgumentError, match="finite values in \\[0, 1\\]"):
        model(good * 255.0)


@pytest.mark.parametrize(
    "name, builder, preprocess, options",
    [
        ("mobilenet_v2", "MobileNetV2", "mobilenet_v2", {}),
        (
            "EfficientNetV2B0",
            "EfficientNetV2B0",
            "efficientnet_v2",
            {"include_preprocessing": True},
        ),
        ("resnet50", "ResNet50", "resnet50", {}),
    ],
)
def test_named_backbones_carry_their_own_input_preparation(name, builder, preprocess, options):
    model = TransferClassifier(name, 3, (8, 8, 1), weights=None, input_size=32)
    assert model.input_size == (32, 32) and model.pooling == "avg"
    assert model.get_config()["backbone"] == backbones.application_name(name)
    # The model's features of grayscale [0, 1] images are Keras' own network on the RGB
    # pixels prepared by Keras' own preprocess_input (EfficientNetV2 rescales inside).
    reference = getattr(keras.applications, builder)(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg", **options
    )
    reference.set_weights(model.backbone.get_weights())
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype(np.float32)
    rgb = tf.image.resize(np.repeat(x, 3, axis=-1), (32, 32)).numpy()
    pixels = getattr(keras.applications, preprocess).preprocess_input(255.0 * rgb)
    np.testing.assert_allclose(model.features(x), reference(pixels), rtol=1e-4, atol=1e-4)
    assert model(x).shape == (2, 3)


def test_imagenet_weights_come_from_the_cache_or_fail_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    file_name = backbones.APPLICATIONS["mobilenet_v2"].weights_name(96)
    with pytest.raises(backbones.WeightsUnavailableError, match=file_name) as error:
        TransferClassifier("mobilenet_v2", 3, (8, 8, 1))
    assert str(tmp_path / "home" / "models") in str(error.value)
    # A weights file in the cache (legacy h5, as keras.applications ships them) is used.
    reference = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(96, 96, 3)
    )
    folder = tmp_path / "home" / "models"
    folder.mkdir(parents=True)
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(folder / file_name, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    for weights in ("imagenet", str(folder / file_name)):
        model = TransferClassifier("mobilenet_v2", 3, (8, 8, 1), weights=weights)
        for got, want in zip(model.backbone.weights, reference.weights, strict=True):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(backbones.WeightsUnavailableError, match="no file at"):
        TransferClassifier("mobilenet_v2", 3, (8, 8, 1), weights=str(tmp_path / "missing.h5"))


def test_backbones_from_zoo_models_keras_files_and_savedmodels(tmp_path):
    x = data.load("digits", "test", scaling="unit", batch_size=16)[0]
    x = next(iter(x)).numpy()
    ae = autoencoders.Autoencoder((8, 8, 1), architecture="conv", filters=4, latent_dim=6)
    ae.save(str(tmp_path / "ae.keras"))
    saved = export.export(ae, str(tmp_path / "serving"), model_name="ae")
    for backbone, kw in (
        (ae, {}),
        (str(tmp_path / "ae.keras"), {}),
        (saved, {"endpoint": "encode", "output_key": "z"}),
    ):
        model = TransferClassifier(backbone, 4, (8, 8, 1), **kw)
        np.testing.assert_allclose(model.features(x), ae.encode(x), atol=1e-5)
    dcgan = gan.DCGAN((8, 8, 1), latent_dim=4, filters=4, pack=2)
    model = TransferClassifier(dcgan, 4, (8, 8, 1))
    assert model.input_scaling == "symmetric" and model.preprocess.channels == 2
    hidden = keras.Sequential(dcgan.discriminator.layers[:-1])
    expected = hidden(np.concatenate([2 * x - 1, 2 * x - 1], axis=-1), training=False)
    np.testing.assert_allclose(model.features(x), expected, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="neither a known network"):
        TransferClassifier(str(tmp_path / "nothing.keras"), 4, (8, 8, 1))


def test_compile_without_arguments_is_the_recipe(pretrained, few_labels):
    train, test, info = few_labels
    model = TransferClassifier(pretrained, info.num_classes, info.image_shape)
    model.compile()
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-2)
    first = model.evaluate(test, verbose=0, return_dict=True)
    model.fit(train, epochs=2, steps_per_epoch=10, verbose=0)
    model.unfreeze()
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    model.fit(train, epochs=1, steps_per_epoch=10, verbose=0)
    last = model.evaluate(test, verbose=0, return_dict=True)
    assert last["loss"] < first["loss"] and last["accuracy"] > first["accuracy"] + 0.3


def test_a_savedmodel_backbone_is_frozen_and_read_again_from_its_folder(tmp_path):
    x = next(iter(data.load("digits", "test", scaling="unit", batch_size=8)[0])).numpy()
    ae = autoencoders.Autoencoder((8, 8, 1), architecture="conv", filters=4, latent_dim=6)
    saved = export.export(ae, str(tmp_path), model_name="ae")
    model = TransferClassifier(saved, 4, (8, 8, 1), endpoint="encode")
    assert model.output_key == "z" and [p.name for p in model.training_phases(3)] == ["frozen"]
    clone = TransferClassifier.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(x), model(x))
    low = TransferClassifier(saved, 4, (8, 8, 1), endpoint="encode", dtype="mixed_bfloat16")
    np.testing.assert_allclose(low.features(x), ae.encode(x), atol=1e-5)
    with pytest.raises(ValueError, match="can only be frozen"):
        model.unfreeze()
    with pytest.raises(ValueError, match="can only be frozen"):
        TransferClassifier(saved, 4, (8, 8, 1), endpoint="encode", fine_tune_layers=2)


def test_an_unfrozen_model_compiles_at_the_fine_tuning_rate(pretrained):
    model = TransferClassifier(pretrained, 5, (8, 8, 1), trainable_layers=3)
    assert [p.name for p in model.training_phases(2)] == ["fine_tuned"]
    model.compile()
    assert float(model.optimizer.learning_rate) == pytest.approx(model.fine_tune_learning_rate)
    with pytest.raises(ValueError, match="cannot fine-tune 99"):
        TransferClassifier(pretrained, 5, (8, 8, 1), fine_tune_layers=99)
    no_epochs = TransferClassifier(pretrained, 5, (8, 8, 1), fine_tune_epochs=0)
    assert [p.name for p in no_epochs.training_phases(2)] == ["frozen"]


def test_plan_run_repeats_only_small_labelled_sets(pretrained):
    from zoo import training

    def describe():
        raise AssertionError("a given backbone needs no look at the data")

    base = training.RunConfig(model="transfer", options={"backbone": pretrained})

    def steps(**changes):
        plan = TransferClassifier.plan_run(dataclasses.replace(base, **changes), describe)
        assert not plan.prerequisites
        return plan.changes["steps_per_epoch"]

    assert steps(labels_per_class=10) == 10
    assert steps(labels_per_class=150) is None
    assert steps(labels_per_class=5, steps_per_epoch=3) == 3
    with pytest.raises(ValueError, match="source_classes is for pretraining"):
        steps(options={"backbone": pretrained, "source_classes": [1]})


def test_plan_run_without_a_backbone_declares_the_pretraining():
    from zoo import training

    _, info = data.load("digits", "train", with_labels=True)
    plan = TransferClassifier.plan_run(
        training.RunConfig(model="transfer", classes=(7, 8), time_budget=60), lambda: info
    )
    (pretraining,) = plan.prerequisites
    assert pretraining.model is ConvClassifier and pretraining.option == "backbone"
    assert pretraining.changes["classes"] == (0, 1, 2, 3, 4, 5, 6, 9)
    assert plan.changes["classes"] == (7, 8) and plan.changes["labels_per_class"] == 10
    assert plan.changes["steps_per_epoch"] == 10 and pretraining.budget_share == 0.5
    plan = TransferClassifier.plan_run(training.RunConfig(model="transfer"), lambda: info)
    assert plan.prerequisites[0].changes["classes"] == (0, 1, 2, 3, 4)
    assert plan.changes["classes"] == (5, 6, 7, 8, 9)
    with pytest.raises(ValueError, match="must be disjoint"):
        TransferClassifier.plan_run(
            training.RunConfig(model="transfer", classes=(1,), options={"source_classes": [1]}),
            lambda: info,
        )


def test_xla_compiles_the_train_step_unless_the_input_shrinks():
    x = np.random.default_rng(0).uniform(size=(8, 8, 8, 1)).astype(np.float32)
    y = np.arange(8) % 3
    grows = TransferClassifier(nets.conv_net((16, 16, 1), 4), 3, (8, 8, 1))
    grows.compile(jit_compile=True)
    assert grows.jit_compile is True
    history = grows.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    shrinks = TransferClassifier(nets.conv_net((4, 4, 1), 4), 3, (8, 8, 1))
    assert shrinks.preprocess.supports_jit is False
    with pytest.warns(UserWarning, match="doesn't support `jit_compile=True`"):
        shrinks.compile(jit_compile=True)
    assert shrinks.jit_compile is False
