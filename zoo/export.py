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
import numpy as np
import tensorflow as tf

WARMUP = "tf_serving_warmup_requests"


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
      version: integer version >= 1; defaults to the next free one.

    Raises:
      FileExistsError: that version already exists (versions are immutable once served).
      ValueError: a bad version, or a model with NaN or infinite weights.
    """
    from zoo.base import whole_number
    from zoo.callbacks import non_finite_variables

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
        for resource in getattr(model, "export_resources", list)():
            archive.track(resource)
        for name, (fn, specs) in endpoints.items():
            archive.add_endpoint(name, checked_inputs(name, fn, specs), input_signature=specs)
        archive.write_out(staging, verbose=verbose)
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        signatures = signature_specs(staging)
        with open(os.path.join(extra, "signatures.json"), "w") as f:
            manifest = {"model": type(model).__name__, "signatures": signatures}
            manifest["metadata"] = getattr(model, "export_metadata", dict)()
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


def example_inputs(inputs):
    """One small valid request for inputs described as in `signature_specs`: batch and free
    sizes 1; floats 0.5 (inside ``[0, 1]`` images), integers 0."""
    arrays = {}
    for key, spec in inputs.items():
        shape = [1 if n < 0 else n for n in spec["shape"]]
        dtype = np.dtype(tf.dtypes.as_dtype(spec["dtype"]).as_numpy_dtype)
        arrays[key] = np.full(shape, 0.5 if dtype.kind == "f" else 0, dtype)
    return arrays


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _message(number, payload):
    """A length-delimited protobuf field: tag, length, bytes."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(model_name, signature, arrays):
    """A serialized ``tensorflow.serving.PredictionLog`` holding a ``PredictRequest`` for
    ``signature`` with ``arrays`` as its inputs.

    Encoded by hand (PredictionLog.predict_log = 6, PredictLog.request = 1,
    PredictRequest.model_spec = 1 / inputs = 2, ModelSpec.name = 1 / signature_name = 3, map
    entries key = 1 / value = 2) so that exporting needs no ``tensorflow-serving-api``; the
    tests parse it with that package's classes.
    """
    spec = _message(1, model_name.encode()) + _message(3, signature.encode())
    inputs = b"".join(
        _message(
            2,
            _message(1, key.encode())
            + _message(2, tf.make_tensor_proto(value).SerializeToString()),
        )
        for key, value in sorted(arrays.items())
    )
    return _message(6, _message(1, _message(1, spec) + inputs))


def write_warmup(path, model_name, signatures):
    """``assets.extra/tf_serving_warmup_requests``: a TFRecord file of one `prediction_log` per
    signature, on `example_inputs`."""
    with tf.io.TFRecordWriter(path) as writer:
        for name, sig in signatures.items():
            writer.write(prediction_log(model_name, name, example_inputs(sig["inputs"])))
