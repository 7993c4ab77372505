"""The README's examples for book queries, latency and shared-memory books run as written (each
block as a script in a fresh interpreter) and print what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def block_after(heading: str) -> str:
    start = README.index(f"\n{heading}\n")
    match = re.compile(r"```python\n(.*?)```", re.S).search(README, start)
    assert match is not None, heading
    return match.group(1)


@pytest.mark.parametrize(
    ("heading", "expect"),
    [
        ("## Book queries", r"^-?\d+ live \["),
        ("## Latency", r"latency p50/p99/max over 10s: network"),
        ("## Books in shared memory", r"^\d+ \d+\.\d+ \d+\.\d+$"),
    ],
)
def test_the_readme_example_runs(heading, expect, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(block_after(heading))
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
