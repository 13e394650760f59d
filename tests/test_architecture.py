"""The code's layout holds: no import circles in ``src/dataperf``, no import from a layer above
(docs/architecture.md names the layers), and that page names every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
MAP = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
#: From the bottom up, as docs/architecture.md's table gives them: module name prefixes.
LAYERS = {
    "foundation": ("dataperf", "dataperf.exceptions", "dataperf.home", "dataperf.plugins",
                   "dataperf.scores", "dataperf.metrics", "dataperf.submission_files",
                   "dataperf.budget"),
    "tools": ("dataperf.editions", "dataperf.learners", "dataperf.algorithms",
              "dataperf.screening", "dataperf.generators"),
    "challenge": ("dataperf.challenge",),
    "kinds": ("dataperf.kinds",),
    "challenges": ("dataperf.registry", "dataperf.challenges", "dataperf.reports"),
    "platform": ("dataperf.client", "dataperf.server"),
    "command line": ("dataperf.cli", "dataperf.cli_app", "dataperf.cli_platform",
                     "dataperf.cli_studio", "dataperf.cli_server", "dataperf.__main__"),
}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (the migration scripts are data)."""
    found = {}
    for path in sorted((SOURCE / "dataperf").rglob("*.py")):
        if "versions" in path.parts:
            continue
        parts = path.relative_to(SOURCE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in it (a function's own imports
    too: a circle through them is still a circle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            named |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    found = set()
    for target in named:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(edges[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def layer(name: str) -> int:
    """The index of the module's layer (its longest matching prefix)."""
    best, length = -1, -1
    for number, prefixes in enumerate(LAYERS.values()):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > length:
                best, length = number, len(prefix)
    return best


def test_the_circle_finder_finds_circles() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    assert circles(graph()) == []


def test_every_module_has_a_layer_and_imports_none_above_it() -> None:
    names = list(LAYERS)
    upward = [f"{name} ({names[layer(name)]}) imports {target} ({names[layer(target)]})"
              for name, targets in sorted(graph().items()) for target in sorted(targets)
              if layer(target) > layer(name)]
    assert [name for name in modules() if layer(name) < 0] == []
    assert upward == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_the_map_names_every_module(name: str) -> None:
    path = modules()[name].relative_to(SOURCE / "dataperf").as_posix()
    assert f"`{path}`" in MAP.read_text(encoding="utf-8"), \
        f"docs/architecture.md does not name {path}: add a line saying its one job"
