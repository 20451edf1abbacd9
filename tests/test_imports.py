"""No module-level import cycles inside the `seamline` package: a newcomer can read any module
knowing only what it imports, and startup order never matters."""

from __future__ import annotations

import ast
from pathlib import Path

import seamline

ROOT = Path(seamline.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Modules of the package this file imports at module level (not inside functions, not
    under TYPE_CHECKING)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def test_no_import_cycles():
    files = {_module_name(p): p for p in ROOT.rglob("*.py") if "migrations/versions" not in str(p)}
    known = set(files)
    graph = {name: _imports(path, known) - {name} for name, path in files.items()}
    # Importing a package runs its __init__, which here never imports its children: ignore parents.
    graph = {name: {d for d in deps if not name.startswith(d + ".")} for name, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
