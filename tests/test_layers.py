"""The package's layers import one way only, and no module imports itself back (no cycle)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlpar"

#: Layer of each top-level part of mlpar: a module may import its own layer's and lower ones.
#: linalg and optim are siblings: neither imports the other.
LAYERS = {"protocols": 0, "model": 1, "parallel": 2, "linalg": 3, "optim": 3, "multilevel": 4,
          "config": 5, "memory": 5, "api": 6, "io": 7, "cli": 8, "plot": 8, "__main__": 9, "__init__": 9}
SIBLINGS = {frozenset({"linalg", "optim"})}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield ".".join(("mlpar",) + parts).removesuffix(".__init__"), parts[0], path


def _imports(path: Path) -> set[str]:
    """Every mlpar module named by an import anywhere in the file (function bodies included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlpar"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("mlpar"))
    return names


MODULES = {name: (part, path) for name, part, path in _modules()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name):
    part, path = MODULES[name]
    for imported in _imports(path):
        if imported == "mlpar" or imported.split(".")[1] not in LAYERS:
            continue
        target = imported.split(".")[1]
        assert LAYERS[target] <= LAYERS[part], f"{name} imports {imported}: a higher layer"
        assert frozenset({part, target}) not in SIBLINGS, f"{name} imports its sibling {imported}"


def test_no_import_cycle():
    graph = {name: {m for m in _imports(path) if m in MODULES and m != name}
             for name, (_, path) in MODULES.items()}
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            assert state.get(nxt) != "open", "cycle: " + " -> ".join(trail + [nxt])
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"
    for node in graph:
        if node not in state:
            visit(node, [node])


def test_only_the_comm_layer_imports_mpi4py():
    users = [name for name, (_, path) in MODULES.items()
             if any(isinstance(n, (ast.Import, ast.ImportFrom))
                    and "mpi4py" in (getattr(n, "module", None) or "")
                    + " ".join(a.name for a in n.names)
                    for n in ast.walk(ast.parse(path.read_text())))]
    assert users == ["mlpar.parallel.comm"], users
