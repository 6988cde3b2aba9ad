"""Trained models by name, as keras-hub's ``from_preset`` and timm's ``pretrained=True`` give them.

```python
import zoo

flow = zoo.from_preset("realnvp_digits")      # a ready zoo.RealNVP (a keras.Model)
flow.preset_card["held_out_bits_per_dim"]     # 2.0462: its data, command, figures, versions
images = flow.sample(16, temperature=0.7, seed=[0, 0])
```

A preset is a folder ``NAME/`` holding ``model.keras`` (the whole Keras model in the float32
policy, without optimizer state, so loading needs no network and no code but the zoo's),
``card.json`` (what `tools/build_presets.py` measured: data, command, held-out figures,
versions), ``MODEL_CARD.md`` and, where its data are not on every machine, ``examples.npz``
(held-out examples that ``zoo evaluate NAME`` scores). The package ships its presets as package
data (``zoo/presets/``, in the wheel too); ``$ZOO_PRESETS`` (folders separated by
``os.pathsep``) adds others, searched first. A path to a preset folder is a preset too.
``zoo export NAME`` writes a preset's SavedModel for TF Serving.
"""

import difflib
import json
import os
import zipfile

from zoo.storage import first_line

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "presets")
MODEL_FILE, CARD_FILE = "model.keras", "card.json"


def search_path():
    """The folders searched for presets, first to last."""
    extra = [p for p in os.environ.get("ZOO_PRESETS", "").split(os.pathsep) if p]
    return [*extra, SHIPPED]


def _is_preset(folder):
    return all(os.path.isfile(os.path.join(folder, f)) for f in (MODEL_FILE, CARD_FILE))


def list_presets():
    """``{name: folder}`` of every preset on the search path (the first of a name wins)."""
    found = {}
    for root in search_path():
        if os.path.isdir(root):
            for name in sorted(os.listdir(root)):
                folder = os.path.join(root, name)
                if name not in found and _is_preset(folder):
                    found[name] = folder
    return found


def preset_folder(name):
    """The folder of preset ``name`` (a name on the search path, or a preset folder's path).

    Raises:
      ValueError: no such preset; the message lists those there are.
    """
    name = str(name)
    if _is_preset(name):
        return name
    presets = list_presets()
    if name in presets:
        return presets[name]
    close = difflib.get_close_matches(name, presets, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"No preset {name!r}: the presets are {sorted(presets) or 'none'} (in "
        f"{os.pathsep.join(search_path())}).{hint}"
    )


def card(name):
    """Preset ``name``'s card (``card.json``) as a dict.

    Raises:
      ValueError: a card that is not a JSON object, naming its path.
    """
    path = os.path.join(preset_folder(name), CARD_FILE)
    try:
        with open(path) as f:
            found = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not a valid preset card (JSON): {first_line(error)}"
        ) from error
    if not isinstance(found, dict):
        raise ValueError(
            f"{path} is not a valid preset card: it holds a JSON {type(found).__name__}, "
            "not an object."
        )
    return found


def held_out_data(name):
    """``(dataset, split)`` on which preset ``name``'s card measured its held-out figure: the
    examples it ships (``check_dataset``) where its data is not on every machine."""
    folder, found = preset_folder(name), card(name)
    if "check_dataset" in found:
        return os.path.join(folder, found["check_dataset"]), found["check_split"]
    return found["dataset"], found["test_split"]


def from_preset(name):
    """Preset ``name`` as a ready Keras model, with its card as ``model.preset_card``, compiled
    with the model's own training recipe (`zoo.models.ZooModel.compile_defaults`), so that
    ``fit`` continues training it (recompile to change the recipe)."""
    folder = preset_folder(name)
    model = load_model(os.path.join(folder, MODEL_FILE), compile=False)
    model.preset_card = card(folder)
    return model


def load_model(name_or_path, compile=True):
    """The zoo model in a ``.keras`` file, or a preset's, ready to use: with the file's
    optimizer state where it holds one (``compile``), else compiled with the model's own recipe
    (`zoo.models.ZooModel.compile_defaults`).

    Raises:
      FileNotFoundError, ValueError: no such file or preset; a file that is not a ``.keras``
        archive, that Keras cannot load, or that holds a model other than a zoo model, in one
        line that says which.
    """
    import keras

    from zoo.models.contract import ZooModel

    path = checked_model_file(name_or_path)
    try:
        model = keras.saving.load_model(path, compile=compile)
    except Exception as error:  # Keras reports a damaged archive in many ways
        raise ValueError(
            f"Cannot load {path}: {type(error).__name__}: {first_line(error)}"
        ) from error
    if not isinstance(model, ZooModel):
        raise ValueError(
            f"{path} holds a {type(model).__module__.split('.')[0]} {type(model).__name__}, not "
            "a zoo model (written by `zoo train`)."
        )
    if not model.compiled:
        model.compile(**model.compile_defaults())
    return model


def checked_model_file(name_or_path):
    """`model_file`, checked to be a file and a zip archive (a ``.keras`` file's container),
    without TensorFlow.

    Raises:
      FileNotFoundError, ValueError: no such file or preset, or not a zip archive.
    """
    path = model_file(name_or_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r} (a .keras file from `zoo train`).")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a .keras file: not a zip archive (truncated or corrupt?).")
    return path


def model_file(name_or_path):
    """A ``.keras`` path as given, or the ``model.keras`` of the preset of that name."""
    path = str(name_or_path)
    if os.path.exists(path) or path.endswith(".keras") or os.path.sep in path:
        return os.path.join(path, MODEL_FILE) if _is_preset(path) else path
    return os.path.join(preset_folder(path), MODEL_FILE)
