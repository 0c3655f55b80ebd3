"""The package's public functions carry type hints (ruff and mypy run in scripts/lint.sh), and no
module grows past MAX_LINES: a module that does is holding more than one job."""

import ast
import pathlib

import keras_zoo

PACKAGE = pathlib.Path(keras_zoo.__file__).parent
MAX_LINES = 750


def _unannotated(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = fn.args
    params = [
        *args.posonlyargs,
        *args.args,
        *args.kwonlyargs,
        *(a for a in (args.vararg, args.kwarg) if a),
    ]
    missing = [a.arg for a in params if a.annotation is None and a.arg not in ("self", "cls")]
    if fn.returns is None and fn.name != "__init__":
        missing.append("the return")
    return missing


def _public_functions(tree: ast.Module):
    """Module-level functions and the methods of module-level classes, less private ones
    (a leading underscore; __init__ counts as public)."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions) and not node.name.startswith("_"):
            yield node.name, node
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, functions) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    yield f"{node.name}.{item.name}", item


def test_public_functions_carry_type_hints():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 30, files  # the whole package, not an empty folder
    missing = [
        f"{path.relative_to(PACKAGE.parent)}:{fn.lineno} {name}: {', '.join(params)}"
        for path in files
        for name, fn in _public_functions(ast.parse(path.read_text()))
        for params in [_unannotated(fn)]
        if params
    ]
    assert not missing, "public functions without type hints:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_hint():
    tree = ast.parse(
        "def f(x: int, y) -> int: ...\n"
        "def _g(x): ...\n"
        "class C:\n    def m(self, z: int): ...\n    def _n(self, w): ...\n"
    )
    found = {name: _unannotated(fn) for name, fn in _public_functions(tree)}
    assert found == {"f": ["y"], "C.m": ["the return"]}


def test_no_module_is_longer_than_max_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        for lines in [len(path.read_text().splitlines())]
        if lines > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"
