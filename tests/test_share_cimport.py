"""``okxbook/share/_shm.pxd`` works from Cython: the README's ``strategy.pyx`` (cimporting
``SharedBook``/``ShmTop``) is compiled here and reads a published book at C level, equal to what
``top_ticks()`` reads, "dead" (-1) once the writer closed. One small module: a few seconds."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import share_helpers as sh

import okxbook
from okxbook.share import Publisher, SharedBooks

ROOT = Path(__file__).resolve().parents[1]


def readme_strategy() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("\n## Books in shared memory\n")
    match = re.compile(r"```cython\n(.*?)```", re.S).search(readme, start)
    assert match is not None
    return "\n".join(line.removeprefix("  ") for line in match.group(1).splitlines()) + "\n"


def test_the_readme_cython_strategy_reads_a_shared_book_at_c_level(tmp_path):
    (tmp_path / "strategy.pyx").write_text(readme_strategy())
    # Where the installed okxbook is (an editable install is not a directory on sys.path).
    env = {**os.environ, "PYTHONPATH": str(Path(okxbook.__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "Cython.Build.Cythonize", "-i", "-q", "strategy.pyx"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    so = next(tmp_path.glob("strategy*.so"))
    spec = importlib.util.spec_from_file_location("strategy", so)
    assert spec is not None and spec.loader is not None
    strategy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(strategy)

    name = f"okxbook-cimport-{uuid.uuid4().hex[:8]}"
    first, second = sh.two_books()  # two states of one book, different at every level
    key = (first.channel, first.inst_id)
    with Publisher(name, [key]) as pub, SharedBooks(name) as shared:
        sb = shared.book(*key)
        for book in (first, second):
            pub.publish(book, "live", 1)
            status, seq_id, bid, _, ask, _ = sb.top_ticks()
            assert status == "live" and seq_id == book.seq_id
            assert strategy.spread_ticks(sb) == (book.seq_id, ask - bid)
            assert ask - bid == book.best_ask_ticks - book.best_bid_ticks
        pub.publish(first, "resyncing", 2)
        assert strategy.spread_ticks(sb) is None  # not live: no reading to trade on
        pub.publish(first, "live", 3)
        spread = first.best_ask_ticks - first.best_bid_ticks
        assert strategy.spread_ticks(sb) == (first.seq_id, spread)
        pub.close()
        assert strategy.spread_ticks(sb) is None  # the writer is gone
