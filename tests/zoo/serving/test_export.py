import json
import os
import re
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.checks import randomize
from zoo.models import flows
from zoo.serving import export

SIGNATURES = ["decode", "encode", "log_prob", "sample", "serving_default"]

# Runs in a fresh interpreter: loads the SavedModel with TensorFlow alone and calls every
# signature on the inputs in inputs.npz.
LOADER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    path, inputs, out = sys.argv[1:]
    loaded = tf.saved_model.load(path)
    arrays = dict(np.load(inputs))
    results = {}
    for name in ["log_prob", "serving_default", "encode"]:
        for key, value in loaded.signatures[name](images=tf.constant(arrays["images"])).items():
            results[f"{name}/{key}"] = value.numpy()
    for name in ["sample", "decode"]:
        for key, value in loaded.signatures[name](z=tf.constant(arrays["z"])).items():
            results[f"{name}/{key}"] = value.numpy()
    ours = [m for m in sys.modules
            if m.split(".")[0] in ("tfflows", "zoo", "tensorflow_probability")]
    assert not ours, ours
    np.savez(out, **results)
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = flows.RealNVP((8, 8, 1), 17, num_scales=2, filters=8, num_blocks=1)
    randomize(model.bijector_layers, seed=1, scale=0.05)
    base = str(tmp_path_factory.mktemp("serving"))
    return model, base, export.export(model, base, model_name="realnvp")


def run(args, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ""}
    return subprocess.run(args, capture_output=True, text=True, env=env, check=False, **kwargs)


def test_layout_versions_and_signature_manifest(exported):
    model, base, path = exported
    assert path == os.path.join(base, "realnvp", "1")
    assert export.next_version(os.path.join(base, "realnvp")) == 2
    with open(os.path.join(path, "assets.extra", "signatures.json")) as f:
        manifest = json.load(f)
    image = {"dtype": "float32", "shape": [-1, 8, 8, 1]}
    inputs = {name: sig["inputs"] for name, sig in manifest["signatures"].items()}
    assert inputs == {
        "log_prob": {"images": image},
        "sample": {"z": image},
        "encode": {"images": image},
        "decode": {"z": image},
        "serving_default": {"images": image},
    }
    assert manifest["signatures"]["log_prob"]["outputs"] == {
        "bits_per_dim": {"dtype": "float32", "shape": [-1]},
        "log_prob": {"dtype": "float32", "shape": [-1]},
    }
    with pytest.raises(FileExistsError) as error:
        export.export(model, base, model_name="realnvp", version=1)
    assert str(error.value) == (
        f"{path} exists; TF Serving versions are immutable: choose another --version, or leave "
        "it out for the next free one."
    )


def test_savedmodel_reproduces_the_keras_model_without_our_code(exported, tmp_path):
    model, _, path = exported
    images = tf.random.stateless_uniform((4, 8, 8, 1), seed=[3, 4], minval=0.01, maxval=0.99)
    z = tf.random.stateless_normal((3, 8, 8, 1), seed=[5, 6])
    np.savez(tmp_path / "inputs.npz", images=images.numpy(), z=z.numpy())
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    # Run from an empty folder so that neither package can be imported from the checkout.
    result = run(
        [
            sys.executable,
            str(script),
            path,
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "out.npz"),
        ],
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    log_prob = model.log_prob(images).numpy()
    np.testing.assert_allclose(out["log_prob/log_prob"], log_prob, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["serving_default/log_prob"], log_prob, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["log_prob/bits_per_dim"], model.bits_per_dim(images), rtol=1e-5)
    np.testing.assert_allclose(out["encode/z"], model.encode(images), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["decode/images"], model.decode(z), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["sample/images"], np.clip(model.decode(z), 0.0, 1.0), atol=1e-5)
    decoded, log_prob = model.decode_and_log_prob(z)
    np.testing.assert_allclose(out["sample/log_prob"], log_prob, rtol=1e-5, atol=1e-3)
    log_det = -model.encode_with_log_det(decoded)[1]
    np.testing.assert_allclose(out["decode/log_det"], log_det, rtol=1e-4, atol=1e-2)


def test_saved_model_cli_shows_and_runs_the_signatures(exported, tmp_path):
    model, _, path = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = run([cli, "show", "--dir", path, "--all"])
    assert shown.returncode == 0, shown.stderr[-3000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in shown.stdout
    assert "inputs['images']" in shown.stdout and "outputs['bits_per_dim']" in shown.stdout

    images = np.full((2, 8, 8, 1), 0.5, np.float32)
    np.save(tmp_path / "images.npy", images)
    ran = run(
        [
            cli,
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "log_prob",
            "--inputs",
            f"images={tmp_path / 'images.npy'}",
            "--outdir",
            str(tmp_path / "o"),
        ]
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "o" / "log_prob.npy"), model.log_prob(images), rtol=1e-5, atol=1e-4
    )


def test_failed_export_leaves_nothing_behind(tmp_path):
    class Broken(flows.NICE):
        def serving_endpoints(self):
            def fail(images):
                raise RuntimeError("tracing failed")

            return {"log_prob": (fail, [tf.TensorSpec([None, 4, 4, 1], tf.float32)])}

    with pytest.raises(RuntimeError, match="tracing failed"):
        export.export(Broken((4, 4, 1), 256, hidden_units=(8,)), str(tmp_path), model_name="b")
    assert os.listdir(tmp_path / "b") == []


@pytest.mark.parametrize("name", ["sample", "decode"])
def test_latent_signatures_name_a_non_finite_input(exported, name):
    _, _, path = exported
    signature = tf.saved_model.load(path).signatures[name]
    for bad in (np.nan, np.inf):
        z = np.zeros((2, 8, 8, 1), np.float32)
        z[1, 3, 4, 0] = bad
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            signature(z=tf.constant(z))
        message = str(error.value)  # "Graph execution error: ... assertion failed: [...]"
        assert f"[{name}: input z must be finite; got NaN or inf]" in message, message
        assert "logit" not in message.lower(), message  # not an inner layer's complaint
    assert signature(z=tf.zeros((2, 8, 8, 1)))["images"].shape == (2, 8, 8, 1)


def tiny_model():
    return flows.NICE((4, 4, 1), 256, num_couplings=2, hidden_units=(8,))


def test_racing_exports_take_the_next_version_or_refuse_a_given_one(tmp_path, monkeypatch):
    """Another export publishes the version this one is writing, just before its rename."""
    write_warmup, staged = export.write_warmup, []

    def then_another_export_takes(version):
        def write(path, *args):
            write_warmup(path, *args)
            staged.extend(os.listdir(tmp_path / "m"))
            os.makedirs(tmp_path / "m" / version)
            (tmp_path / "m" / version / "saved_model.pb").write_bytes(b"theirs")

        return write

    model = tiny_model()
    monkeypatch.setattr(export, "write_warmup", then_another_export_takes("1"))
    assert export.export(model, str(tmp_path), model_name="m") == str(tmp_path / "m" / "2")
    assert (tmp_path / "m" / "1" / "saved_model.pb").read_bytes() == b"theirs"
    assert (tmp_path / "m" / "2" / "saved_model.pb").exists()
    host, pid = re.escape(socket.gethostname()), os.getpid()
    assert [n for n in staged if re.fullmatch(rf"\.tmp-1-{host}-{pid}-[0-9a-f]{{32}}", n)], staged
    monkeypatch.setattr(export, "write_warmup", then_another_export_takes("5"))
    with pytest.raises(FileExistsError, match=r"5 exists; .* choose another --version"):
        export.export(model, str(tmp_path), model_name="m", version=5)
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2", "5"]


def test_stale_staging_folders_are_removed_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host, uid = socket.gethostname(), "0" * 32
    folders = {
        f".tmp-3-{host}-{dead.pid}-{uid}": False,  # its exporter is gone
        f".tmp-3-{host}-{os.getpid()}-{uid}": True,  # a live exporter's
        f".tmp-3-elsewhere-{dead.pid}-{uid}": True,  # another host's: cannot tell
        f".tmp-4-{uid}": True,  # the older form, recent
        f".tmp-5-{uid}": False,  # the older form, two hours old
    }
    for name in folders:
        os.makedirs(tmp_path / "m" / name / "variables")
    old = os.path.getmtime(tmp_path / "m") - 7200
    os.utime(tmp_path / "m" / f".tmp-5-{uid}", (old, old))
    export.export(tiny_model(), str(tmp_path), model_name="m")
    kept = sorted(n for n, keep in folders.items() if keep)
    assert sorted(os.listdir(tmp_path / "m")) == sorted(["1", *kept])


def _xla_functions(path):
    """Names of the SavedModel's functions that XLA must compile."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    library = saved.meta_graphs[0].graph_def.library.function
    return {f.signature.name for f in library if f.attr["_XlaMustCompile"].b}


def test_a_jit_compiled_export_serves_the_same_figures_and_checks_its_inputs(tmp_path):
    """``jit_compile=True``: functions marked for XLA in the SavedModel; through
    ``tf.saved_model.load`` and TF Serving's Predict path (`tests.serving`) the figures of the
    Keras model; the input checks still name a bad input; a model XLA cannot compile is
    refused before anything is written."""
    from tensorflow_serving.apis import predict_pb2

    from tests.serving import Servable

    model = flows.RealNVP((8, 8, 1), 17, architecture="flat", num_couplings=2, hidden_units=(8,))
    randomize(model.bijector_layers, seed=1, scale=0.05)
    plain = export.export(model, str(tmp_path), model_name="flat")
    path = export.export(model, str(tmp_path), model_name="flat", jit_compile=True)
    assert not _xla_functions(plain) and len(_xla_functions(path)) >= 4
    with open(os.path.join(path, "assets.extra", "signatures.json")) as f:
        assert json.load(f)["jit_compile"] is True
    x = tf.random.stateless_uniform((5, 8, 8, 1), [0, 1], minval=0.02, maxval=0.98)
    expected = model.log_prob(x).numpy()
    loaded = tf.saved_model.load(path)
    got = loaded.signatures["log_prob"](images=x)["log_prob"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "log_prob"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(x.numpy()))
    served = tf.make_ndarray(Servable(path).predict(request).outputs["log_prob"])
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-4)
    z = np.zeros((2, *model.latent_shape), np.float32)
    z[1, 3] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="input z must be finite"):
        loaded.signatures["decode"](z=tf.constant(z))

    class NotForXla(flows.NICE):
        def serving_endpoints(self):
            def log_prob(images):  # a string op: XLA has no kernel for it
                return {"text": tf.strings.as_string(tf.reduce_sum(images, [1, 2, 3]))}

            return {"log_prob": (log_prob, [tf.TensorSpec([None, 4, 4, 1], tf.float32)])}

    with pytest.raises(
        ValueError, match=r"XLA cannot compile log_prob \(no XLA kernel for AsString\)"
    ):
        export.export(
            NotForXla((4, 4, 1), 256, hidden_units=(8,)), str(tmp_path), "x", jit_compile=True
        )
    assert not os.path.exists(tmp_path / "x")
