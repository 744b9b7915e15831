"""The package's layering, read from the source with ``ast``: no upward import, no cycle.

The layer list lives here, not in the code it checks: bottom first, and a module may import only
from its own layer or a lower one. Every import counts, including those inside functions and
under ``TYPE_CHECKING``; the cycle check is on the module graph of the same imports.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mmload"

# Bottom to top. A name is a module or a package (and everything under it).
LAYERS: list[set[str]] = [
    # The contracts and the bottom of everything: errors, resources, the on-disk record and its
    # HDR lines, the config models with their defaults, and the data files they describe.
    {
        "mmload",
        "mmload.errors",
        "mmload.resources",
        "mmload.net",
        "mmload.files",
        "mmload.record",
        "mmload.hdr",
        "mmload.config",
        "mmload.catalog",
    },
    {"mmload.sim"},
    {"mmload.load"},
    {"mmload.report"},
    {"mmload.provision"},
    {"mmload.configure"},
    {"mmload.lifecycle"},
    {"mmload.campaign"},
    {"mmload.commands", "mmload.cli"},
]

# config/ is the true bottom: beside itself it may import only these (not the catalog, a stage,
# the record or the HDR lines).
CONFIG_MAY_IMPORT = ("mmload.config", "mmload.errors", "mmload.resources")

LOAD_MAX_LINES = 300


def module_name(path: Path, root: Path) -> str:
    """``mmload/load/user/client.py`` -> ``mmload.load.user.client`` (``root`` holds mmload/)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Every Python module under ``root``, by dotted name."""
    return {module_name(p, root.parent): p for p in sorted(root.rglob("*.py"))}


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """The mmload modules ``module`` imports (anywhere in its body), with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_from(node, module, path.name == "__init__.py")
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {imported mmload module: first line}, for every module given."""
    known = set(modules)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(name, path, known):
            if target.split(".")[0] == "mmload" and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def layer_of(module: str) -> int:
    """The index of the layer holding ``module`` (its longest listed prefix)."""
    best, found = -1, None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    if found is None:
        raise AssertionError(f"{module} is in no layer of tests/test_layers.py; add it")
    return found


def upward_imports(graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> list[str]:
    """One line per import of a higher layer."""
    bad = []
    for name, edges in graph.items():
        for target, line in edges.items():
            if layer_of(target) > layer_of(name):
                bad.append(f"{modules[name]}:{line}: {name} imports {target} (a higher layer)")
    return bad


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return all_modules()


@pytest.fixture(scope="module")
def graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    return import_graph(modules)


def test_every_module_is_in_a_layer(modules: dict[str, Path]) -> None:
    for name in modules:
        layer_of(name)


def test_no_upward_import(graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> None:
    bad = upward_imports(graph, modules)
    assert not bad, "\n".join(bad)


def test_config_imports_nothing_above_errors_and_resources(
    graph: dict[str, dict[str, int]],
) -> None:
    bad = [
        f"{name} imports {target}"
        for name, edges in graph.items()
        if name == "mmload.config" or name.startswith("mmload.config.")
        for target in edges
        if not any(target == ok or target.startswith(ok + ".") for ok in CONFIG_MAY_IMPORT)
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle(graph: dict[str, dict[str, int]]) -> None:
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_load_module_over_300_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in sorted((PACKAGE / "load").rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > LOAD_MAX_LINES
    }
    assert not long, f"over {LOAD_MAX_LINES} lines: {long}"


def test_the_checks_catch_a_planted_upward_import_and_cycle(tmp_path: Path) -> None:
    """The walker itself: a function-level upward import and a two-module cycle are found."""
    pkg = tmp_path / "mmload"
    (pkg / "config").mkdir(parents=True)
    (pkg / "load").mkdir()
    for init in ("__init__.py", "config/__init__.py", "load/__init__.py"):
        (pkg / init).write_text("")
    (pkg / "config" / "a.py").write_text("def f():\n    from mmload.load import b\n")
    (pkg / "load" / "b.py").write_text("from ..config import a\n")
    mods = all_modules(pkg)
    planted = import_graph(mods)
    assert planted["mmload.config.a"] == {"mmload.load.b": 2}
    assert planted["mmload.load.b"] == {"mmload.config.a": 1}
    bad = upward_imports(planted, mods)
    assert len(bad) == 1 and "mmload.config.a imports mmload.load.b" in bad[0]
    assert find_cycle(planted) == ["mmload.config.a", "mmload.load.b", "mmload.config.a"]


def test_the_architecture_doc_names_every_package_and_load_module() -> None:
    """docs/architecture.md's module table stays true: each top-level module or package of
    mmload, and each module of ``load/``, is named there."""
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    top = [p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()]
    load = [
        str(p.relative_to(PACKAGE / "load"))
        for p in (PACKAGE / "load").rglob("*.py")
        if p.name != "__init__.py"
    ]
    missing = [f"mmload/{n}" for n in top if n != "__init__.py" and f"mmload/{n}" not in doc]
    missing += [f"load/{n}" for n in load if Path(n).name not in doc]
    assert not missing, f"docs/architecture.md does not name: {', '.join(sorted(missing))}"


def literal_defaults(path: Path) -> list[str]:
    """Literal defaults in a command module: a ``default=`` that is a number or a string (other
    than ``-``, stdin/stdout), or a module-level number; the models are their only home."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                value = kw.value
                if (
                    kw.arg == "default"
                    and isinstance(value, ast.Constant)
                    and not isinstance(value.value, bool | type(None))
                    and value.value != "-"
                ):
                    found.append(f"{path.name}:{value.lineno}: default={value.value!r}")
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, int | float)
            and not isinstance(stmt.value.value, bool)
        ):
            found.append(f"{path.name}:{stmt.lineno}: a module-level number")
    return found


def test_commands_take_their_defaults_from_the_models() -> None:
    found = [f for p in sorted((PACKAGE / "commands").glob("*.py")) for f in literal_defaults(p)]
    assert not found, "\n".join(found)


def test_the_defaults_check_sees_a_planted_literal(tmp_path: Path) -> None:
    planted = tmp_path / "cmd.py"
    planted.write_text(
        "import click\nRETRIES = 3\n"
        "@click.option('--port', default=8065)\n@click.option('--out', default='-')\n"
        "@click.option('--yes', is_flag=True, default=False)\ndef f(port, out, yes): ...\n"
    )
    assert literal_defaults(planted) == [
        "cmd.py:3: default=8065",
        "cmd.py:2: a module-level number",
    ]


def bound_names(tree: ast.Module) -> set[str]:
    """The names a module binds at its top level (also under if/try/with/for there)."""
    names: set[str] = set()

    def visit(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(s.name)
            elif isinstance(s, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = s.targets if isinstance(s, ast.Assign) else [s.target]
                names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            elif isinstance(s, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in s.names)
            elif isinstance(s, ast.If | ast.Try | ast.With | ast.For):
                for block in (s.body, getattr(s, "orelse", []), getattr(s, "finalbody", [])):
                    visit(block)
                for handler in getattr(s, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


def unresolved_imports(importers: list[Path], modules: dict[str, Path]) -> list[str]:
    """``from mmload.x import name`` where x has no such name or submodule (function-level
    imports included: they fail only when the function runs)."""
    bound = {m: bound_names(ast.parse(p.read_text(encoding="utf-8"))) for m, p in modules.items()}
    bad = []
    for path in importers:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level and node.module in modules:
                bad += [
                    f"{path}:{node.lineno}: {node.module} has no {a.name}"
                    for a in node.names
                    if a.name != "*"
                    and a.name not in bound[node.module]
                    and f"{node.module}.{a.name}" not in modules
                ]
            elif isinstance(node, ast.Import):
                bad += [
                    f"{path}:{node.lineno}: no module {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] == "mmload" and a.name not in modules
                ]
    return bad


def test_every_mmload_import_resolves(modules: dict[str, Path]) -> None:
    root = PACKAGE.parent
    importers = [p for d in ("mmload", "tests", "bench") for p in sorted((root / d).rglob("*.py"))]
    bad = unresolved_imports(importers, modules)
    assert not bad, "\n".join(bad)


def test_the_resolver_sees_a_removed_name(tmp_path: Path, modules: dict[str, Path]) -> None:
    planted = tmp_path / "late.py"
    planted.write_text(
        "def f():\n    from mmload.provision.render import no_such_function\n"
        "    from mmload.config import loader\n    import mmload.no_such_module\n"
    )
    assert unresolved_imports([planted], modules) == [
        f"{planted}:2: mmload.provision.render has no no_such_function",
        f"{planted}:4: no module mmload.no_such_module",
    ]
