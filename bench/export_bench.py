"""Export throughput on one core, per format (issue 12: from captures to backtests).

    python bench/export_bench.py            # a Markdown table for the README
    python bench/export_bench.py --long 40000   # month-scale: time and peak RSS vs stream length

For each input: the plain replay (checksums verified), then ``okxbook.capture.export.export`` in
each format, file writing included; frames/s (book frames replayed), rows/s (what the format
writes: table rows, CSV lines, hftbacktest events), and the time against ``orjson.loads`` of the
same frames in the same run (the project's speed yardstick). hftbacktest takes one book, so it
runs on the one-instrument stream only. The synthetic streams come from ``bench/frames.py``.
Best of three runs; no timing is asserted anywhere.

``--long N``: one ``books-l2-tbt`` instrument from ``okxbook.testing.synthetic_stream`` (N updates,
400 levels a side; generated once and cached under the temp dir), exported in every delta-based
format from its first N/4 and all N frames, each export in a fresh process: seconds, frames/s,
rows/s and the process's peak RSS, so memory that grew with the stream would show.
"""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    from frames import source, stream_file  # not in --one's children: it holds the streams

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


def one(fmt: str, src: str, out: str) -> None:
    """Child process of ``--long``: one export, a JSON line with its time, rows and peak RSS."""
    t0 = time.perf_counter()
    result = export([src], out, fmt, verify_checksum=True)
    seconds = time.perf_counter() - t0
    frames = sum(b["frames"] for b in result.report.books.values())  # type: ignore[attr-defined]
    # VmHWM: this process's own peak (ru_maxrss survives exec, so it would show the parent's).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) * 1024
    print(json.dumps({"s": seconds, "rows": result.rows, "frames": frames, "rss": rss}))


def long_stream(updates: int, tmp: Path) -> tuple[Path, Path]:
    from okxbook.testing import synthetic_stream

    cache = Path(tempfile.gettempdir()) / f"okxbook-bench-l2tbt-{updates}.jsonl"
    if not cache.exists():
        frames = synthetic_stream(["BTC-USDT"], updates, channel="books-l2-tbt")
        cache.write_bytes(b"\n".join(frames) + b"\n")
    quarter = tmp / f"l2tbt-{updates // 4}.jsonl"
    with cache.open("rb") as fh, quarter.open("wb") as out:
        for _ in range(updates // 4 + 1):
            out.write(fh.readline())
    return quarter, cache


def main_long(updates: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="okxbook-export-bench-"))
    print("| input | format | book frames | seconds | frames/s | rows | rows/s | peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for src in long_stream(updates, tmp):
        for fmt in ("deltas", "tardis", "hftbacktest", "nautilus"):
            out = tmp / {"tardis": "o.csv.gz", "hftbacktest": "o.npz", "nautilus": "cat"}.get(
                fmt, f"{fmt}.parquet"
            )
            if out.is_dir():
                shutil.rmtree(out)
            proc = subprocess.run(
                [sys.executable, __file__, "--one", fmt, str(src), str(out)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(
                f"| {src.name} | {fmt} | {r['frames']:,} | {r['s']:.1f} | "
                f"{r['frames'] / r['s']:,.0f} | {r['rows']:,} | {r['rows'] / r['s']:,.0f} | "
                f"{r['rss'] / 2**20:,.0f} MiB |",
                flush=True,
            )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        one(*sys.argv[2:5])
    elif sys.argv[1:2] == ["--long"]:
        main_long(int(sys.argv[2]))
    else:
        main()
