"""What recording deltas costs: µs per update frame of ``Books.apply`` (checksums verified) with no
recorder, with a single-mode recorder (rows of the last frame, read as a numpy view as a consumer
would), and with a batch recorder (every frame appended, drained every 5,000 frames), beside
``orjson.loads`` of the same frames in the same run.

    python bench/deltas_bench.py

Inputs: the shared benchmark streams of ``bench/frames.py``. Best of several runs; nothing is
asserted about timing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import load_stream, source

import okxbook


def fresh(snapshots: list[bytes], rec: okxbook.DeltaRecorder | None) -> okxbook.Books:
    books = okxbook.Books()
    for frame in snapshots:
        books.apply(frame)
    books.record_deltas(rec)
    return books


def run(snapshots: list[bytes], updates: list[bytes], mode: str) -> float:
    rec = None if mode == "off" else okxbook.DeltaRecorder(batch=mode == "batch")
    books = fresh(snapshots, rec)
    apply = books.apply
    t0 = time.perf_counter()
    if rec is None:
        for frame in updates:
            apply(frame)
    elif mode == "single":
        rows = rec.rows
        for frame in updates:
            apply(frame)
            rows(False)
    else:
        for frame in updates:
            apply(frame)
        rec.take()
    return time.perf_counter() - t0


def main() -> None:
    print(f"inputs: {source()}\n")
    print("| stream | orjson.loads µs | off µs/frame | single µs/frame | batch µs/frame |")
    print("|---|---|---|---|---|")
    for name in ("1x5k", "10x5k"):
        snapshots, updates = load_stream(name)
        best: dict[str, float] = {}
        for _ in range(7):
            for mode in ("off", "single", "batch"):
                best[mode] = min(best.get(mode, 1e9), run(snapshots, updates, mode))
            t0 = time.perf_counter()
            for frame in updates:
                orjson.loads(frame)
            best["orjson"] = min(best.get("orjson", 1e9), time.perf_counter() - t0)
        us = {k: v / len(updates) * 1e6 for k, v in best.items()}
        print(
            f"| {name} | {us['orjson']:.2f} | {us['off']:.2f} | {us['single']:.2f} "
            f"({us['single'] - us['off']:+.2f}) | {us['batch']:.2f} "
            f"({us['batch'] - us['off']:+.2f}) |"
        )


if __name__ == "__main__":
    main()
