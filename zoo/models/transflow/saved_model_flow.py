"""Flows Transflow can build on without their code: an exported SavedModel (`SavedModelFlow`),
or a ``.keras`` file (`load_flow`); and the class prior of one that has it (`class_prior`)."""

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
                f"{sorted(encode.structured_input_signature[1])}): Transflow builds on a flow "
                "whose map x -> z is one for every class (unconditional, or "
                'conditioning="prior").'
            )
        self.image_shape = tuple(
            next(iter(encode.structured_input_signature[1].values())).shape[1:]
        )
        self.latent_shape = tuple(
            next(iter(decode.structured_input_signature[1].values())).shape[1:]
        )
        metadata = _metadata(path)
        self.base_distribution = metadata.get("base_distribution") or "normal"
        self.num_classes = int(metadata.get("num_classes") or 0)

    def class_prior(self):
        """The base's ``(loc, scale)`` ``[C, *latent_shape]`` of each class of a flow with a
        class-conditional prior alone (its ``class_prior`` signature), else None."""
        if "class_prior" not in self.loaded.signatures:
            return None
        labels = tf.range(self.num_classes, dtype=tf.int64)
        out = self.loaded.signatures["class_prior"](labels=labels)
        return out["loc"], out["scale"]

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


def _metadata(path):
    """The export's ``export_metadata()`` (empty if it has none)."""
    manifest = os.path.join(path, "assets.extra", "signatures.json")
    if not os.path.exists(manifest):
        return {}
    with open(manifest) as f:
        return json.load(f).get("metadata", {})


def class_prior(flow):
    """``(loc, scale)`` ``[C, D]`` float64 of the class-conditional base of a flow that has one
    (its map x -> z the same for every class), else None."""
    if isinstance(flow, SavedModelFlow):
        prior = flow.class_prior()
    elif getattr(flow, "conditional_base", False):
        base = flow.base(context=tf.eye(flow.context_size)).distribution
        prior = base.loc, base.scale
    else:
        return None
    if prior is None:
        return None
    loc, scale = (tf.reshape(tf.cast(p, tf.float64), [tf.shape(p)[0], -1]) for p in prior)
    return loc, scale


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
    """``flow``, if its map x -> z is one for every class (an unconditional flow, or one whose
    class is in its prior alone)."""
    if getattr(flow, "context_size", 0) and getattr(flow, "maps_with_context", True):
        raise ValueError(
            f"{what} is a class-conditional flow (num_classes={flow.context_size}) with the "
            "class in its couplings: Transflow builds on a flow whose map x -> z is one for "
            'every class (unconditional, or conditioning="prior").'
        )
    return flow
