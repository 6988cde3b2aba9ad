import json
import os

import keras
import pytest
import tensorflow as tf

from zoo import registry, training
from zoo.training import precision

FLAGS = "fpu vme sse2 avx2 avx512f avx512_vnni {} fma"


def _cpuinfo(tmp_path, extra):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: {FLAGS.format(extra)}\nbugs\t\t: spectre_v1\n")
    return str(path)


@pytest.mark.parametrize(
    "extra, found",
    [
        ("amx_bf16 amx_tile avx512_bf16", ("amx_bf16", "avx512_bf16")),
        ("avx512_bf16", ("avx512_bf16",)),
        ("", ()),
    ],
)
def test_bfloat16_units_are_read_from_the_cpu_flags(tmp_path, monkeypatch, extra, found):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert precision.bfloat16_units(_cpuinfo(tmp_path, extra)) == found


def test_no_bfloat16_units_without_cpuinfo_or_onednn(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert precision.bfloat16_units(str(tmp_path / "absent")) == ()
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert precision.bfloat16_units(_cpuinfo(tmp_path, "amx_bf16")) == ()


@pytest.mark.parametrize(
    "gpu, units, prefers, policy",
    [
        (True, ("amx_bf16",), True, "mixed_float16"),
        (False, ("amx_bf16",), True, "mixed_bfloat16"),
        (False, ("amx_bf16",), False, "float32"),
        (False, (), True, "float32"),
    ],
)
def test_auto_picks_float16_on_a_gpu_and_bfloat16_where_the_cpu_and_model_gain(
    monkeypatch, gpu, units, prefers, policy
):
    monkeypatch.setattr(precision, "bfloat16_units", lambda: units)
    devices = tf.config.list_physical_devices
    monkeypatch.setattr(
        tf.config,
        "list_physical_devices",
        lambda kind=None: ["gpu:0"] if gpu and kind == "GPU" else devices(kind),
    )
    chosen, why = precision.choose("auto", prefers)
    assert chosen == policy
    assert why.startswith("auto: ")
    for mode, forced in precision.POLICIES.items():
        assert precision.choose(mode, prefers)[0] == forced


def test_a_nonsense_mode_is_refused():
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        precision.choose("bf16")
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        training.RunConfig(model="nice", mixed_precision="half").check()


def test_the_models_measured_faster_in_bfloat16_are_the_ones_that_prefer_it():
    """bench/train_step.py: at least 1.25x in bfloat16 for these, at most 1.07x (or slower) for
    the others; a new model states its own choice."""
    preferring = {
        name
        for name in registry.list_models()
        if registry.entry(name).cls.prefers_bfloat16(registry.entry(name).defaults)
    }
    convolutional_flows = {"realnvp", "realnvp_conditional", "glow", "glow_conditional"}
    assert preferring == {"nice", *convolutional_flows, "dcgan", "conv_autoencoder"}
    assert not registry.entry("realnvp").cls.prefers_bfloat16({"architecture": "flat"})


@pytest.mark.parametrize("model, policy", [("nice", "mixed_bfloat16"), ("vae", "float32")])
def test_a_run_trains_under_the_policy_auto_picks_and_puts_the_global_one_back(
    tmp_path, monkeypatch, capsys, model, policy
):
    monkeypatch.setattr(precision, "bfloat16_units", lambda: ("amx_bf16",))
    out = str(tmp_path / model)
    config = training.RunConfig(
        model=model,
        epochs=1,
        batch_size=256,
        options={"hidden_units": [8]} if model == "nice" else {"hidden_units": [16]},
        out=out,
        export=False,
    )
    metrics = training.run(config)
    assert metrics["dtype_policy"] == policy
    assert f"dtype policy {policy} (auto: " in capsys.readouterr().out
    assert keras.config.dtype_policy().name == "float32"
    model_dtypes = json.load(open(os.path.join(out, "metrics.json")))["dtype_policy"]
    assert model_dtypes == policy
    reloaded = keras.saving.load_model(os.path.join(out, "model.keras"))
    compute = {layer.dtype_policy.compute_dtype for layer in reloaded._flatten_layers()}
    assert ("bfloat16" in compute) == (policy == "mixed_bfloat16")
