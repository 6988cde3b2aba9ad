"""TF Serving's warmup records (``assets.extra/tf_serving_warmup_requests``): one small valid
``PredictionLog`` per signature, which the server runs when it loads a model, so that the first
client request does not pay for it."""

import numpy as np
import tensorflow as tf

WARMUP = "tf_serving_warmup_requests"


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
