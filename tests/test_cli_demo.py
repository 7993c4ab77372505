"""``okxbook demo`` (the README's main job) ends by itself once the capture has played, with a
summary that fits 80 columns and ages from the local receive time (issue 9, item 5)."""

from __future__ import annotations

import re
import subprocess
import sys

from okxbook.capture import iter_frames
from okxbook.capture.replay import sample_capture
from okxbook.cli.watch import _served_frames


def test_demo_ends_by_itself_with_a_summary_and_exit_0():
    # The timeout only guards against a hang (the demo used to run its full 120 s).
    proc = subprocess.run(
        [sys.executable, "-m", "okxbook", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    served, keys = _served_frames([c.frame for c in iter_frames(sample_capture())])
    assert f"demo: {len(served)} captured frames served" in out
    applied = int(re.search(r"frames applied (\d+)", out).group(1))
    assert applied == len(served)
    assert f"books live {len(keys)}/{len(keys)}" in out
    assert int(re.search(r"checksums verified (\d+)", out).group(1)) > 0
    assert "mismatches 0" in out and "resyncs 0" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    # ages are local (milliseconds since this process received the change), not since 2022
    ages = [int(m) for m in re.findall(r" (\d+)$", out, re.M)]
    assert ages and max(ages) < 10**8
