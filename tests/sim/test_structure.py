"""The simulator's module structure: imports inside ``mmload/sim`` form no cycle (type-checking
imports included), ``app`` is imported by nothing in the package, and handlers and the WebSocket
touch no private field of another object."""

from __future__ import annotations

import ast
from pathlib import Path

import mmload.sim

SIM = Path(mmload.sim.__file__).parent


def sim_imports(path: Path) -> set[str]:
    """The ``mmload.sim`` modules ``path`` imports (every import statement, at any depth)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mmload.sim":
                out |= {f"mmload.sim.{a.name}" for a in node.names}
            elif node.module.startswith("mmload.sim."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("mmload.sim.")}
    return out


def graph() -> dict[str, set[str]]:
    return {f"mmload.sim.{p.stem}": sim_imports(p) for p in SIM.glob("*.py")}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_inside_the_simulator() -> None:
    edges = graph()
    assert {"mmload.sim.app", "mmload.sim.handlers", "mmload.sim.websocket"} <= set(edges)
    assert find_cycle(edges) is None, find_cycle(edges)


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_server_module_imports_the_app() -> None:
    importers = {m for m, deps in graph().items() if "mmload.sim.app" in deps}
    assert importers <= {"mmload.sim.server"}, importers


def test_handlers_and_websocket_use_no_private_fields_of_other_objects() -> None:
    for name in ("handlers.py", "websocket.py", "hub.py", "request.py"):
        tree = ast.parse((SIM / name).read_text())
        private = [
            f"{name}:{node.lineno}: {ast.unparse(node)}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ]
        assert not private, private
