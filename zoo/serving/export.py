"""SavedModel export in the layout TF Serving serves: ``<base>/<model_name>/<version>/``.

Every zoo model lists its signatures in ``serving_endpoints()``: an ordered mapping from
signature name to ``(function, input_signature)``, whose functions return dicts of named output
tensors. The first becomes ``serving_default`` as well. The SavedModel holds only TensorFlow ops
and the model's variables, so ``tf.saved_model.load``, ``saved_model_cli`` and
``tensorflow_model_server`` use it without this package.

Each signature checks its inputs' shapes in the graph, since TF Serving feeds a request's
tensors as they come: a client sending ``[4, 9, 9, 1]`` to a model of ``[batch, 8, 8, 1]``
images is told so, rather than getting an error from some op inside. Next to the SavedModel,
``assets.extra/`` holds ``signatures.json`` (every signature's inputs and outputs: names,
dtypes, shapes; and the model's ``export_metadata()``) and ``tf_serving_warmup_requests``: one
``PredictionLog`` per signature, which TF Serving runs when it loads the model so that the first
client request does not pay for it.

Writing is atomic: the SavedModel is written to a hidden folder next to its version folder and
renamed into place when complete (TF Serving ignores folders whose names are not integers).
"""

import json
import os
import shutil
import uuid

import keras
import tensorflow as tf

from zoo.models.checks import non_finite_variables, whole_number
from zoo.serving.warmup import WARMUP, write_warmup


def next_version(model_dir):
    """1 + the largest integer version under ``model_dir`` (1 when there is none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(n) for n in os.listdir(model_dir) if n.isdigit()]
    return max(versions, default=0) + 1


def export(model, base_dir, model_name=None, version=None, verbose=False):
    """Exports ``model``'s serving signatures; returns the version folder written.

    Args:
      model: a zoo model (`zoo.models.ZooModel`: ``serving_endpoints``, ``export_resources``,
        ``export_metadata``).
      base_dir: the TF Serving model base path's parent.
      model_name: folder name under ``base_dir``; defaults to the model's name.
      version: integer version >= 1; defaults to the next free one.

    Raises:
      FileExistsError: that version already exists (versions are immutable once served).
      ValueError: a bad version, or a model with NaN or infinite weights.
    """
    bad = non_finite_variables(model)
    if bad:
        raise ValueError(
            f"Not exporting {model.name}: {len(bad)} variables hold NaN or inf ({bad[0]}, ...)."
        )
    endpoints = model.serving_endpoints()
    model_name = model_name or model.name
    model_dir = os.path.join(base_dir, model_name)
    version = next_version(model_dir) if version is None else whole_number("version", version)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists; TF Serving versions are immutable. Pick another.")
    os.makedirs(model_dir, exist_ok=True)
    staging = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex}")
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for resource in model.export_resources():
            archive.track(resource)
        for name, (fn, specs) in endpoints.items():
            archive.add_endpoint(name, checked_inputs(name, fn, specs), input_signature=specs)
        archive.write_out(staging, verbose=verbose)
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        signatures = signature_specs(staging)
        with open(os.path.join(extra, "signatures.json"), "w") as f:
            manifest = {"model": type(model).__name__, "signatures": signatures}
            manifest["metadata"] = model.export_metadata()
            json.dump(manifest, f, indent=2)
        write_warmup(os.path.join(extra, WARMUP), model_name, signatures)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _shape_text(shape):
    return (
        "["
        + ", ".join(
            ("batch" if i == 0 else "any") if n is None else str(n) for i, n in enumerate(shape)
        )
        + "]"
    )


def checked_inputs(signature, fn, specs):
    """``fn`` whose tensors are first checked against ``specs``: the rank, every fixed size,
    and a batch (a first dimension left free) of at least one."""

    def checked(*args):
        checks = []
        for spec, value in zip(specs, args, strict=True):
            expected = spec.shape.as_list()
            message = (
                f"{signature}: input {spec.name} must be {spec.dtype.name} "
                f"{_shape_text(expected)}"
                + (" with batch >= 1" if expected and expected[0] is None else "")
                + "; got shape"
            )
            shape = tf.shape(value)
            ok = tf.equal(tf.rank(value), len(expected))
            fixed = [(i, n) for i, n in enumerate(expected) if n is not None]
            if expected:
                padded = tf.concat([shape, tf.ones([len(expected)], tf.int32)], 0)
                for i, n in fixed:
                    ok = tf.logical_and(ok, tf.equal(padded[i], n))
                if expected[0] is None:
                    ok = tf.logical_and(ok, padded[0] >= 1)
            checks.append(tf.debugging.Assert(ok, [message, shape], summarize=8))
        with tf.control_dependencies(checks):
            args = [tf.identity(a) for a in args]
        return fn(*args)

    return checked


def signature_specs(path):
    """``{signature: {"inputs": {key: {"dtype", "shape"}}, "outputs": {...}}}`` as the
    SavedModel at ``path`` declares them to TF Serving (-1: any size)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    graph = next(m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags)

    def specs(tensors):
        return {
            key: {
                "dtype": tf.dtypes.as_dtype(info.dtype).name,
                "shape": [int(d.size) for d in info.tensor_shape.dim],
            }
            for key, info in sorted(tensors.items())
        }

    return {
        name: {"inputs": specs(sig.inputs), "outputs": specs(sig.outputs)}
        for name, sig in sorted(graph.signature_def.items())
        if not name.startswith("__")
    }
