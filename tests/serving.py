# ruff: noqa: E501  (TF Serving's messages are quoted whole)
"""TF Serving's Predict path, emulated without its binary (which cannot be installed here).

`Servable` loads an export the way TF Serving's C++ ``SavedModelBundle`` does: graph mode, tag
``serve``, variables restored and the init op run (``tf.compat.v1.saved_model.loader.load``); it
then runs the warmup records, any failure of which fails the load. `Servable.predict` takes a
gRPC ``PredictRequest`` (``tensorflow-serving-api``) and answers as ``predict_util.cc`` does:
the signature by name (``serving_default`` when none), request inputs matching the signature's
keys exactly, tensors fed and fetched by the tensor names in the ``SignatureDef``, an optional
``output_filter``. `Servable.rest` takes a REST ``:predict`` body and answers as
``json_tensor.cc`` does: ``instances`` (row format) or ``inputs`` (columnar), with
``predictions`` or ``outputs`` in the answer and ``{"error": ...}`` on a bad request. The error
texts are TF Serving's (tensorflow/serving at 9d981c5).
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

MAX_WARMUP_RECORDS = 1000


class ServingError(Exception):
    """A request TF Serving would refuse; ``code`` is its gRPC status name."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _braces(names):
    return "{" + ",".join(sorted(names)) + "}"


class Servable:
    def __init__(self, path, name="model"):
        self.name = name
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        self._callables = {}
        meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        self.signatures = {
            key: value
            for key, value in meta_graph.signature_def.items()
            if not key.startswith("__")  # __saved_model_init_op
        }
        self.warmed_up = self._warm_up(
            os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
        )

    def _warm_up(self, path):
        if not os.path.exists(path):
            return 0
        count = 0
        for record in tf.compat.v1.io.tf_record_iterator(path):
            log = prediction_log_pb2.PredictionLog.FromString(record)
            self.predict(log.predict_log.request)
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}",
                )
        return count

    def predict(self, request):
        """A ``PredictResponse`` for the gRPC ``PredictRequest`` ``request``."""
        name = request.model_spec.signature_name or "serving_default"
        if name not in self.signatures:
            raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        signature = self.signatures[name]
        sent, wanted = set(request.inputs), set(signature.inputs)
        if len(sent) != len(wanted):
            raise ServingError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({_braces(sent)}) != len({_braces(wanted)}). Sent extra: "
                f"{_braces(sent - wanted)}. Missing but required: {_braces(wanted - sent)}.",
            )
        if sent != wanted:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Inputs contains invalid name. Used request inputs: {_braces(sent)}, "
                f"request input: {_braces(sent - wanted)}",
            )
        outputs = list(request.output_filter) or sorted(signature.outputs)
        for alias in outputs:
            if alias not in signature.outputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"output tensor alias not found in signature: {alias} Outputs expected to be "
                    f"in the set {_braces(signature.outputs)}.",
                )
        keys = sorted(sent)
        # Session.run and make_callable check the fed shapes against the placeholders' in
        # Python; TF Serving's C++ Session::Run does not, nor does a callable made from options.
        feed = tuple(signature.inputs[key].name for key in keys)
        fetch = tuple(signature.outputs[alias].name for alias in outputs)
        # One callable per feeds and fetches, made once, as the C++ Session caches one executor.
        run = self._callables.get((feed, fetch))
        if run is None:
            options = config_pb2.CallableOptions(feed=feed, fetch=fetch)
            run = self._callables[feed, fetch] = self.session._make_callable_from_options(options)
        try:
            values = run(*[tf.make_ndarray(request.inputs[key]) for key in keys])
            results = dict(zip(outputs, values, strict=True))
        except tf.errors.OpError as error:
            raise ServingError(type(error).__name__, error.message) from error
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name or self.name
        response.model_spec.signature_name = name
        for alias, value in results.items():
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
        return response

    # REST

    def rest(self, body):
        """The JSON answer (a dict) to the REST ``:predict`` body ``body`` (a parsed dict)."""
        try:
            return self._rest(body)
        except ServingError as error:
            return {"error": str(error)}

    def _rest(self, body):
        name = body.get("signature_name", "") or "serving_default"
        if not isinstance(name, str):
            raise ServingError("INVALID_ARGUMENT", "'signature_name' key must be a string value.")
        if "instances" in body and "inputs" in body:
            raise ServingError(
                "INVALID_ARGUMENT",
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
            )
        if "instances" not in body and "inputs" not in body:
            raise ServingError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
        if name not in self.signatures:
            raise ServingError(
                "INVALID_ARGUMENT", f'Serving signature name: "{name}" not found in signature def'
            )
        signature = self.signatures[name]
        keys = sorted(signature.inputs)
        row = "instances" in body
        columns = (
            self._rows(body["instances"], keys) if row else self._columns(body["inputs"], keys)
        )
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.name
        request.model_spec.signature_name = name
        for key, value in columns.items():
            dtype = tf.dtypes.as_dtype(signature.inputs[key].dtype)
            request.inputs[key].CopyFrom(tf.make_tensor_proto(_typed(value, dtype)))
        response = self.predict(request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        if not row:
            values = {k: v.tolist() for k, v in outputs.items()}
            return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
        sizes = {}
        for alias, value in outputs.items():
            if value.ndim == 0:
                raise ServingError(
                    "INVALID_ARGUMENT", f"Tensor name: {alias} has no shape information "
                )
            sizes[alias] = len(value)
        first = next(iter(sizes.values()))
        for alias, size in sizes.items():
            if size != first:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Tensor name: {alias} has inconsistent batch size: {size} expecting: {first}",
                )
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        return {
            "predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(first)]
        }

    @staticmethod
    def _rows(instances, keys):
        if not isinstance(instances, list):
            raise ServingError("INVALID_ARGUMENT", "Expecting 'instances' to be an list/array")
        if not instances:
            raise ServingError("INVALID_ARGUMENT", "No values in 'instances' array")
        named = isinstance(instances[0], dict)
        if len(keys) > 1 and not named:
            raise ServingError(
                "INVALID_ARGUMENT",
                "instances is a plain list, but expecting list of objects as multiple input "
                "tensors required as per tensorinfo_map",
            )
        if not named:
            for i, item in enumerate(instances):
                if isinstance(item, dict):
                    raise ServingError(
                        "INVALID_ARGUMENT",
                        f"Expecting value/list but got object at item {i} of input list",
                    )
            return {keys[0]: _array(instances)}
        for i, item in enumerate(instances):
            if not isinstance(item, dict):
                raise ServingError(
                    "INVALID_ARGUMENT", f"Expecting object but got list at item {i} of input list"
                )
            for key in item:
                if key not in keys:
                    raise ServingError(
                        "INVALID_ARGUMENT",
                        f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
                        f"INVALID_ARGUMENT: JSON object: does not have named input: {key}",
                    )
            if sorted(item) != keys:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Failed to process element: {i} of 'instances' list. JSON object: {item} "
                    f"keys must be equal to: {','.join(keys)}",
                )
        return {key: _array([item[key] for item in instances]) for key in keys}

    @staticmethod
    def _columns(inputs, keys):
        if not isinstance(inputs, dict):
            if len(keys) > 1:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    "inputs is a plain value/list, but expecting an object as multiple input "
                    "tensors required as per tensorinfo_map",
                )
            return {keys[0]: _array(inputs)}
        for key in keys:
            if key not in inputs:
                raise ServingError(
                    "INVALID_ARGUMENT", f"Missing named input: {key} in 'inputs' object."
                )
        return {key: _array(inputs[key]) for key in keys}  # other keys are ignored


def _array(value):
    try:
        return np.array(value)
    except ValueError as error:  # ragged lists
        raise ServingError(
            "INVALID_ARGUMENT", f"Encountered list at unexpected size: {error}"
        ) from error


def _typed(value, dtype):
    """``value`` as ``dtype``, refusing what rapidjson would: a non-integer for an integer."""
    if dtype.is_integer and value.size and value.dtype.kind not in "iub":
        bad = value.reshape(-1)[0]
        raise ServingError(
            "INVALID_ARGUMENT",
            f"JSON Value: {bad} Type: Number is not of expected type: {dtype.name}",
        )
    return value.astype(dtype.as_numpy_dtype)
