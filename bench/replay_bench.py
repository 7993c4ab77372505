"""Replay throughput, file reading and decompression included (issue: capture and replay at scale).

    python bench/replay_bench.py        # Markdown tables for the README

1. One core: ``okxbook.replay.replay`` (checksums verified) on the synthetic streams, plain and
   gzip, and on the real captures; frames/s and level updates/s (every bids/asks entry of every
   book frame, counted from the frames themselves).
2. Many files: ``okxbook.parallel.replay_many`` (replay + TopSeries + Parquet per file) with 1 and 2
   worker processes on 8 plain + 8 gzip copies of ``frames_10x5k.jsonl``, pool start-up included.
The synthetic streams come from ``bench/frames.py`` (generated unless ``OKXBOOK_BENCH_FRAMES`` says
otherwise); the real captures are the repository's ``tests/data/okx-frames``.
Best of several runs; no timing is asserted anywhere.
"""

from __future__ import annotations

import gzip
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
from okxbook.capture.parallel import replay_many
from okxbook.capture.replay import replay

REAL = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "tests" / "data" / "okx-frames").rglob("*")
    if p.is_file() and p.suffix not in (".txt", ".md") and "update" not in p.name
)


def count(path: Path) -> tuple[int, int]:
    """(book frames, level entries) of a capture, counted independently of okxbook's core."""
    frames = levels = 0
    for captured in iter_frames(path):
        if not captured.frame.startswith(b"{"):
            continue
        msg = orjson.loads(captured.frame)
        channel = str(msg.get("arg", {}).get("channel", ""))
        if "data" in msg and channel.startswith(("books", "bbo-tbt")):
            frames += 1
            levels += sum(len(d.get("bids", ())) + len(d.get("asks", ())) for d in msg["data"])
    return frames, levels


def best_time(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gz_copy(src: Path, dst: Path) -> Path:
    with open(src, "rb") as f, gzip.open(dst, "wb") as out:
        shutil.copyfileobj(f, out)
    return dst


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="okxbook-bench-"))
    bench_1, bench_10 = stream_file("1x5k", tmp), stream_file("10x5k", tmp)
    print(f"synthetic streams: {source()}\n")
    inputs = [bench_1, bench_10, gz_copy(bench_10, tmp / "frames_10x5k.jsonl.gz"), *REAL]
    print("| input | book frames | frames/s | level updates/s | µs/frame |")
    print("|---|---|---|---|---|")
    for path in inputs:
        frames, levels = count(path)
        if frames < 100:
            continue
        seconds = best_time(lambda: replay([path]))
        name = (
            path.name
            if path.parent in (bench_10.parent, tmp)
            else f"{path.parent.name}/{path.name}"
        )
        print(
            f"| {name} | {frames:,} | {frames / seconds:,.0f} | {levels / seconds:,.0f} | "
            f"{seconds / frames * 1e6:.2f} |",
            flush=True,
        )

    files = []
    for i in range(8):
        files.append(shutil.copy(bench_10, tmp / f"plain{i}.jsonl"))
        files.append(gz_copy(bench_10, tmp / f"gz{i}.jsonl.gz"))
    frames, levels = count(bench_10)
    frames, levels = frames * len(files), levels * len(files)
    print(
        f"\n{len(files)} files, {frames:,} frames, {levels:,} level updates "
        "(replay + TopSeries + Parquet per file):\n"
    )
    print("| workers | seconds | frames/s | level updates/s | speed-up |")
    print("|---|---|---|---|---|")
    base = None
    for workers in (1, 2):
        out = tmp / f"out{workers}"
        seconds = best_time(lambda: replay_many(files, out, workers=workers), runs=3)
        base = base or seconds
        print(
            f"| {workers} | {seconds:.2f} | {frames / seconds:,.0f} | {levels / seconds:,.0f} | "
            f"{base / seconds:.2f}× |",
            flush=True,
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
