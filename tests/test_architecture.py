"""The layers the folders show are the layers the imports keep (docs/architecture.md).

The rules are the table in ``tests/layers.py``; the checker there reads every ``.py``, ``.pyx`` and
``.pxd`` of the package without importing it. Here: the real tree breaks no rule and has no import
cycle, the checker catches each kind of violation planted in a fake tree, and every module imports
on its own in a fresh interpreter (no hidden dependence on import order).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import layers
import pytest

from okxbook import _compat

REPO = Path(__file__).resolve().parents[1]


def describe(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{key}\n    " + "\n    ".join(where) for key, where in sorted(found.items()))


def test_the_tree_keeps_every_import_rule():
    found = layers.violations(REPO)
    new = {k: v for k, v in found.items() if k not in layers.KNOWN}
    assert not new, "import rule broken (tests/layers.py, docs/architecture.md):\n" + describe(new)


def test_known_violations_are_still_there_or_their_entries_go():
    """The ratchet: a violation issue 8 removes must leave tests/layers.py KNOWN with it."""
    found = layers.violations(REPO)
    stale = sorted(set(layers.KNOWN) - set(found))
    assert not stale, f"fixed, so delete from layers.KNOWN: {stale}"


def test_every_layer_has_its_rules_and_every_module_a_layer():
    assert set(layers.MAY_IMPORT) == set(layers.LAYERS)
    for allowed in layers.MAY_IMPORT.values():
        assert allowed <= set(layers.LAYERS)
    modules = layers.all_modules(REPO)
    assert {"okxbook._book", "okxbook.feed.feed", "okxbook.capture._series"} <= modules
    assert all(layers.layer_of(m) is not None for m in modules), [
        m for m in modules if layers.layer_of(m) is None
    ]
    assert all(m in modules for m, _ in layers.ALLOWED), "an ALLOWED entry names no module"


def test_the_checker_reads_cython_cimports_of_the_real_tree():
    edges = {(i.importer, i.imported) for i in layers.collect_imports(REPO)}
    # _books.pyx: `from okxbook._book cimport Book`; _series.pxd: `from okxbook._book cimport Book`
    assert ("okxbook._books", "okxbook._book") in edges
    assert ("okxbook.capture._series", "okxbook._book") in edges
    assert ("okxbook._wire", "okxbook._level") in edges


# --------------------------------------------------------------------------- planted violations


def plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


CLEAN = {
    "okxbook/__init__.py": "from ._book import Book\nfrom . import errors\n",
    "okxbook/__main__.py": "from .cli import main\n",
    "okxbook/errors.py": "",
    "okxbook/okx.py": "",
    "okxbook/events.py": "from .errors import FrameError\n",
    "okxbook/_level.pxd": "from libc.stdint cimport int64_t\n",
    "okxbook/_book.pxd": "from okxbook._level cimport Side\n",
    "okxbook/_book.pyx": '''\
        """A docstring that mentions
        from okxbook.cli import main
        is not an import."""
        from okxbook._level cimport Level, Side  # a comment: from okxbook.feed import x
        from okxbook.errors import (ChecksumError,
                                    FrameError)
        from okxbook import okx
    ''',
    "okxbook/_books.pyx": "from okxbook._book cimport Book\n",
    "okxbook/endpoint.py": "from okxbook import errors, okx\n",
    "okxbook/feed/__init__.py": "from .feed import Feed\n",
    "okxbook/feed/feed.py": "from okxbook._books import Books\nfrom .a import A\n",
    "okxbook/feed/a.py": "from okxbook.events import Pong\n",
    "okxbook/feed/b.py": "from . import a\n",
    "okxbook/capture/__init__.py": "from .files import iter_frames\n",
    "okxbook/capture/files.py": "",
    "okxbook/capture/serve.py": "from okxbook.endpoint import serve\nfrom ..okx import CHANNELS\n",
    "okxbook/capture/_series.pxd": "from okxbook._book cimport Book\n",
    "okxbook/testing/__init__.py": "from .exchange import LocalExchange\n",
    "okxbook/testing/exchange.py": "from okxbook import okx\nimport okxbook.endpoint\n",
    "okxbook/cli/__init__.py": "import okxbook.feed, okxbook.testing\nfrom okxbook import Book\n",
}


def test_the_checker_passes_a_clean_fake_tree(tmp_path):
    root = plant(tmp_path, CLEAN)
    assert layers.violations(root) == {}
    edges = {(i.importer, i.imported) for i in layers.collect_imports(root)}
    # the docstring and the comment in _book.pyx are not imports; the parenthesised one is
    assert ("okxbook._book", "okxbook.cli") not in edges
    assert ("okxbook._book", "okxbook.feed") not in edges
    assert ("okxbook._book", "okxbook.errors") in edges
    assert ("okxbook._book", "okxbook.okx") in edges  # `from okxbook import okx`: the module
    assert ("okxbook.cli", "okxbook") in edges  # `from okxbook import Book`: the package root
    assert ("okxbook.capture.serve", "okxbook.okx") in edges  # `from ..okx import`, resolved


def test_the_checker_fails_on_each_planted_violation(tmp_path):
    files = dict(CLEAN)
    files.update(
        {
            # core -> feed, in a Cython cimport
            "okxbook/_book.pyx": CLEAN["okxbook/_book.pyx"] + "from okxbook.feed.feed cimport F\n",
            # feed -> cli, lazily inside a function
            "okxbook/feed/feed.py": CLEAN["okxbook/feed/feed.py"]
            + "def run():\n    from okxbook.cli import main\n",
            # a cycle closed by a TYPE_CHECKING import
            "okxbook/feed/a.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
            ),
            # testing -> core, through `from okxbook import <module>`
            "okxbook/testing/exchange.py": "from okxbook import _books, okx\n",
            # capture -> feed
            "okxbook/capture/serve.py": "import okxbook.feed\n",
            # endpoint -> core
            "okxbook/endpoint.py": "from okxbook._books import Books\n",
            # a module with no layer
            "okxbook/sneaky.py": "",
            # something imports cli
            "okxbook/capture/files.py": "from okxbook.cli import main\n",
        }
    )
    found = layers.violations(plant(tmp_path, files))
    assert set(found) == {
        "okxbook._book -> okxbook.feed.feed",
        "okxbook.feed.feed -> okxbook.cli",
        "cycle: okxbook.feed.a -> okxbook.feed.b -> okxbook.feed.a",
        "okxbook.testing.exchange -> okxbook._books",
        "okxbook.capture.serve -> okxbook.feed",
        "okxbook.endpoint -> okxbook._books",
        "no layer: okxbook.sneaky",
        "okxbook.capture.files -> okxbook.cli",
        # the planted core -> feed -> cli imports close a loop through cli's `from okxbook import`
        "cycle: okxbook -> okxbook._book -> okxbook.feed.feed -> okxbook.cli -> okxbook",
    }, describe(found)
    assert found["okxbook._book -> okxbook.feed.feed"] == [
        "okxbook/_book.pyx:8 (core may not import feed)"
    ]
    assert found["cycle: okxbook.feed.a -> okxbook.feed.b -> okxbook.feed.a"] == [
        "okxbook/feed/a.py:3",
        "okxbook/feed/b.py:1",
    ]


def test_an_allowed_exception_needs_its_entry(tmp_path):
    files = dict(CLEAN)
    files["okxbook/capture/files.py"] = "def version():\n    from okxbook import __version__\n"
    root = plant(tmp_path, files)
    assert set(layers.violations(root, allowed={})) == {"okxbook.capture.files -> okxbook"}
    assert layers.violations(root, allowed={("okxbook.capture.files", "okxbook"): "why"}) == {}


def test_find_cycles_reports_one_path_per_knot():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("x", "y")]
    assert layers.find_cycles(edges) == [["a", "b", "c", "a"], ["d", "e", "d"]]
    assert layers.find_cycles([("a", "b"), ("b", "c")]) == []


# --------------------------------------------------------------------------- imports alone


def importable_modules() -> list[str]:
    """Every module of the package (``__main__`` runs the CLI, it is checked by ``-m`` below)
    and every old import path ``okxbook._compat`` keeps."""
    modules = layers.runtime_modules(REPO) - {"okxbook.__main__"}
    return sorted(modules | set(_compat.MOVED))


def import_alone(module: str) -> tuple[str, int, str]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib, sys; importlib.import_module(sys.argv[1])",
            module,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return module, proc.returncode, proc.stderr[-2000:]


# One fresh interpreter imports okxbook's heavy third-party dependencies (numpy alone is 0.2 s of
# each import), checks that no okxbook module is loaded, then forks once per module: each child
# is a process in which no okxbook module was ever imported, and imports the one module. The same
# check as an interpreter per module, in a fraction of the time.
_FORK_IMPORTER = r"""
import importlib, json, os, sys, traceback
for name in ("numpy", "orjson", "websockets", "httpx", "rich"):
    importlib.import_module(name)
assert not [m for m in sys.modules if m == "okxbook" or m.startswith("okxbook.")]
for module in sys.argv[1:]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code, text = 0, b""
        try:
            importlib.import_module(module)
        except BaseException:
            code, text = 1, traceback.format_exc().encode()[-2000:]
        os.write(w, text)
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    print(json.dumps([module, rc, err]), flush=True)
"""


def import_each_alone(modules: list[str]) -> list[tuple[str, int, str]]:
    if not hasattr(os, "fork"):  # no fork (Windows): an interpreter per module
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(import_alone, modules))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _FORK_IMPORTER, *modules],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [tuple(json.loads(line)) for line in proc.stdout.splitlines()]
    assert [r[0] for r in results] == modules
    return results


def test_each_module_imports_alone_in_a_fresh_interpreter():
    results = import_each_alone(importable_modules())
    failed = [f"{m} (exit {rc}):\n{err}" for m, rc, err in results if rc != 0]
    assert not failed, "\n".join(failed)


def test_the_fork_importer_reports_a_module_that_cannot_import_alone(tmp_path, monkeypatch):
    (tmp_path / "okxbook_planted_bad.py").write_text("import okxbook.no_such_module\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    [(module, rc, err)] = import_each_alone(["okxbook_planted_bad"])
    assert rc == 1 and "okxbook.no_such_module" in err


def test_python_dash_m_okxbook_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "okxbook", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()


@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_old_import_paths_are_the_new_modules(old):
    import importlib

    assert importlib.import_module(old) is importlib.import_module(_compat.MOVED[old])


@pytest.mark.parametrize("old", sorted(_compat.MOVED))
def test_an_old_import_path_leaves_the_module_its_own_spec(old):
    """Importing the old name must not re-label the module: its ``__spec__`` stays its own, so
    its relative imports (which warn when ``__package__ != __spec__.parent``) and ``reload()``
    keep working (regression: the alias spec overwrote it)."""
    import importlib

    module = importlib.import_module(old)
    assert module.__spec__.name == _compat.MOVED[old] == module.__name__
    assert module.__spec__.parent == module.__package__


def test_the_version_has_one_home():
    """pyproject.toml reads the version from okxbook/__init__.py; the installed metadata agrees."""
    import importlib.metadata
    import tomllib

    import okxbook

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("okxbook") == okxbook.__version__
