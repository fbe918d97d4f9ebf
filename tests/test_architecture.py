"""The shape of the package (issue 8): no import cycle among mailbot's modules, no module over 400
lines, at most 6 modules directly in mailbot/ besides the packages.

The import graph is read from the source with `ast`, every import counted, also those inside
functions (a cycle hidden in a function is still a cycle). `python tests/test_architecture.py`
prints the graph's figures and any cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mailbot"
MIGRATIONS = ROOT / "migrations"  # shipped as mailbot.migrations (pyproject.toml)
MAX_LINES = 400
MAX_TOP_LEVEL_MODULES = 6


def source_modules() -> dict[str, Path]:
    """Module name -> file, for mailbot and the migrations it ships."""
    modules = {}
    for base, prefix in ((PACKAGE, "mailbot"), (MIGRATIONS, "mailbot.migrations")):
        for path in sorted(base.rglob("*.py")):
            if base == PACKAGE and (PACKAGE / "migrations") in path.parents:
                continue  # a development symlink to migrations/, counted under its own name
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([prefix, *parts])] = path
    return modules


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Every module name `path` imports, absolute, with `from X import Y` giving X.Y and X."""
    names = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the mailbot modules it imports (a name that is not a module, e.g. a class, falls
    back to the module that defines it)."""
    modules = source_modules()
    graph = {}
    for module, path in modules.items():
        edges = set()
        for name in imported_names(path, module, path.name == "__init__.py"):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def long_modules() -> dict[str, int]:
    counts = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in source_modules().items()}
    return {name: n for name, n in counts.items() if n > MAX_LINES}


def top_level_modules() -> list[str]:
    return sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")


def test_the_cycle_finder_finds_cycles():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mailbot.db import engine\n    from . import sibling\n")
    assert imported_names(module, "mailbot.app.m", False) == {
        "mailbot.db", "mailbot.db.engine", "mailbot.app", "mailbot.app.sibling"}
    assert import_graph()["mailbot.app.cli"] >= {"mailbot.app.options", "mailbot.errors"}


def test_no_import_cycle_among_mailbot_modules():
    assert find_cycles(import_graph()) == []


def test_no_module_over_400_lines():
    assert long_modules() == {}


def test_at_most_6_modules_directly_in_mailbot():
    assert len(top_level_modules()) <= MAX_TOP_LEVEL_MODULES, top_level_modules()


if __name__ == "__main__":
    graph = import_graph()
    cycles = find_cycles(graph)
    print(f"{len(graph)} modules, {sum(len(e) for e in graph.values())} import edges among them")
    print(f"import cycles: {len(cycles)}")
    for cycle in cycles:
        print("  " + " <-> ".join(cycle))
    long = long_modules()
    print(f"modules over {MAX_LINES} lines: {long or 'none'}")
    print(f"modules directly in mailbot/: {len(top_level_modules())} {top_level_modules()}")
    sys.exit(1 if cycles or long or len(top_level_modules()) > MAX_TOP_LEVEL_MODULES else 0)
