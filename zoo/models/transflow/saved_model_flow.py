"""Flows Transflow can build on without their code: an exported SavedModel (`SavedModelFlow`),
or a ``.keras`` file (`load_flow`)."""

import json
import os

import keras
import tensorflow as tf


class SavedModelFlow(tf.Module):
    """A flow exported by `zoo.serving.export` (``encode`` / ``decode`` signatures) used as a flow.

    Its base distribution comes from the export's ``assets.extra/signatures.json``, else
    ``"normal"``.
    """

    def __init__(self, path):
        super().__init__(name="saved_model_flow")
        if not os.path.exists(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(f"No SavedModel at {path!r} (no saved_model.pb).")
        self.path = os.path.abspath(path)
        self.loaded = tf.saved_model.load(path)
        missing = {"encode", "decode"} - set(self.loaded.signatures)
        if missing:
            raise ValueError(f"The SavedModel at {path} is not a flow: no {sorted(missing)}.")
        encode, decode = self.loaded.signatures["encode"], self.loaded.signatures["decode"]
        if set(encode.structured_input_signature[1]) != {"images"}:
            raise ValueError(
                f"The SavedModel at {path} is a class-conditional flow (its encode takes "
                f"{sorted(encode.structured_input_signature[1])}): Transflow builds on an "
                "unconditional one."
            )
        self.image_shape = tuple(
            next(iter(encode.structured_input_signature[1].values())).shape[1:]
        )
        self.latent_shape = tuple(
            next(iter(decode.structured_input_signature[1].values())).shape[1:]
        )
        self.base_distribution = _base_of_export(path)

    def encode(self, x):
        return self.loaded.signatures["encode"](images=tf.cast(x, tf.float32))["z"]

    def decode(self, z):
        return self.loaded.signatures["decode"](z=tf.cast(z, tf.float32))["images"]

    def decode_with_log_det(self, z):
        out = self.loaded.signatures["decode"](z=tf.cast(z, tf.float32))
        if "log_det" not in out:
            raise ValueError(
                f"The SavedModel at {self.path} has no decode log_det (exported before zoo "
                "gave one): re-export its model with zoo.serving.export."
            )
        return out["images"], out["log_det"]


def _base_of_export(path):
    manifest = os.path.join(path, "assets.extra", "signatures.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            base = json.load(f).get("metadata", {}).get("base_distribution")
        if base:
            return base
    return "normal"


def load_flow(flow):
    """A flow from a zoo flow object, a ``.keras`` file or an exported SavedModel folder."""
    if not isinstance(flow, str | os.PathLike):
        missing = [
            a for a in ("encode", "decode", "latent_shape", "image_shape") if not hasattr(flow, a)
        ]
        if missing:
            raise TypeError(f"{type(flow).__name__} is not a flow: it has no {missing}.")
        return _unconditional(flow, type(flow).__name__)
    path = os.fspath(flow)
    if os.path.isdir(path):
        return SavedModelFlow(path)
    if path.endswith(".keras") and os.path.isfile(path):
        return _unconditional(keras.saving.load_model(path, compile=False), path)
    raise FileNotFoundError(f"No flow at {path!r}: give a .keras file or a SavedModel folder.")


def _unconditional(flow, what):
    if getattr(flow, "context_size", 0):
        raise ValueError(
            f"{what} is a class-conditional flow (num_classes={flow.context_size}): Transflow "
            "builds on an unconditional one."
        )
    return flow
