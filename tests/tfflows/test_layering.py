import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _imported_packages(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("folder", ["tfflows", "tests/tfflows", "examples"])
def test_the_library_its_tests_and_examples_do_not_import_the_zoo(folder):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files
    offenders = [str(f.relative_to(ROOT)) for f in files if "zoo" in set(_imported_packages(f))]
    assert not offenders, f"import zoo: {offenders}"
