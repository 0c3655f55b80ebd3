"""keras_zoo's modules import one another without circles, and none sets names on another.

The import graph is read from the source with `ast`: an edge for every import of a keras_zoo
module, at module level or inside a function, but not under `if TYPE_CHECKING:` (never run).
`from keras_zoo.port import convert` is an edge to the submodule keras_zoo.port.convert,
`import keras_zoo` and `from keras_zoo import build` are edges to the package's __init__; the
parent packages Python runs first are not edges. A module that assigns to another module's
attribute at import time (`convert.NAME = value`) hides a dependency the graph cannot see, so
that is refused too.
"""

from __future__ import annotations

import ast
import pathlib
import textwrap

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_zoo"

Graph = dict[str, dict[str, int]]  # module -> {imported module: first line}


def module_files(package: pathlib.Path) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every .py file under the package folder `package`."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST, *, functions: bool):
    """The statements under `tree` that run (TYPE_CHECKING blocks left out), with function
    bodies or without them (what runs at import time)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _type_checking(child):
            for stmt in child.orelse:
                yield stmt
                yield from _statements(stmt, functions=functions)
            continue
        if not functions and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield child
        yield from _statements(child, functions=functions)


def _known(name: str, modules: dict[str, pathlib.Path]) -> str | None:
    """`name`, or the closest enclosing module that exists."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, module: str, modules: dict) -> list[tuple[str, str | None]]:
    """(module imported, the name it is bound to when that name is a module) per alias."""
    root = next(iter(modules)).partition(".")[0]
    out: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.partition(".")[0] == root:
                # `import keras_zoo.port.convert` binds `keras_zoo`, `... as convert` the module
                out.append((_known(alias.name, modules), alias.asname or root))
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module if modules[module].name == "__init__.py" else module.rpartition(".")[0]
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        if source.partition(".")[0] != root:
            return out
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if sub in modules:
                out.append((sub, alias.asname or alias.name))
            else:
                out.append((_known(source, modules), None))
    return [(target, bound) for target, bound in out if target is not None]


def import_graph(package: pathlib.Path) -> Graph:
    """Every module of `package` -> the package's modules it imports (first line of each)."""
    modules = module_files(package)
    graph: Graph = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _statements(tree, functions=True):
            for target, _ in _imported(node, name, modules):
                graph[name].setdefault(target, node.lineno)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def injected_names(package: pathlib.Path) -> list[str]:
    """ "file:line: statement" for each assignment, at import time, onto an attribute of another
    module of `package` (`convert.NAME = value`, `setattr(convert, ...)`)."""
    modules = module_files(package)
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        statements = list(_statements(tree, functions=False))
        bound = {b for node in statements for _, b in _imported(node, name, modules) if b}
        for node in statements:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = [t for target in node.targets for t in _flatten(target)]
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "setattr"
                and node.value.args
            ):
                targets = [ast.Attribute(value=node.value.args[0], attr="", ctx=ast.Store())]
            for target in targets:
                if isinstance(target, ast.Attribute) and _root(target) in bound:
                    relative = path.relative_to(package.parent)
                    found.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    return found


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [t for elt in target.elts for t in _flatten(elt)]
    return [target]


def _root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _write_package(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root / next(iter(files)).partition("/")[0]


def test_keras_zoo_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert {"keras_zoo", "keras_zoo.api", "keras_zoo.port.convert"} <= set(graph)
    assert "keras_zoo.walk" in graph["keras_zoo.port.mapping"]  # the graph sees imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_sets_names_on_another_at_import():
    injected = injected_names(PACKAGE)
    assert not injected, "modules set on another at import:\n" + "\n".join(injected)


TORCH_HELPER = "keras_zoo.torch_reference"


def direct_torch_imports(package: pathlib.Path) -> list[str]:
    """ "file:line" of every import of torchvision or timm (a statement, or
    importlib.import_module with the name) outside keras_zoo.torch_reference."""
    found = []
    for module, path in module_files(package).items():
        if module == TORCH_HELPER:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names = [str(node.args[0].value)]
            if any(name.partition(".")[0] in ("torchvision", "timm") for name in names):
                found.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return found


def test_torchvision_and_timm_are_imported_only_through_torch_reference():
    """A plain `import torchvision` fails on CPU builds of torch ("operator torchvision::nms
    does not exist"); keras_zoo.torch_reference.import_torchvision / import_timm make it work,
    so the package imports them nowhere else."""
    found = direct_torch_imports(PACKAGE)
    assert not found, f"import through {TORCH_HELPER}.import_torchvision: " + ", ".join(found)


def test_the_torch_import_checker_finds_direct_imports(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": """
                def f():
                    import torchvision
            """,
            "pkg/b.py": "from timm.layers import x\n",
            "pkg/c.py": "import importlib\nimportlib.import_module('torchvision.models')\n",
            "pkg/d.py": "import torch\n",
        },
    )
    assert direct_torch_imports(package) == ["pkg/a.py:3", "pkg/b.py:1", "pkg/c.py:2"]


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": """
                def f():
                    from pkg.a import VALUE
                    return VALUE
            """,
            # only for the type checker: never run, so no edge
            "pkg/c.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from pkg import d
            """,
            "pkg/d.py": "import pkg.c\n",
            "pkg/e.py": "from . import f\n",
            "pkg/f.py": "import pkg\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.b": 1}
    assert graph["pkg.b"] == {"pkg.a": 3}
    assert graph["pkg.c"] == {}
    assert graph["pkg.d"] == {"pkg.c": 1}
    assert graph["pkg.e"] == {"pkg.f": 1}
    assert graph["pkg.f"] == {"pkg": 1}
    assert " -> ".join(find_cycle(graph) or []) == "pkg.a -> pkg.b -> pkg.a"
    (package / "b.py").write_text("VALUE = 1\n", encoding="utf-8")
    assert find_cycle(import_graph(package)) is None


def test_the_checker_finds_names_set_on_another_module(tmp_path):
    package = _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low.py": "HOOK = None\n",
            "pkg/high.py": """
                from pkg import low
                import pkg.low as other

                def hook():
                    low.HOOK = 2  # at call time, not import time: not an injection

                low.HOOK = hook
                setattr(other, "HOOK", hook)
            """,
        },
    )
    assert injected_names(package) == [
        "pkg/high.py:8: low.HOOK = hook",
        "pkg/high.py:9: setattr(other, 'HOOK', hook)",
    ]
