"""The house's layout: no import circle inside ``rewardkit/`` or the trainer, and the SDK
never imports the trainer.

Imports are read with ``ast`` (nothing is imported), relative imports are resolved, and
every import counts wherever it stands: at module level, inside a function, or under
``TYPE_CHECKING``. A function-level import only delays a circle to the first call; the
two modules still cannot be understood (or moved) one without the other.
An edge goes to the module named; ``from pkg import name`` goes to ``pkg.name`` when that
is a module, else to ``pkg`` itself. Importing a submodule does not add an edge to its
parent package's ``__init__`` (Python runs it, but that is no design tie).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"rewardkit": ROOT / "rewardkit", "rewardkit_trainer": ROOT / "trainer" / "rewardkit_trainer"}


def _modules() -> dict[str, Path]:
    out = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([name, *parts])] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """First-party modules that ``module`` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    # keep first-party names, cut to the longest known module
    edges = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            edges.add(name)
    return edges


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {m: _imports(m, p, known) for m, p in mods.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    circles = _circles(_graph())
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_sdk_never_imports_the_trainer():
    graph = _graph()
    bad = {m: sorted(t for t in ts if t.startswith("rewardkit_trainer")) for m, ts in graph.items()
           if m.startswith("rewardkit.") or m == "rewardkit"}
    assert not {m: ts for m, ts in bad.items() if ts}
    # also names outside the graph (a lazy import of a trainer name the graph may not know)
    for path in PACKAGES["rewardkit"].rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not any(n.split(".")[0] == "rewardkit_trainer" for n in names), path


@pytest.mark.parametrize("files, expected", [
    ({"a": "from . import b", "b": "def f():\n    from .a import x"}, [["p.a", "p.b"]]),
    ({"a": "import p.b", "b": "import p.c", "c": "from .a import y"}, [["p.a", "p.b", "p.c"]]),
    ({"a": "from .b import f", "b": "import os"}, []),
])
def test_the_checker_finds_circles(tmp_path, monkeypatch, files, expected):
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, src in files.items():
        (pkg / f"{name}.py").write_text(src + "\n")
    monkeypatch.setitem(globals(), "PACKAGES", {"p": pkg})
    assert _circles(_graph()) == expected
