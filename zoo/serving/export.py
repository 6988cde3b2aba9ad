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

``jit_compile=True`` compiles each signature's computation with XLA (its input checks stay
outside, as XLA drops asserts). On CPU this pays for some flows and costs others
(docs/results.md, bench/inference.py): the flat RealNVP scores twice as fast, the IAF's
sequential scoring 1.4x, the spline flow 1.3x; Glow at batch 256 is slower. So it is off by
default, and the export refuses a model whose signatures do not compile, before writing
anything. TF
Serving runs such a SavedModel on CPU only when started with
``--xla_cpu_compilation_enabled=true`` (its default refuses XLA there); ``signatures.json``
says ``"jit_compile": true``.

Writing is atomic: the SavedModel is written to a hidden folder next to its version folder,
``.tmp-<version>-<host>-<pid>-<uuid>``, and renamed into place when complete (TF Serving ignores
folders whose names are not integers). Two exports racing for the next free version both
succeed, the later one taking the version after. Each export removes the staging folders that
killed exports left: those of processes no longer alive on this host, and those of the older
``.tmp-<version>-<uuid>`` form an hour old or more.
"""

import errno
import json
import os
import re
import shutil
import socket
import time
import uuid

import keras
import tensorflow as tf

from zoo.models.checks import non_finite_variables, whole_number
from zoo.serving.warmup import WARMUP, example_inputs, write_warmup
from zoo.storage import writing

_STAGING = re.compile(r"^\.tmp-\d+-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{32}$")
_OLD_STAGING = re.compile(r"^\.tmp-\d+-[0-9a-f]{32}$")
#: Age after which a staging folder that names no process (the older form) is abandoned.
OLD_STAGING_AGE = 3600.0


def next_version(model_dir):
    """1 + the largest integer version under ``model_dir`` (1 when there is none)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(n) for n in os.listdir(model_dir) if n.isdigit()]
    return max(versions, default=0) + 1


def export(model, base_dir, model_name=None, version=None, verbose=False, jit_compile=False):
    """Exports ``model``'s serving signatures; returns the version folder written.

    Args:
      model: a zoo model (`zoo.models.ZooModel`: ``serving_endpoints``, ``export_resources``,
        ``export_metadata``).
      base_dir: the TF Serving model base path's parent.
      model_name: folder name under ``base_dir``; defaults to the model's name.
      version: integer version >= 1; defaults to the next free one.
      jit_compile: compile each signature with XLA (see the module docstring).

    Raises:
      FileExistsError: that version already exists (versions are immutable once served).
      ValueError: a bad version, a model with NaN or infinite weights, or (``jit_compile``) a
        signature that XLA cannot compile.
      zoo.storage.WriteFailed: the file system refused (full, read-only), naming the version
        folder meant; nothing was exported and no staging folder is left.
    """
    bad = non_finite_variables(model)
    if bad:
        raise ValueError(
            f"Not exporting {model.name}: {len(bad)} variables hold NaN or inf ({bad[0]}, ...)."
        )
    endpoints = model.serving_endpoints()
    if jit_compile:
        endpoints = _jit_compiled(endpoints)
    model_name = model_name or model.name
    model_dir = os.path.join(base_dir, model_name)
    picked = version is None
    version = next_version(model_dir) if picked else whole_number("version", version)
    final = os.path.join(model_dir, str(version))
    if not picked and os.path.exists(final):
        raise FileExistsError(_exists(final))
    with writing(model_dir, "nothing was exported"):
        os.makedirs(model_dir, exist_ok=True)
        remove_stale_staging(model_dir)
    host, pid = socket.gethostname(), os.getpid()
    staging = os.path.join(model_dir, f".tmp-{version}-{host}-{pid}-{uuid.uuid4().hex}")
    try:
        with writing(final, "nothing was exported"):
            _write(model, endpoints, staging, model_name, verbose, jit_compile)
        final = _publish(staging, model_dir, version, picked)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _jit_compiled(endpoints):
    """``endpoints`` with each function XLA-compiled, each tried once on a small valid input
    (`warmup.example_inputs`): a ValueError names the first that does not compile."""
    compiled = {}
    for name, (fn, specs) in endpoints.items():
        xla = tf.function(fn, jit_compile=True, autograph=False)
        inputs = example_inputs(
            {s.name: {"shape": _shape_list(s), "dtype": s.dtype.name} for s in specs}
        )
        try:
            xla(*(tf.constant(inputs[s.name]) for s in specs))
        except (tf.errors.OpError, ValueError, TypeError) as error:
            raise ValueError(
                f"Not exporting with --jit-compile: XLA cannot compile {name} "
                f"({_xla_complaint(str(error))})."
            ) from None
        compiled[name] = (xla, specs)
    return compiled


def _xla_complaint(message):
    """The ops XLA has no kernel for, from its error message, or the message's first line."""
    found = re.search(r"on XLA_\w+: ([^\n]*)", message)
    if found:
        ops = sorted(set(re.findall(r"\b([A-Z]\w+) \(No registered", found.group(1))))
        if ops:
            return "no XLA kernel for " + ", ".join(ops)
    return message.strip().splitlines()[0][:200]


def _shape_list(spec):
    return [-1 if n is None else n for n in spec.shape.as_list()]


def _write(model, endpoints, staging, model_name, verbose, jit_compile=False):
    """The SavedModel and its ``assets.extra`` into the folder ``staging``."""
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
        if jit_compile:
            manifest["jit_compile"] = True
        manifest["metadata"] = model.export_metadata()
        json.dump(manifest, f, indent=2)
    write_warmup(os.path.join(extra, WARMUP), model_name, signatures)


def _exists(final):
    return (
        f"{final} exists; TF Serving versions are immutable: choose another --version, or leave "
        "it out for the next free one."
    )


def _publish(staging, model_dir, version, picked):
    """Renames ``staging`` to version ``version`` under ``model_dir``; returns the folder. A
    version another export took meanwhile: FileExistsError if it was asked for (``picked``
    False), else the next free one."""
    while True:
        final = os.path.join(model_dir, str(version))
        try:
            os.rename(staging, final)  # fails on a non-empty folder: another export's
            return final
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            if not picked:
                raise FileExistsError(_exists(final)) from error
        version = max(version + 1, next_version(model_dir))


def remove_stale_staging(model_dir):
    """Removes the staging folders under ``model_dir`` that killed exports left: those of a
    process no longer alive on this host, and those of the older form (no host or pid) at
    least `OLD_STAGING_AGE` seconds old. Another host's, and a live process's, stay."""
    host = socket.gethostname()
    for name in os.listdir(model_dir):
        path = os.path.join(model_dir, name)
        match = _STAGING.match(name)
        if match:
            stale = match["host"] == host and not _alive(int(match["pid"]))
        elif _OLD_STAGING.match(name):
            try:
                stale = time.time() - os.path.getmtime(path) >= OLD_STAGING_AGE
            except OSError:  # removed meanwhile
                continue
        else:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid):
    """Whether process ``pid`` exists on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
    a batch (a first dimension left free) of at least one, and, for floating-point inputs,
    finite values (a NaN latent would otherwise surface as some inner layer's error)."""

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
            shape_check = tf.debugging.Assert(ok, [message, shape], summarize=8)
            checks.append(shape_check)
            if spec.dtype.is_floating:
                with tf.control_dependencies([shape_check]):  # the shape's error first
                    finite = tf.reduce_all(tf.math.is_finite(value))
                    checks.append(
                        tf.debugging.Assert(
                            finite,
                            [f"{signature}: input {spec.name} must be finite; got NaN or inf"],
                        )
                    )
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
