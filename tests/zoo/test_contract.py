"""The model contract is the whole interface: what the shared code asks of a model is declared in
`zoo.models.contract` (or is Keras'), every registered model is a `ZooModel` that answers the
required hooks, and what users imported before the layout changed still imports."""

import ast
import pathlib
import warnings

import keras
import numpy as np
import pytest

import zoo
from zoo import data, registry, training
from zoo.models import ZooModel
from zoo.models.contract import Recipe, Report, TheModel

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The shared code: everything but the models themselves.
SHARED = [
    *sorted((ROOT / "zoo" / "training").glob("*.py")),
    *sorted((ROOT / "zoo" / "serving").glob("*.py")),
    *sorted((ROOT / "zoo" / "data").glob("*.py")),
    ROOT / "zoo" / "cli.py",
    ROOT / "zoo" / "registry.py",
    ROOT / "zoo" / "plots.py",
]
MODEL_NAMES = ("model", "self.model", "cls", "self.entry.cls", "e.cls", "entry.cls")


def asked_of_models(paths):
    """``{attribute: [file:line, ...]}`` of every attribute the files read from a model (a
    name in `MODEL_NAMES`), and of every ``getattr`` / ``hasattr`` on one."""
    asked = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                if ast.unparse(node.value) in MODEL_NAMES:
                    asked.setdefault(node.attr, []).append(f"{path.name}:{node.lineno}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and ast.unparse(node.args[0]) in MODEL_NAMES
            ):
                asked.setdefault(f"{node.func.id}()", []).append(f"{path.name}:{node.lineno}")
    return asked


def test_shared_code_asks_models_only_what_the_contract_declares():
    asked = asked_of_models(SHARED)
    assert "sample" in asked and "plan_run" in asked  # the scan sees the hooks
    a_keras_model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    undeclared = {
        name: where
        for name, where in asked.items()
        if not hasattr(ZooModel, name) and not hasattr(a_keras_model, name)
    }
    assert not undeclared, f"asked of a model but not in zoo/models/contract.py: {undeclared}"
    # No hook is dead: each is asked by the shared code, but those the models ask of each
    # other (transfer learning builds on a model's features; compile_defaults calls adam;
    # data_options reads class_labels; sample implementations call unconditional) and the one
    # the run sets (optimizer_options).
    hooks = {n for group in (TheModel, Recipe, Report) for n in vars(group) if n[0] != "_"}
    among_models = {
        "feature_extractor",
        "adam",
        "class_labels",
        "unconditional",
        "optimizer_options",
    }
    assert hooks - among_models == hooks & set(asked), hooks - among_models - set(asked)


def test_the_scan_sees_an_undeclared_hook(tmp_path):
    module = tmp_path / "shared.py"
    module.write_text("def f(model):\n    return model.secret_hook(), getattr(model, 'x', 0)\n")
    assert set(asked_of_models([module])) == {"secret_hook", "getattr()"}


def test_every_registered_model_is_a_zoo_model_with_serving_endpoints():
    for entry in registry.entries():
        assert issubclass(entry.cls, ZooModel) and issubclass(entry.cls, keras.Model), entry
        assert entry.cls.serving_endpoints is not ZooModel.serving_endpoints, entry.name
        assert registry.entry(entry.name) is entry
    assert registry.name_of(zoo.ConvClassifier) == "classifier"
    with pytest.raises(ValueError, match="not in the zoo's registry"):
        registry.name_of(zoo.ImageFlow)


def test_run_config_is_the_data_options_and_keeps_its_keywords():
    config = training.RunConfig("vae", dataset="digits", batch_size=32, classes=[3, 4])
    assert isinstance(config, data.DataOptions) and config.classes == (3, 4)
    ds, info = config.load("test", zoo.VAE.data_spec)
    direct, _ = data.load("digits", "test", batch_size=32, classes=(3, 4), scaling="unit")
    assert info.num_classes == 2 and info.classes == (3, 4)
    np.testing.assert_array_equal(next(iter(ds)), next(iter(direct)))
    assert set(data.DataOptions.names()) <= {f for f in training.RunConfig.__dataclass_fields__}


@pytest.mark.parametrize(
    "old, name, new",
    [
        ("zoo.flows", "RealNVP", zoo.RealNVP),
        ("zoo.gan", "upsampling_stages", None),
        ("zoo.autoencoder", "train_eight_three_eight", None),
        ("zoo.export", "export", None),
        ("zoo.base", "whole_number", None),
        ("zoo.callbacks", "LearningRateSchedule", None),
        ("zoo.presets", "from_preset", zoo.from_preset),
    ],
)
def test_the_old_module_names_still_import(old, name, new):
    import importlib

    module = importlib.import_module(old)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = getattr(module, name)
    assert callable(found) and (new is None or found is new)
    assert any(
        issubclass(w.category, DeprecationWarning) and "moved" in str(w.message) for w in caught
    )
    with pytest.raises(AttributeError, match="has no 'nothing'"):
        module.nothing  # noqa: B018
