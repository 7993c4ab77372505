"""The test suite on every CPython okxbook supports that this machine has (``.ci/run`` calls it).

    nox -s tests              # 3.11, 3.12, 3.13: each one present gets a fresh venv and a build
    nox -s tests-3.12         # one of them
    nox -s nautilus           # only --format nautilus read back by nautilus_trader (3.12)

An interpreter that is not installed is skipped by nox (``error_on_missing_interpreters`` off);
``.ci/run`` decides which ones must be there. Besides ``PATH``, the pyenv versions under
``~/.pyenv/versions`` are searched, as these machines keep them there.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]

nox.options.sessions = ["tests"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = False


def _add_pyenv_to_path() -> None:
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not versions.is_dir():
        return
    dirs = [str(p / "bin") for p in sorted(versions.iterdir()) if (p / "bin").is_dir()]
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *dirs])


_add_pyenv_to_path()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Build okxbook (in place, for this interpreter) in a fresh venv; run the README's test command."""
    # Builds the extensions in place for this Python. On 3.12 the nautilus extra too, so that
    # tests/test_export_nautilus.py (nautilus_trader needs CPython >= 3.12) runs in this session
    # instead of a second build of its own.
    extras = "test,nautilus" if session.python == "3.12" else "test"
    session.install("-q", "-e", f".[{extras}]")
    # No asyncio debug mode here: .ci/run's 3.11 run has it; on 3.13, dask's LocalCluster (whose
    # workers inherit the variable) never finishes starting under it (test_parallel hangs).
    # Every test runs on every interpreter; on the ones after the first, the long searches are
    # shorter (OKXBOOK_QUICK_SEARCH: Hypothesis 40 examples instead of 200, the soak's storm 5 s
    # instead of 15; tests/conftest.py). They search the core's logic, which is the same C built
    # from the same .pyx on each interpreter: .ci/run's 3.11 run does the full search, and what an
    # interpreter changes (the C API the extensions use, asyncio, the stdlib) is met just as well
    # by the shorter one. It saves about a minute and a half per interpreter on 2 cores.
    env = {"OKXBOOK_QUICK_SEARCH": "1"} if session.python != PYTHONS[0] else {}
    session.run("python", "-m", "pytest", "-q", *session.posargs, env=env)


@nox.session(python="3.12")
def nautilus(session: nox.Session) -> None:
    """The nautilus catalog export read back by the real nautilus_trader (it needs CPython >=
    3.12, so it cannot join the 3.11 run): okxbook built for 3.12 with the ``nautilus`` extra."""
    session.install("-q", "-e", ".[nautilus]", "pytest>=8", "pytest-timeout>=2.3", "pyarrow>=15")
    session.run("python", "-m", "pytest", "-q", "tests/test_export_nautilus.py", *session.posargs)
