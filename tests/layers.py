"""okxbook's import rules as data, and a checker that reads the source tree (no import is run).

The table below is the one place the layering is written down for the machine; docs/architecture.md
says the same in prose and points here. ``tests/test_architecture.py`` runs the checker on the real
tree (it must find nothing) and on planted violations (it must find each one).

What counts as an import: every ``import``/``from ... import`` in a ``.py`` file, wherever it sits
(module level, inside a function, under ``if TYPE_CHECKING:``), and every ``cimport``/``import`` line
of a ``.pyx``/``.pxd`` file. ``.pyi`` stubs are not read (they describe, they do not import).
``from okxbook import okx`` is an import of ``okxbook.okx`` (a module); ``from okxbook import Book``
is an import of the package root ``okxbook``.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "okxbook"

# Layer -> the modules it holds, as fnmatch patterns over dotted module names ("*" also matches
# dots). The most specific (longest) matching pattern decides; a module that matches none is itself
# an error: a new module gets a layer here.
LAYERS: dict[str, tuple[str, ...]] = {
    # OKX facts and the error types: what every layer, even the independent reference, may read.
    "facts": ("okxbook.okx", "okxbook.errors"),
    # The Cython book engine and the Python pieces it needs.
    "core": (
        "okxbook._wire",
        "okxbook._sbe",
        "okxbook._level",
        "okxbook._checksum",
        "okxbook._book",
        "okxbook._books",
        "okxbook._deltas",
        "okxbook.deltas",
        "okxbook._query",
        "okxbook.events",
        "okxbook._compat",
    ),
    "feed": ("okxbook.feed", "okxbook.feed.*"),
    # Books in shared memory across processes (issue 11): the segment, its life, the feed glue.
    "share": ("okxbook.share", "okxbook.share.*"),
    "capture": ("okxbook.capture", "okxbook.capture.*"),
    # Deltas to other hosts over a messaging library (ZeroMQ first; issue 11).
    "publish": ("okxbook.publish", "okxbook.publish.*"),
    # The OKX endpoint protocol shared by `capture.serve` and `testing.LocalExchange` (issue 8).
    "endpoint": ("okxbook.endpoint*",),
    "testing": ("okxbook.testing", "okxbook.testing.*"),
    "cli": ("okxbook.cli", "okxbook.cli.*"),
    "main": ("okxbook.__main__",),
    # The package root re-exports the public API.
    "root": ("okxbook",),
}

# Layer -> the layers its modules may import (a layer always may import itself, except as noted).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "facts": frozenset({"facts"}),
    "core": frozenset({"facts", "core"}),
    "feed": frozenset({"facts", "core", "feed"}),
    "share": frozenset({"facts", "core", "feed", "share"}),
    "capture": frozenset({"facts", "core", "capture", "endpoint"}),
    "publish": frozenset({"facts", "core", "feed", "publish"}),
    # The endpoint module serves the independent reference too, so it may not lean on the core.
    "endpoint": frozenset({"facts", "endpoint"}),
    # The exchange side checks the core independently: it never imports it.
    "testing": frozenset({"facts", "endpoint", "testing"}),
    "cli": frozenset(
        {
            "facts",
            "core",
            "feed",
            "share",
            "capture",
            "endpoint",
            "testing",
            "publish",
            "cli",
            "root",
        }
    ),
    "main": frozenset({"cli"}),
    "root": frozenset({"facts", "core", "capture"}),
}

# Imports the rules forbid but the design accepts, each with its reason: (importer, imported).
ALLOWED: dict[tuple[str, str], str] = {
    ("okxbook.capture.export", "okxbook"): (
        "reads okxbook.__version__ (the one home of the version) for the Parquet metadata, "
        "lazily inside a function"
    ),
}

# Violations present in the tree today that issue 8's other parts remove. The checker tolerates
# exactly these; once one is gone, its entry here is reported as stale and must be deleted.
KNOWN: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        try:
            return f"{self.path.relative_to(root)}:{self.line}"
        except ValueError:
            return f"{self.path}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """``root/okxbook/feed/feed.py`` -> ``okxbook.feed.feed``; ``__init__`` is its package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path, package: str = PACKAGE) -> list[Path]:
    base = root / package
    return sorted(
        p
        for p in base.rglob("*")
        if p.suffix in (".py", ".pyx", ".pxd") and p.is_file() and "__pycache__" not in p.parts
    )


def all_modules(root: Path, package: str = PACKAGE) -> set[str]:
    """Every module, including Cython declaration-only ones (a lone .pxd, like ``_level``)."""
    return {module_name(p, root) for p in source_files(root, package)}


def runtime_modules(root: Path, package: str = PACKAGE) -> set[str]:
    """The modules Python can import: a .py, or a .pyx built into an extension."""
    return {module_name(p, root) for p in source_files(root, package) if p.suffix != ".pxd"}


def _resolve_from(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _targets(base: str, names: Iterable[str], modules: set[str]) -> list[str]:
    """``from base import a, b``: each name that is a module is an import of it; any other name
    is an import of ``base`` itself."""
    out = []
    for name in names:
        sub = f"{base}.{name}"
        out.append(sub if sub in modules else base)
    return out


def _py_imports(path: Path, module: str, modules: set[str]) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_bytes(), filename=str(path))
    is_package = path.stem == "__init__"
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(module, is_package, node.level, node.module)
            names = [a.name for a in node.names]
            out.extend((t, node.lineno) for t in _targets(base, names, modules))
    return out


_TRIPLE = re.compile(r"'''|\"\"\"")
_FROM = re.compile(r"^\s*from\s+(\.*[\w.]*)\s+c?import\s+\(?\s*([\w\s,]*)")
_IMPORT = re.compile(r"^\s*c?import\s+([\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)")


def _cython_imports(path: Path, module: str, modules: set[str]) -> list[tuple[str, int]]:
    """``cimport``/``import`` statements of a .pyx/.pxd, read line by line outside strings."""
    out: list[tuple[str, int]] = []
    in_string = False
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        quotes = len(_TRIPLE.findall(raw))
        was_in_string = in_string
        if quotes % 2:
            in_string = not in_string
        if was_in_string or (quotes and raw.lstrip()[:3] in ('"""', "'''")):
            continue
        line = raw.split("#", 1)[0]
        if m := _FROM.match(line):
            dots = len(m.group(1)) - len(m.group(1).lstrip("."))
            base = _resolve_from(module, False, dots, m.group(1).lstrip(".") or None)
            names = [n.split()[0] for n in m.group(2).split(",") if n.strip()]
            out.extend((t, lineno) for t in _targets(base, names or [""], modules))
        elif m := _IMPORT.match(line):
            for item in m.group(1).split(","):
                out.append((item.split()[0], lineno))
    return out


def collect_imports(root: Path, package: str = PACKAGE) -> list[Import]:
    """Every import of a module of ``package`` by a module of ``package`` (self-imports left out)."""
    modules = all_modules(root, package)
    found: dict[Import, None] = {}  # ordered, one entry per statement and module
    for path in source_files(root, package):
        module = module_name(path, root)
        read = _py_imports if path.suffix == ".py" else _cython_imports
        for imported, line in read(path, module, modules):
            if imported.rstrip(".") == package or imported.startswith(package + "."):
                imported = imported.rstrip(".")
                if imported != module:
                    found[Import(module, imported, path, line)] = None
    return list(found)


def layer_of(module: str, layers: Mapping[str, tuple[str, ...]] = LAYERS) -> str | None:
    best: tuple[int, str] | None = None
    for layer, patterns in layers.items():
        for pattern in patterns:
            if fnmatch.fnmatchcase(module, pattern):
                if best is None or len(pattern) > best[0]:
                    best = (len(pattern), layer)
    return best[1] if best else None


def find_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module, as one cycle through it
    (rotated to start at its smallest name), found by Tarjan's algorithm."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    cycles = []
    for comp in components:
        members = set(comp)
        # One concrete cycle: a shortest path back to the smallest member (breadth first).
        start = comp[0]
        prev: dict[str, str] = {}
        frontier = [start]
        found = None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & members):
                    if w == start:
                        found = v
                        break
                    if w not in prev:
                        prev[w] = v
                        nxt.append(w)
                if found:
                    break
            frontier = nxt
        path = [found] if found else []
        while path and path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append([*reversed(path), start])
    return sorted(cycles)


def violations(
    root: Path,
    *,
    package: str = PACKAGE,
    layers: Mapping[str, tuple[str, ...]] = LAYERS,
    may_import: Mapping[str, frozenset[str]] = MAY_IMPORT,
    allowed: Mapping[tuple[str, str], str] = ALLOWED,
) -> dict[str, list[str]]:
    """Every broken rule in the tree under ``root``: key -> where it happens. Keys are
    ``"a -> b"`` for a layer violation, ``"cycle: a -> b -> a"`` and ``"no layer: m"``."""
    out: dict[str, list[str]] = {}
    for module in sorted(all_modules(root, package)):
        if layer_of(module, layers) is None:
            out.setdefault(f"no layer: {module}", []).append("add it to LAYERS")
    imports = collect_imports(root, package)
    for imp in imports:
        src, dst = layer_of(imp.importer, layers), layer_of(imp.imported, layers)
        if src is None or (imp.importer, imp.imported) in allowed:
            continue
        if dst is None or dst not in may_import.get(src, frozenset()):
            key = f"{imp.importer} -> {imp.imported}"
            out.setdefault(key, []).append(f"{imp.where(root)} ({src} may not import {dst})")
    for cycle in find_cycles((i.importer, i.imported) for i in imports):
        out[f"cycle: {' -> '.join(cycle)}"] = [
            next(i.where(root) for i in imports if (i.importer, i.imported) == (a, b))
            for a, b in zip(cycle, cycle[1:])
        ]
    return out
