"""The dtype policy a run trains under: `zoo train --mixed-precision auto|off|float16|bfloat16`."""

import os

MODES = ("auto", "off", "float16", "bfloat16")
POLICIES = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def bfloat16_units(cpuinfo="/proc/cpuinfo"):
    """The CPU's bfloat16 matrix instructions that TensorFlow's oneDNN kernels use.

    A tuple of the ``/proc/cpuinfo`` flags among ``amx_bf16`` (AMX tiles) and ``avx512_bf16``
    (bfloat16 dot products); empty where the file cannot be read (not Linux) or where oneDNN is
    switched off (``TF_ENABLE_ONEDNN_OPTS=0``: TensorFlow's own kernels then compute bfloat16
    by converting to float32, slower than float32 itself).
    """
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() in ("0", "false"):
        return ()
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.partition(":")[2].split())
                    return tuple(flag for flag in BFLOAT16_FLAGS if flag in flags)
    except OSError:
        pass
    return ()


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name (``/proc/cpuinfo``'s, as ``lscpu`` shows it), which every speed
    figure depends on; the platform's processor string where that file cannot be read."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def check(mode):
    """Raises a one-line ValueError unless ``mode`` is one of `MODES`."""
    if mode not in MODES:
        raise ValueError(f"mixed_precision must be one of {MODES}, got {mode!r}.")


def choose(mode, bfloat16_on_cpu=True):
    """``(policy, why)``: the Keras dtype policy for ``mode`` and the reason, in words.

    ``auto`` is ``mixed_float16`` on a GPU (its optimizers loss-scaled). On a CPU it is
    ``mixed_bfloat16`` where the CPU has bfloat16 matrix units (`bfloat16_units`) and the model
    trains faster in it to the same quality (``bfloat16_on_cpu``: a zoo model's
    ``prefers_bfloat16``, measured with bench/train_step.py), else ``float32``.
    """
    check(mode)
    if mode != "auto":
        return POLICIES[mode], f"mixed precision {mode}"
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16", "auto: a GPU"
    units = bfloat16_units()
    if not units:
        return "float32", "auto: a CPU without bfloat16 matrix units"
    if not bfloat16_on_cpu:
        return "float32", f"auto: this model trains no faster in bfloat16 on {'/'.join(units)}"
    return "mixed_bfloat16", f"auto: the CPU has {'/'.join(units)}"


def set_policy(mode, bfloat16_on_cpu=True):
    """Sets the global Keras dtype policy `choose` picks; returns ``(policy, why)``."""
    import keras

    policy, why = choose(mode, bfloat16_on_cpu)
    keras.config.set_dtype_policy(policy)
    return policy, why
