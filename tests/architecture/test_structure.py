"""The shape of the code under apps/: which file may import what.

Two rules, checked by reading every file's syntax tree (nothing is imported):

- no file imports another module's `_private` name: a name another module needs is public;
- no circle of imports between the files of apps/, counting every import statement anywhere in a
  file (module level and inside functions alike; only those under `if TYPE_CHECKING:` are left
  out, since they never run).

How an import becomes edges of the graph:

- relative imports are resolved against the importing file's package;
- `import apps.x.y` and `from apps.x.y import z` are an edge to `apps.x.y`; when `z` is a module
  of its own (`from apps.x import services` with `apps/x/services.py` or
  `apps/x/services/__init__.py`) the edge is to `apps.x.y.z`, and `apps.x.y` is then one of its
  parents (next rule), as it is at run time;
- importing `apps.x.y` runs the `__init__.py` of `apps` and `apps.x` first, so each of those
  parents is an edge too, but only when its `__init__.py` holds an import statement (an empty
  or docstring-only `__init__` cannot close a circle). A file inside a package is not given
  that implied edge to its own enclosing packages: they are already being imported whenever
  the file is. Reading a name other than a submodule from a package
  (`from apps.x.services import incident_open`) is a direct edge to its `__init__`, from
  anywhere.

Code that queues a Celery task names it (apps.core.queueing) rather than importing the tasks
module: the tasks import the services they run, never the other way round.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"
PROJECT_PACKAGES = ("apps", "healthorch")


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # absolute dotted name of the module named after `from`/`import`
    names: tuple[str, ...]  # names after `import` in a `from` import; empty for `import X`

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files() -> dict[str, Path]:
    """Every module under apps/ (migrations left out), by dotted name."""
    return {
        _module_name(path): path
        for path in sorted(APPS.rglob("*.py"))
        if "migrations" not in path.relative_to(APPS).parts
    }


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _statements(tree: ast.AST):
    """Every import statement in the tree, except the ones under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(path, node.lineno, alias.name, ()))
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        found.append(Import(path, node.lineno, module, tuple(a.name for a in node.names)))
    found.sort(key=lambda imp: imp.line)
    return found


def _has_imports(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    return any(True for _ in _statements(tree))


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES


def test_no_private_name_is_imported_from_another_module():
    offending = []
    for name, path in _files().items():
        for imp in _imports(name, path):
            if not _is_project(imp.module) or imp.module == name:
                continue
            private = [n for n in imp.names if n.startswith("_")]
            if not imp.names and any(p.startswith("_") for p in imp.module.split(".")[1:]):
                private = [imp.module]
            for n in private:
                offending.append(f"{imp.where()}: from {imp.module} import {n}")
    assert not offending, (
        f"{len(offending)} import(s) of a private name from another module; make the name "
        "public (no leading underscore) or move it where it belongs:\n" + "\n".join(offending)
    )


def _graph() -> tuple[dict[str, dict[str, Import]], dict[str, Path]]:
    files = _files()
    live_inits = {
        name for name, path in files.items() if path.name == "__init__.py" and _has_imports(path)
    }
    graph: dict[str, dict[str, Import]] = {}
    for name, path in files.items():
        edges: dict[str, Import] = {}
        for imp in _imports(name, path):
            submodules = [f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in files]
            # `from P import m` where P.m is a module imports P.m; P is then only its parent.
            # Any other name (or a plain `import P`) is read from P itself.
            direct = [imp.module] if len(submodules) < max(len(imp.names), 1) else []
            for target in direct + submodules:
                if target not in files:
                    continue
                if target != name:
                    edges.setdefault(target, imp)
                parts = target.split(".")
                for i in range(1, len(parts)):
                    parent = ".".join(parts[:i])
                    inside = name == parent or name.startswith(parent + ".")
                    if parent in live_inits and not inside:
                        edges.setdefault(parent, imp)
        edges.pop(name, None)
        graph[name] = edges
    return graph, files


def _cycles(graph: dict[str, dict[str, Import]]) -> list[tuple[list[str], list[str]]]:
    """Each group of files that reach each other (Tarjan's strongly connected parts) with one
    shortest circle through its first file."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    parts: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                parts.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)

    circles = []
    for part in sorted(parts):
        members = set(part)
        start = part[0]
        # Breadth-first from start back to start, staying inside the part: a shortest circle.
        previous: dict[str, str] = {}
        queue = [start]
        found = None
        while queue and found is None:
            node = queue.pop(0)
            for nxt in sorted(graph[node]):
                if nxt not in members:
                    continue
                if nxt == start:
                    found = node
                    break
                if nxt not in previous:
                    previous[nxt] = node
                    queue.append(nxt)
        circle = [found]
        while circle[-1] != start:
            circle.append(previous[circle[-1]])
        circles.append((part, [*reversed(circle), start]))
    return circles


def test_no_circle_of_imports_between_files_of_apps():
    graph, _ = _graph()
    circles = _cycles(graph)
    lines = []
    for part, circle in circles:
        lines.append(f"{len(part)} files import each other: " + ", ".join(part))
        lines.append("  a circle: " + " -> ".join(circle))
        for here, there in itertools.pairwise(circle):
            imp = graph[here][there]
            what = (
                f"from {imp.module} import {', '.join(imp.names)}"
                if imp.names
                else (f"import {imp.module}")
            )
            lines.append(f"    {imp.where()}: {what}  (reaches {there})")
    assert not circles, (
        f"{len(circles)} group(s) of files of apps/ import each other in a circle (each shown "
        "with one shortest circle); give the shared pieces a module of their own:\n"
        + "\n".join(lines)
    )
