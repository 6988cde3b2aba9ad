"""The command line answers at once: its help, lists and argument or file errors import no
TensorFlow; a command that needs TensorFlow keeps its C++ start-up lines out of the output
unless ``TF_CPP_MIN_LOG_LEVEL`` asks for them; ``import zoo`` is cheap, yet a saved zoo model
loads with Keras after it."""

import ast
import importlib
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import zipfile

import pytest

import zoo
from zoo import data, models, registry, startup, training
from zoo.models import transflow
from zoo.serving import presets

HEAVY = ("tensorflow", "keras", "tensorflow_probability", "matplotlib", "tensorflow_datasets")

# (argv, exit status, what the one error line says); None: no error line.
COMMANDS = [
    (["--help"], 0, None),
    (["list"], 0, None),
    (["list", "--presets"], 0, None),
    *[
        ([c, "--help"], 0, None)
        for c in ("train", "transflow", "list", "sample", "evaluate", "export")
    ],
    (["train", "realnvp", "--help-me"], 2, "unrecognized arguments: --help-me"),
    (["train", "realnvpp"], 2, "invalid choice: 'realnvpp'"),
    (["train", "realnvp", "--epochs", "ten"], 2, "invalid int value: 'ten'"),
    (["train", "realnvp", "--mixed-precision", "fp8"], 2, "invalid choice: 'fp8'"),
    (["train", "realnvp", "--epochs", "0"], 2, "epochs must be a whole number >= 1, got 0"),
    (["train", "realnvp", "--set", "filterz=8"], 2, "--set filterz: realnvp has no option"),
    (["train", "nice", "--set", "hidden_units=wide"], 2, "hidden_units is a list"),
    (
        ["train", "realnvp", "--dataset", "./no/such/mnist"],
        2,
        "--dataset ./no/such/mnist: no such file or folder",
    ),
    (["transflow", "realnvp_digits", "--variance", "wild"], 2, "invalid choice: 'wild'"),
    (["sample", "no_such.keras"], 2, "No model file at 'no_such.keras'"),
    (["evaluate", "no_such_preset"], 2, "No preset 'no_such_preset'"),
    (["export", "NOT_A_ZIP", "--base-dir", "serving"], 2, "NOT_A_ZIP is not a .keras file"),
]

_SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from zoo import cli
    results = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(argv)
            except SystemExit as stop:
                status = stop.code
        results.append([status, out.getvalue(), err.getvalue()])
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in json.loads(sys.argv[2]))
    print(json.dumps({"results": results, "heavy": heavy}))
    """
)


def _python(args, env=None, cwd=None):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**environment, **(env or {})},
        cwd=cwd,
    )


def test_help_lists_and_argument_and_file_errors_import_no_tensorflow(tmp_path):
    (tmp_path / "NOT_A_ZIP").write_text("not a model")
    argvs = [argv for argv, _, _ in COMMANDS]
    done = _python(["-c", _SCRIPT, json.dumps(argvs), json.dumps(HEAVY)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["heavy"] == [], report["heavy"]
    for (argv, status, says), (got, out, err) in zip(COMMANDS, report["results"], strict=True):
        assert got == status, (argv, got, err)
        if says is None:
            assert out and not err, (argv, err)
        else:
            lines = err.strip().splitlines()
            assert says in lines[-1] and lines[-1].startswith(("zoo: error:", "zoo ")), (argv, err)
            assert not [line for line in lines if line.startswith("Traceback")], err
    listed = report["results"][2][1]
    assert all(name in listed for name in presets.list_presets()), listed


def test_tensorflow_start_up_lines_are_held_back_unless_the_environment_asks(tmp_path):
    """By default a command that imports TensorFlow (here: to find that a zip archive is no
    Keras model) prints its one error line and nothing of TensorFlow's start-up; with
    ``TF_CPP_MIN_LOG_LEVEL=0`` the lines (Abseil's ``I`` lines) are there, and a preset loads
    with Keras imported after ``import zoo`` (whose names register on Keras' import)."""
    with zipfile.ZipFile(tmp_path / "junk.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    quiet = _python(["-m", "zoo", "sample", "junk.keras"], cwd=tmp_path)
    assert quiet.returncode == 2, quiet.stderr[-3000:]
    (line,) = quiet.stderr.splitlines()
    assert line.startswith("zoo: error: Cannot load junk.keras: "), quiet.stderr
    script = textwrap.dedent(
        f"""
        import sys
        import zoo
        from zoo import startup
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        startup.import_tensorflow()
        import keras
        model = keras.saving.load_model({presets.model_file("realnvp_digits")!r})
        print(type(model).__name__)
        """
    )
    loud = _python(["-c", script], env={"TF_CPP_MIN_LOG_LEVEL": "0"}, cwd=tmp_path)
    assert loud.returncode == 0 and loud.stdout.split() == ["RealNVP"], loud.stderr[-3000:]
    assert [line for line in loud.stderr.splitlines() if not startup.kept(line, 1)], loud.stderr


def test_the_families_register_after_the_import_that_brought_keras_in(tmp_path):
    """``import zoo, tfflows``: Keras arrives from inside ``tfflows/__init__.py``; the families
    (which import tfflows) register once tfflows has finished, not while it is half-made."""
    script = textwrap.dedent(
        """
        import warnings
        warnings.filterwarnings("error", message="zoo: ")
        import zoo, tfflows
        import keras
        print(keras.saving.get_registered_object("zoo>RealNVP").__module__)
        """
    )
    run = _python(["-c", script], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split() == ["zoo.models.flows.realnvp"], run.stderr[-3000:]


@pytest.mark.parametrize(
    "line, shown_from",
    [
        ("I0000 00:00:1796590898.075145    1858 port.cc:153] oneDNN custom operations are on.", 0),
        ("W0000 00:00:1796590898.075145    1858 cpu_feature_guard.cc:227] This TensorFlow", 1),
        ("E0000 00:00:1796591187.451948    3534 cuda_platform.cc:52] failed call to cuInit", 2),
        ("F0000 00:00:1796591187.451948    3534 stream.cc:12] fatal", 3),
        (
            "WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR",
            0,
        ),
        ("UserWarning: something Python says", 99),
        ("Traceback (most recent call last):", 99),
    ],
)
def test_a_start_up_line_is_kept_from_its_severity_on(line, shown_from):
    for level in range(4):
        assert startup.kept(line, level) == (level <= shown_from), (line, level)


@pytest.mark.parametrize("package", [zoo, data, models, training, transflow])
def test_every_lazy_name_resolves(package):
    """Each name the package's stub lists is its submodule's object (a stub left naming a
    moved or renamed object raises here, not in a user's first ``zoo.Name``)."""
    stub = ast.parse(pathlib.Path(package.__file__).with_suffix(".pyi").read_text())
    names = 0
    for node in ast.walk(stub):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(f"{package.__name__}.{node.module}")
            for alias in node.names:
                assert getattr(package, alias.name) is getattr(module, alias.name), alias.name
                names += 1
    assert names == len(package.__all__) > 0


def test_the_option_table_is_the_models_own():
    """``zoo train --set`` reads options.json, not the classes: it must say what they say."""
    with open(registry.OPTIONS_FILE) as f:
        written = json.load(f)
    assert written == registry.option_table(), "stale: python tools/write_registry_options.py"
