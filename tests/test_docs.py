"""The documentation builds, and the code in it runs.

* ``mkdocs build --strict`` (``mkdocs.yml``): a broken link or anchor, a page missing from the
  nav or a nav entry without a page, an API entry (``::: tfflows.X``) naming no object, a
  docstring that griffe cannot read or a formula that cannot be rendered fails the build.
* Every ```` ```python ```` block of ``README.md`` and of ``docs/**/*.md`` runs: the blocks of one
  page in order, in one namespace (a later block uses the names of an earlier one) and an empty
  working folder of its own; all pages in one fresh process. A block right after the line
  ``<!-- no-run -->`` is only shown (it needs MNIST files, a server, or minutes of training);
  such blocks are few, and each page keeps at least one block that runs.
* Every ```` ```python ```` block in the docstrings of the public ``tfflows`` objects runs (the
  blocks of one docstring in one namespace), and every public bijector's docstring has
  ``#### Examples`` and ``#### References``.

A failing block's traceback names the page and the line of the Markdown file (or the object
whose docstring holds it).
"""

import inspect
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_RUN = "<!-- no-run -->"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)

# Runs the blocks given in a JSON file: [[filename, first line, code, fresh namespace], ...];
# each fresh namespace starts in a folder of its own. One process for every page: importing
# TensorFlow once instead of once per page saves about 6 s a page.
RUNNER = """
import json, os, sys
namespace, pages, base = {}, 0, os.getcwd()
for filename, line, code, fresh in json.load(open(sys.argv[1])):
    if fresh:
        namespace, pages = {"__name__": "__main__"}, pages + 1
        os.makedirs(os.path.join(base, str(pages)))
        os.chdir(os.path.join(base, str(pages)))
    exec(compile("\\n" * (line - 1) + code, filename, "exec"), namespace)
    print(f"ran {filename}:{line}", flush=True)
"""


def markdown_pages():
    """README.md and every page under docs/, relative to the repository."""
    pages = ["README.md"]
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        pages += [
            os.path.relpath(os.path.join(folder, f), ROOT)
            for f in sorted(files)
            if f.endswith(".md")
        ]
    return sorted(pages)


def python_blocks(text):
    """``[(first line of the code, code, runs)]`` of each ```python block in Markdown ``text``;
    ``runs`` is False for a block whose fence follows the line ``<!-- no-run -->``."""
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        first_line = text.count("\n", 0, match.start(1)) + 1
        blocks.append((first_line, match.group(1), before.strip() != NO_RUN))
    return blocks


def run_blocks(blocks, tmp_path, timeout):
    """Runs ``blocks`` (``[filename, line, code, fresh]``) in a fresh Python in ``tmp_path``."""
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps(blocks))
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(spec)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"a documented example failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )


def read(page):
    with open(os.path.join(ROOT, page)) as f:
        return f.read()


PAGES_WITH_CODE = [p for p in markdown_pages() if python_blocks(read(p))]


def test_site_builds_in_strict_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{output[-6000:]}"
    assert "WARNING" not in output, output[-6000:]
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "api" / "bijectors.html").is_file()  # use_directory_urls: false


def test_python_blocks_are_found():
    """The convention the example tests rely on: fences found, ``<!-- no-run -->`` honoured."""
    text = "a\n\n```python\nx = 1\n```\n\n<!-- no-run -->\n```python\nopen('mnist')\n```\n"
    assert python_blocks(text) == [(4, "x = 1\n", True), (9, "open('mnist')\n", False)]
    assert "README.md" in PAGES_WITH_CODE
    assert any(p.startswith("docs/models/") for p in PAGES_WITH_CODE)


def public_tfflows_objects():
    import tfflows
    from tfflows import bijectors

    objects = {f"tfflows.{n}": getattr(tfflows, n) for n in tfflows.__all__}
    objects.update({f"tfflows.bijectors.{n}": getattr(bijectors, n) for n in bijectors.__all__})
    return {name: obj for name, obj in objects.items() if not inspect.ismodule(obj)}


def test_public_bijectors_have_examples_and_references():
    from tfflows import bijectors

    missing = []
    for name, obj in public_tfflows_objects().items():
        if inspect.isclass(obj) and issubclass(obj, bijectors.FlowBijector):
            doc = inspect.getdoc(obj) or ""
            missing += [
                f"{name}: {s}" for s in ("#### Examples", "#### References") if s not in doc
            ]
    assert not missing, missing


def test_documented_examples_run(tmp_path):
    """Every page's runnable blocks (one namespace per page), then every public tfflows
    docstring's (one namespace per docstring), in one process."""
    blocks = []
    for page in PAGES_WITH_CODE:
        runnable = [
            [page, line, code, False] for line, code, runs in python_blocks(read(page)) if runs
        ]
        assert runnable, f"{page}: every python block is marked {NO_RUN}; keep one that runs"
        runnable[0][3] = True
        blocks += runnable
    docstrings = 0
    for name, obj in sorted(public_tfflows_objects().items()):
        runnable = [
            (line, code) for line, code, runs in python_blocks(inspect.getdoc(obj) or "") if runs
        ]
        for i, (line, code) in enumerate(runnable):  # one namespace per docstring
            blocks.append([f"<docstring of {name}>", line, code, i == 0])
            docstrings += 1
    assert docstrings >= 12, "the bijectors' docstrings lost their examples"
    run_blocks(blocks, tmp_path, timeout=900)
