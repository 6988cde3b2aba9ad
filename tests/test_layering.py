"""The architecture, checked from the code's own imports (function-level ones included).

Bottom up: tfflows knows nothing of the zoo; in the zoo, `plots`, `storage` and `data` import no
other zoo module, `models` none of the layers above it (training, serving, the registry, the
command line), `serving` not the training run, `training` not the command line; and no module
imports another that imports it back, however long the way round.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("tfflows", "zoo")

# Each layer, and the zoo modules it must not import (a prefix covers a whole package).
FORBIDDEN = {
    "zoo.plots": ("zoo",),
    "zoo.storage": ("zoo",),
    "zoo.data": ("zoo.models", "zoo.training", "zoo.serving", "zoo.registry", "zoo.cli"),
    "zoo.models": ("zoo.training", "zoo.serving", "zoo.registry", "zoo.cli"),
    "zoo.serving": ("zoo.training", "zoo.registry", "zoo.cli"),
    "zoo.training": ("zoo.cli",),
    "zoo.registry": ("zoo.training", "zoo.serving", "zoo.cli"),
}


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _resolve(name, modules):
    """The project module ``name`` means: itself, or the package that holds it (an imported
    attribute, e.g. a class)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(module, path, modules):
    """The project modules ``module`` (at ``path``) imports, anywhere in the file, and, for a
    lazy package, in its ``__init__.pyi`` (the names it imports on first use)."""
    stub = path.with_suffix(".pyi")
    trees = [ast.parse(p.read_text(), filename=str(p)) for p in (path, stub) if p.exists()]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target and target != module:
                found.add(target)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: imports(name, path, modules) for name, path in modules.items()}


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def test_the_layers_import_only_downwards(graph):
    offenders = []
    for module, targets in graph.items():
        for layer, forbidden in FORBIDDEN.items():
            if _within(module, layer):
                offenders += [
                    f"{module} -> {t}" for t in targets if any(_within(t, f) for f in forbidden)
                ]
    assert not offenders, offenders


def test_tfflows_does_not_import_the_zoo(graph):
    offenders = [
        f"{m} -> {t}"
        for m, ts in graph.items()
        if _within(m, "tfflows")
        for t in ts
        if t[:3] == "zoo"
    ]
    assert not offenders, offenders


def test_no_import_circle(graph):
    """No strongly connected set of modules (Tarjan), the way round named when there is one."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, circles


def test_the_check_sees_a_circle_and_a_layer_broken():
    """The checks above can fail: a made-up graph with both faults."""
    bad = {"zoo.models.a": {"zoo.training.b"}, "zoo.training.b": {"zoo.models.a"}}
    with pytest.raises(AssertionError, match=r"zoo\.models\.a -> zoo\.training\.b"):
        test_the_layers_import_only_downwards(bad)
    with pytest.raises(AssertionError, match=r"\['zoo.models.a', 'zoo.training.b'\]"):
        test_no_import_circle(bad)


@pytest.mark.parametrize("folder", ["tfflows", "tests/tfflows", "examples"])
def test_the_library_its_tests_and_examples_do_not_import_the_zoo(folder):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files
    modules = {**_modules(), **{"zoo": ROOT / "zoo" / "__init__.py"}}
    offenders = [
        str(f.relative_to(ROOT))
        for f in files
        if any(_within(t, "zoo") for t in imports(_module_name(f), f, modules))
    ]
    assert not offenders, f"import zoo: {offenders}"
