"""The package's shape: no import cycle, no module reading another's private attributes, and
no module much over 500 lines (the stages of the pipeline each own one concern)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "daemon"
MAX_LINES = 520
# namedtuple's public API is spelled with a leading underscore.
NAMEDTUPLE_API = {"_asdict", "_replace", "_fields", "_make"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the package that ``name`` imports (at any level, TYPE_CHECKING included)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            wanted.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            wanted.add(base)
            wanted.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in wanted if module in known and module != name}


def test_no_import_cycle() -> None:
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    # A package's __init__ re-exporting its own modules is not a cycle of the design.
    graph = {
        name: {m for m in deps if not (m.startswith(name + ".") or name.startswith(m + "."))}
        for name, deps in graph.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def private_reads(path: Path) -> list[str]:
    """``something._name`` where something is not self or cls: another object's privates."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or attr.startswith("__") or attr in NAMEDTUPLE_API:
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: .{attr}")
    return found


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_reads_another_objects_private_attributes(name: str) -> None:
    assert private_reads(modules()[name]) == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_a_daemon_on_sqlite_loads_no_database_driver_nor_decoder() -> None:
    """psycopg (10 MiB), PyAV and numpy are loaded when a journal URL, a conversion or a mix
    needs them, not by every daemon: the memory rows of the benchmark have 80 MiB in all."""
    probe = (
        "import sys, daemon.service, daemon.commands.run; "
        "print(sorted(m for m in ('psycopg', 'psycopg_pool', 'av', 'numpy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        cwd=PACKAGE.parent,
    )  # fmt: skip
    assert loaded.stdout.strip() == "[]"
