"""The wheel is what a user installs: built from the checkout and installed into a fresh virtual
environment outside it, its presets work by name (`zoo list --presets`, `zoo.from_preset`,
`zoo sample`)."""

import os
import subprocess
import sys
import sysconfig
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, cwd, **kwargs):
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_presets_work_from_an_installed_wheel(tmp_path):
    dist = tmp_path / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            dist,
            ROOT,
        ],
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("tfflows-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert (
        "zoo/presets/glow_mnist/model.keras" in names
        and "zoo/presets/glow_mnist/card.json" in names
    )
    assert not [n for n in names if n.startswith(("tests/", "bench/", "tools/"))]

    # A fresh environment whose only zoo is the wheel's; its dependencies come from this one
    # (a path in a .pth file: this environment's own .pth files, e.g. an editable install of
    # the checkout, are not read).
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path)
    with open(os.path.join(site.strip(), "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            wheel,
        ],
        cwd=tmp_path,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZOO_PRESETS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    zoo = str(venv / "bin" / "zoo")
    listed = run([zoo, "list", "--presets"], tmp_path, env=env)
    row = next(line for line in listed.splitlines() if line.startswith("glow_mnist "))
    assert str(venv) in row and "bits_per_dim" in row, listed
    loaded = run(
        [
            python,
            "-c",
            "import zoo; model = zoo.from_preset('glow_mnist'); "
            "print(zoo.__file__, type(model).__name__, model.preset_card['name'])",
        ],
        tmp_path,
        env=env,
    )
    path, cls, name = loaded.split()
    assert path.startswith(str(venv)) and (cls, name) == ("Glow", "glow_mnist"), loaded
    run([zoo, "sample", "glow_mnist", "-n", "4", "--out", "glow.png"], tmp_path, env=env)
    assert (tmp_path / "glow.png").read_bytes()[:4] == b"\x89PNG"
