"""Export throughput on one core, per format (issue 12: from captures to backtests).

    python bench/export_bench.py        # a Markdown table for the README

For each input: the plain replay (checksums verified), then ``okxbook.capture.export.export`` in
each format, file writing included; frames/s (book frames replayed), rows/s (what the format
writes: table rows, CSV lines, hftbacktest events), and the time against ``orjson.loads`` of the
same frames in the same run (the project's speed yardstick). hftbacktest takes one book, so it
runs on the one-instrument stream only. The synthetic streams come from ``bench/frames.py``.
Best of three runs; no timing is asserted anywhere.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import source, stream_file

from okxbook.capture import iter_frames
from okxbook.capture.export import FORMATS, export
from okxbook.capture.replay import replay

REAL = Path(__file__).resolve().parents[1] / "tests" / "data" / "okx-frames"
L2_TBT = REAL / "bmoscon_cryptofeed/2022-02-28_books-l2-tbt_ed5b535/OKX.ws.1.0"


def best(fn, runs: int = 3) -> tuple[float, object]:
    out, times = None, []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="okxbook-export-bench-"))
    inputs = [stream_file("1x5k", tmp), stream_file("10x5k", tmp), L2_TBT]
    print(f"synthetic streams: {source()}\n")
    print("| input | format | book frames | frames/s | rows | rows/s | × orjson.loads |")
    print("|---|---|---|---|---|---|---|")
    for path in inputs:
        frames = [c.frame for c in iter_frames(path)]
        base, _ = best(lambda: [orjson.loads(f) for f in frames if f[:1] == b"{"])
        seconds, report = best(lambda: replay([path]))
        n = sum(b["frames"] for b in report.books.values())  # type: ignore[attr-defined]
        name = path.name if path.parent == tmp else "real books-l2-tbt (10 books)"
        print(f"| {name} | (replay only) | {n:,} | {n / seconds:,.0f} | | | {seconds / base:.2f} |")
        for fmt in FORMATS:
            if fmt == "hftbacktest" and "1x5k" not in path.name:
                continue
            out = tmp / {"tardis": "o.csv.gz", "hftbacktest": "o.npz", "nautilus": "cat"}.get(
                fmt, f"{fmt}.parquet"
            )

            def run(out: Path = out, fmt: str = fmt) -> object:
                if out.is_dir():
                    shutil.rmtree(out)
                return export([path], out, fmt)

            seconds, result = best(run)
            rows = result.rows  # type: ignore[attr-defined]
            print(
                f"| {name} | {fmt} | {n:,} | {n / seconds:,.0f} | {rows:,} | "
                f"{rows / seconds:,.0f} | {seconds / base:.2f} |",
                flush=True,
            )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
