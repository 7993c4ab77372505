"""Benchmark inputs: the shared synthetic 400-level streams (../shared/bench-frames/), split into
snapshots and updates, as raw bytes exactly as a WebSocket client would hand them over."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
BENCH_FRAMES = SHARED / "bench-frames"
STREAMS = {"1x5k": "frames_1x5k.jsonl", "10x5k": "frames_10x5k.jsonl"}


def load_stream(name: str) -> tuple[list[bytes], list[bytes]]:
    """(snapshots, updates) of one stream; the snapshots come first in the files."""
    lines = (BENCH_FRAMES / STREAMS[name]).read_bytes().splitlines()
    snapshots = [line for line in lines if b'"action":"snapshot"' in line]
    updates = [line for line in lines if b'"action":"update"' in line]
    assert len(snapshots) + len(updates) == len(lines)
    return snapshots, updates
