"""No import cycle in tools/: every import counts, module-level or inside a function (a lazy
import hides a cycle from Python, not from a reader). One case per cycle found, so each is
named; a clean tree yields the single `none` case."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _modules() -> dict[str, Path]:
    mods = {}
    for f in TOOLS.rglob("*.py"):
        parts = list(f.relative_to(TOOLS).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the tools/ modules it imports (a package's own parents excluded: importing
    `a.b.c` runs `a/__init__` and `a/b/__init__` first by design)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for n in ast.walk(ast.parse(f.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(n, ast.Import):
                names = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - n.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in n.names]
            for x in names:
                while x and x not in mods:
                    x = x.rpartition(".")[0]
                if x and x != m and not m.startswith(x + "."):
                    graph[m].add(x)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """One path per back edge of a depth-first search (every cycle shows up in at least one)."""
    state: dict[str, int] = {}
    stack: list[str] = []
    found: set[str] = set()

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                found.add(" -> ".join([*stack[stack.index(v):], v]))
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u)
    return sorted(found)


def test_cycle_finder_finds_a_function_level_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert cycles(graph) == ["a -> b -> c -> a"]


def _cases() -> list[object]:
    found = cycles(import_graph())
    if not found:
        return [pytest.param(None, id="none")]
    return [pytest.param(c, id=c.replace(" -> ", ">")) for c in found]


@pytest.mark.parametrize("cycle", _cases())
def test_no_import_cycle(cycle: str | None) -> None:
    assert cycle is None, f"import cycle: {cycle}"
