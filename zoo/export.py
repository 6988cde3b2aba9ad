"""SavedModel export in the layout TF Serving serves: ``<base>/<model_name>/<version>/``.

Every zoo model lists its signatures in ``serving_endpoints()``: an ordered mapping from
signature name to ``(function, input_signature)``, whose functions return dicts of named output
tensors. The first becomes ``serving_default`` as well. The SavedModel holds only TensorFlow ops
and the model's variables, so ``tf.saved_model.load``, ``saved_model_cli`` and
``tensorflow_model_server`` use it without this package.

Writing is atomic: the SavedModel is written to a hidden folder next to its version folder and
renamed into place when complete (TF Serving ignores folders whose names are not integers).
"""

import json
import os
import shutil
import uuid

import keras


def next_version(model_dir):
    """1 + the largest integer version under ``model_dir`` (1 when there is none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(n) for n in os.listdir(model_dir) if n.isdigit()]
    return max(versions, default=0) + 1


def export(model, base_dir, model_name=None, version=None, verbose=False):
    """Exports ``model``'s serving signatures; returns the version folder written.

    Args:
      model: a zoo model (anything with ``serving_endpoints()``).
      base_dir: the TF Serving model base path's parent.
      model_name: folder name under ``base_dir``; defaults to the model's name.
      version: integer version; defaults to the next free one.

    Raises:
      FileExistsError: that version already exists (versions are immutable once served).
    """
    endpoints = model.serving_endpoints()
    model_dir = os.path.join(base_dir, model_name or model.name)
    version = next_version(model_dir) if version is None else int(version)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists; TF Serving versions are immutable. Pick another.")
    os.makedirs(model_dir, exist_ok=True)
    staging = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex}")
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for resource in getattr(model, "export_resources", list)():
            archive.track(resource)
        for name, (fn, input_signature) in endpoints.items():
            archive.add_endpoint(name, fn, input_signature=input_signature)
        archive.write_out(staging, verbose=verbose)
        signatures = {
            name: [spec.name for spec in spec_list] for name, (_, spec_list) in endpoints.items()
        }
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, "signatures.json"), "w") as f:
            manifest = {"model": type(model).__name__, "inputs": signatures}
            manifest["metadata"] = getattr(model, "export_metadata", dict)()
            json.dump(manifest, f, indent=2)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
