"""The README's examples for issue 11 (book queries, deltas in the book and in the feeder, ZeroMQ,
latency, shared-memory books, and the SBE feed with its latency split), and the exports' notebook
example (issue 12), run as written (each block
as a script in a fresh interpreter) and print what they promise; every ```python block of these
sections is listed here, so a new example cannot go untested."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```python\n(.*?)```", re.S)

#: (heading, the next heading, the pattern each of the section's blocks prints, in order).
SECTIONS = [
    ("## Book queries", "## Live feed", [r"^-?\d+ live \["]),
    (
        "## Deltas",
        "### In the feeder",
        [
            r"^BTC-USDT \d+ \d+ \d+ (insert|update|delete|clear|-)$",
            r"^290 frames \d+ level changes",
        ],
    ),
    ("### In the feeder", "### To other hosts: ZeroMQ", [r"^\d+ frames changed a level$"]),
    ("### To other hosts: ZeroMQ", "## Latency", [r"^live \d+ \[.*\] gaps \d+$"]),
    ("## Latency", "## Books in shared memory", [r"latency p50/p99/max over 10s: network"]),
    ("## Books in shared memory", "## Binary market data (SBE)", [r"^\d+ \d+\.\d+ \d+\.\d+$"]),
    (
        "## Binary market data (SBE)",
        "## Capture and replay",
        [r"^engine_to_gateway p50 1\d\d\.\d+ us$"],
    ),
    # issue 12: the notebook-style look at a capture (Polars, DuckDB, an hftbacktest run)
    ("## Exports for research and backtests", "## Benchmarks", [r"update\W+\d+"]),
]


def blocks_of(heading: str, until: str) -> list[str]:
    start = README.index(f"\n{heading}\n")
    end = README.index(f"\n{until}\n", start)
    return BLOCK.findall(README, start, end)


CASES = [
    pytest.param(block, expect, id=f"{heading.strip('# ')}-{i}")
    for heading, until, expects in SECTIONS
    for i, (block, expect) in enumerate(zip(blocks_of(heading, until), expects, strict=True))
]


@pytest.mark.parametrize(("block", "expect"), CASES)
def test_the_readme_example_runs(block, expect, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(block)
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(expect, done.stdout, re.M), done.stdout
