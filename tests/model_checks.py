"""The checks every zoo model runs the same way (keras-hub's ``TestCase`` in spirit).

``ModelChecks`` is given a factory ``make(**overrides)`` for a small instance of the model, one
batch of data in the model's ``data_spec`` form, and ``outputs(model, batch)``: the model's
deterministic outputs to compare (e.g. log-probs, reconstructions). Each ``check_*`` method is
one property; ``run_all`` runs them all.
"""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.checks import assert_config_round_trip, count_traces
from tests.serving import Servable
from zoo.serving import export

# Runs in a fresh interpreter from an empty folder: loads the SavedModel with TensorFlow alone
# and calls each signature on the inputs saved for it.
# Loads exports in a process that never imports tfflows, zoo or TFP, as a serving binary
# would: one such process per test worker, started on first use and kept (importing
# TensorFlow once instead of once per model saves about 5 s a model). A request is one JSON
# line ``[path, inputs_file, out]``; the answer one line ``answer:`` + JSON, "ok" or the
# error's traceback.
_LOADER = textwrap.dedent(
    """
    import json, sys, traceback
    import numpy as np
    import tensorflow as tf

    def load(path, inputs_file, out):
        loaded = tf.saved_model.load(path)
        arrays = dict(np.load(inputs_file))
        results = {}
        for name in json.loads(arrays.pop("__signatures__").tobytes()):
            prefix = name + "/"
            kwargs = {k[len(prefix):]: tf.constant(v) for k, v in arrays.items()
                      if k.startswith(prefix)}
            for key, value in loaded.signatures[name](**kwargs).items():
                results[prefix + key] = value.numpy()
        ours = [m for m in sys.modules
                if m.split(".")[0] in ("tfflows", "zoo", "tensorflow_probability")]
        assert not ours, ours
        np.savez(out, **results)

    for line in sys.stdin:
        try:
            load(*json.loads(line))
            answer = "ok"
        except BaseException:
            answer = traceback.format_exc()
        print("answer:" + json.dumps(answer), flush=True)
    """
)
_loader = None


def _load_in_fresh_process(path, inputs_file, out):
    """Runs `_LOADER` on an export; returns "ok" or the traceback."""
    global _loader
    if _loader is None or _loader.poll() is not None:
        _loader = subprocess.Popen(
            [sys.executable, "-c", _LOADER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""},
            cwd="/",
        )
    _loader.stdin.write(json.dumps([path, inputs_file, out]) + "\n")
    _loader.stdin.flush()
    for line in _loader.stdout:  # anything else TensorFlow prints on stdout is skipped
        if line.startswith("answer:"):
            return json.loads(line[len("answer:") :])
    return f"the loader exited with status {_loader.wait()}"


def _numpy(outputs):
    return {k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in outputs.items()}


def _first_input(batch):
    return batch[0] if isinstance(batch, tuple) else batch


def _optimizers(model):
    return [v for v in vars(model).values() if isinstance(v, keras.optimizers.Optimizer)]


def _state(model):
    """Every variable a train step may change: the model's and its optimizers' (a loss-scale
    optimizer's own scale is left out: lowering it is how it answers an overflow; so are random
    number generators' states)."""
    variables = [v for v in model.variables if "seed_generator" not in v.path]
    for optimizer in _optimizers(model):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = optimizer.inner_optimizer
        variables += optimizer.variables
    return variables


def _with_nan(batch):
    """``batch`` with a NaN in its first example's first input."""
    images = np.array(_first_input(batch), dtype=np.float32)
    images.reshape(len(images), -1)[0, 0] = np.nan
    return (images, *batch[1:]) if isinstance(batch, tuple) else images


class _SnapshotEachBatch(keras.callbacks.Callback):
    """Every variable a step may change, and the epoch's running ``skipped_steps``, after each
    batch."""

    def on_train_begin(self, logs=None):
        self.states, self.skipped = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.states.append([np.array(v.numpy()) for v in _state(self.model)])
        self.skipped.append(float(logs["skipped_steps"]))


def _clean_step(model, batch, limit=16):
    """Fits clean ``batch`` until a step is applied; returns how many were skipped first. A
    float16 loss scale starts at 2^15 and halves on each overflowing step, so a float16 model's
    first steps may be skipped: how many depends on its weights and on the CPU's float16
    arithmetic (AVX512-FP16 or emulated), not on the model being wrong."""
    for skipped in range(limit):
        history = model.fit(tf.data.Dataset.from_tensors(batch), verbose=0, shuffle=False)
        if history.history["skipped_steps"] == [0.0]:
            return skipped
    raise AssertionError(f"{limit} clean steps in a row were skipped")


def _compute_dtypes(model):
    return {layer.compute_dtype for layer in model._flatten_layers(include_self=False)}


class ModelChecks:
    """Args:
    make: ``make(**overrides) -> model`` (uncompiled; overrides include ``dtype=``).
    batch: one batch as the model's ``fit`` receives it.
    outputs: ``outputs(model, batch) -> dict`` of deterministic outputs (inference mode).
    signature_inputs: ``signature_inputs(model, batch) -> {signature: {input: array}}`` for
      the export check; by default every signature whose inputs are all named ``images`` gets
      the batch's images.
    atol: tolerance of the mixed-precision and export comparisons.
    seed: the global seed each compiled instance is built under, so that no check depends on
      the tests that ran before it.
    """

    def __init__(self, make, batch, outputs, signature_inputs=None, atol=1e-4, seed=0):
        self.seed = seed
        self.make = make
        self.batch = batch
        self.outputs = outputs
        self.signature_inputs = signature_inputs or self._image_signature_inputs
        self.atol = atol

    def _compiled(self, eager=False, **overrides):
        """A compiled instance, its weights drawn from seed ``seed`` (whatever ran before); its
        input checks off where it has them, so that the same (traced) model can then take a NaN
        batch in `check_non_finite_step_is_skipped`. ``eager``: its steps run eagerly."""
        keras.utils.set_random_seed(self.seed)
        if "validate_args" in self.make().get_config():
            overrides.setdefault("validate_args", False)
        model = self.make(**overrides)
        model.compile(**model.compile_defaults(), run_eagerly=eager)
        return model

    def _image_signature_inputs(self, model, batch):
        images = np.asarray(_first_input(batch))
        return {
            name: {"images": images}
            for name, (_, specs) in model.serving_endpoints().items()
            if [s.name for s in specs] == ["images"]
        }

    def check_config_round_trip(self):
        assert_config_round_trip(self.make(), lambda model: model.count_params())

    def check_fit_step_changes_weights(self):
        """One ``fit`` step changes weights, and its step was traced once: the optimizer was
        built before the trace (`tfflows.build_optimizer`), not in it (two traces)."""
        model = self._compiled()
        before = [w.numpy().copy() for w in model.trainable_weights]
        traces = count_traces(model)
        history = model.fit(
            tf.data.Dataset.from_tensors(self.batch), epochs=1, verbose=0, shuffle=False
        )
        del model.train_step
        assert len(traces) == 1, f"the train step was traced {len(traces)} times"
        logs = {k: v[-1] for k, v in history.history.items()}
        assert logs and all(np.isfinite(v) for v in logs.values()), logs
        changed = [
            not np.array_equal(w.numpy(), b)
            for w, b in zip(model.trainable_weights, before, strict=True)
        ]
        assert any(changed), "one fit step changed no weight"
        return model

    def check_non_finite_step_is_skipped(self, model):
        """On ``model`` (compiled, input checks off): a batch with a NaN is skipped: no
        variable of the model or its optimizers changes, it is counted once, the epoch's
        figures stay finite, and the model trains on afterwards. Under float16 a clean step may
        overflow and be skipped too (see `_clean_step`): the count that must rise by one is the
        NaN batch's own."""
        _clean_step(model, self.batch)
        snapshot = _SnapshotEachBatch()
        data = tf.data.Dataset.from_tensors(self.batch).concatenate(
            tf.data.Dataset.from_tensors(_with_nan(self.batch))
        )
        history = model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[snapshot])
        assert snapshot.skipped[1] - snapshot.skipped[0] == 1.0, history.history
        for first, second, v in zip(*snapshot.states, _state(model), strict=True):
            np.testing.assert_array_equal(second, first, err_msg=v.path)
        assert all(np.isfinite(v[-1]) for v in history.history.values()), history.history
        before = [np.array(v.numpy()) for v in model.trainable_variables]
        _clean_step(model, self.batch)
        after = [v.numpy() for v in model.trainable_variables]
        assert not before or any(
            not np.array_equal(a, b) for a, b in zip(after, before, strict=True)
        )

    def check_failed_fit_leaves_model_usable(self, model):
        """A ``fit`` and an ``evaluate`` that fail on a batch of the wrong rank leave ``model``
        (compiled) able to evaluate and train."""
        images = np.asarray(_first_input(self.batch))[..., None]
        wrong = (images, *self.batch[1:]) if isinstance(self.batch, tuple) else images
        for call in (model.fit, model.evaluate):
            try:
                call(tf.data.Dataset.from_tensors(wrong), verbose=0)
            except Exception:
                continue
            raise AssertionError(f"{call.__name__} accepted images of rank 5")
        model.evaluate(tf.data.Dataset.from_tensors(self.batch), verbose=0)
        before = [np.array(v.numpy()) for v in model.trainable_variables]
        history = model.fit(tf.data.Dataset.from_tensors(self.batch), verbose=0)
        assert all(np.isfinite(v[-1]) for v in history.history.values()), history.history
        after = [v.numpy() for v in model.trainable_variables]
        assert not before or any(
            not np.array_equal(a, b) for a, b in zip(after, before, strict=True)
        )

    def check_keras_reload(self, tmp_path, model=None):
        model = model or self.check_fit_step_changes_weights()
        path = os.path.join(str(tmp_path), "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
        expected, got = (
            _numpy(self.outputs(model, self.batch)),
            _numpy(self.outputs(loaded, self.batch)),
        )
        assert expected.keys() == got.keys()
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)

    def check_precision(self, policy):
        """``dtype=policy`` on the instance: kept in the config, used by the layers, trains
        to finite figures whose outputs stay close to float32 ones; float16 scales the loss.
        bfloat16 steps run eagerly (tracing a step costs a big model 5x more than running it;
        the float32 and float16 checks trace theirs, the loss scale's conditionals included)."""
        model = self._compiled(dtype=policy, eager=policy == "mixed_bfloat16")
        assert model.dtype_policy.name == policy
        compute = "float16" if policy == "mixed_float16" else "bfloat16"
        assert compute in _compute_dtypes(model), _compute_dtypes(model)
        assert type(model).from_config(model.get_config()).dtype_policy.name == policy
        if policy == "mixed_float16":
            optimizers = _optimizers(model)
            assert optimizers and all(
                isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers
            ), optimizers
        history = model.fit(
            tf.data.Dataset.from_tensors(self.batch), epochs=1, verbose=0, shuffle=False
        )
        assert all(np.isfinite(v[-1]) for v in history.history.values()), history.history
        reference = self.make(dtype="float32")
        reference.set_weights(model.get_weights())
        low, full = (
            _numpy(self.outputs(model, self.batch)),
            _numpy(self.outputs(reference, self.batch)),
        )
        for key in full:
            assert np.all(np.isfinite(low[key])), key
            scale = np.max(np.abs(full[key])) + 1.0
            assert np.max(np.abs(low[key] - full[key])) < 0.05 * scale, key
        return model

    def check_export_in_fresh_process(self, tmp_path):
        model = self.make()
        base = os.path.join(str(tmp_path), "serving")
        path = export.export(model, base, model_name="m")
        inputs = self.signature_inputs(model, self.batch)
        endpoints = model.serving_endpoints()
        assert set(inputs) <= set(endpoints), (set(inputs), set(endpoints))
        expected = {}
        arrays = {"__signatures__": np.frombuffer(json.dumps(sorted(inputs)).encode(), np.uint8)}
        for name, kwargs in inputs.items():
            fn, _ = endpoints[name]
            out = fn(**{k: tf.constant(v) for k, v in kwargs.items()})
            expected.update({f"{name}/{k}": v for k, v in _numpy(out).items()})
            arrays.update({f"{name}/{k}": np.asarray(v) for k, v in kwargs.items()})
        inputs_file = os.path.join(str(tmp_path), "inputs.npz")
        np.savez(inputs_file, **arrays)
        out = os.path.join(str(tmp_path), "out.npz")
        answer = _load_in_fresh_process(os.path.abspath(path), inputs_file, out)
        assert answer == "ok", answer[-3000:]
        got = dict(np.load(out))
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=self.atol, err_msg=key)
        self.check_served_like_tf_serving(path, inputs, expected)
        return path

    def check_served_like_tf_serving(self, path, inputs, expected):
        """The export as TF Serving serves it (`tests.serving`): it loads and warms up, declares
        its signatures in ``signatures.json`` as the SavedModel does, answers gRPC and REST
        (row and columnar) requests as the model does, and names the expected shape when a
        client sends another."""
        servable = Servable(path)
        with open(os.path.join(path, "assets.extra", "signatures.json")) as f:
            declared = json.load(f)["signatures"]
        assert declared == export.signature_specs(path)
        assert set(declared) == set(servable.signatures) and servable.warmed_up == len(declared)

        def close(got, want, key):
            got = np.asarray(got, dtype=np.asarray(want).dtype)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=self.atol, err_msg=key)

        for name, kwargs in inputs.items():
            want = {k[len(name) + 1 :]: v for k, v in expected.items() if k.startswith(name + "/")}
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = name
            for key, value in kwargs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            response = servable.predict(request)
            assert set(response.outputs) == set(want) == set(declared[name]["outputs"])
            for key, value in want.items():
                close(tf.make_ndarray(response.outputs[key]), value, f"grpc {name}/{key}")
            columns = {k: np.asarray(v).tolist() for k, v in kwargs.items()}
            answer = servable.rest({"signature_name": name, "inputs": columns})
            outputs = answer["outputs"] if len(want) > 1 else {next(iter(want)): answer["outputs"]}
            for key, value in want.items():
                close(outputs[key], value, f"rest columns {name}/{key}")
            if (
                all(np.ndim(v) >= 1 for v in kwargs.values())
                and len({len(v) for v in kwargs.values()}) == 1
            ):
                n = len(next(iter(kwargs.values())))
                rows = [{k: np.asarray(v)[i].tolist() for k, v in kwargs.items()} for i in range(n)]
                answer = servable.rest({"signature_name": name, "instances": rows})
                assert "predictions" in answer, answer
                for key, value in want.items():
                    got = [p[key] if len(want) > 1 else p for p in answer["predictions"]]
                    close(got, value, f"rest rows {name}/{key}")
            for key in kwargs:
                spec = declared[name]["inputs"][key]["shape"]
                if len(spec) == 4 and spec[1] > 0:  # an image batch of fixed size
                    wrong = np.zeros((2, spec[1] + 1, spec[2] + 1, spec[3]), np.float32)
                    answer = servable.rest(
                        {"signature_name": name, "inputs": {**columns, key: wrong.tolist()}}
                    )
                    shape = ", ".join(map(str, spec[1:]))
                    assert f"input {key} must be float32 [batch, {shape}]" in answer.get(
                        "error", ""
                    ), answer

    def run_all(self, tmp_path):
        self.check_config_round_trip()
        trained = self.check_fit_step_changes_weights()
        self.check_non_finite_step_is_skipped(trained)
        self.check_failed_fit_leaves_model_usable(trained)
        self.check_keras_reload(tmp_path, trained)
        self.check_precision("mixed_bfloat16")
        self.check_non_finite_step_is_skipped(self.check_precision("mixed_float16"))
        self.check_export_in_fresh_process(tmp_path)
