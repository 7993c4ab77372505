"""Exports of long streams in bounded memory (issue 12, "a month ... with memory bounded"), and the
nautilus catalog of a book whose decimals grow mid-export.

The long streams are written here (a ``books-l2-tbt``-like book: a snapshot, then updates chained on
seqId that move a few levels each, no checksum) because generating them with the checksummed
``okxbook.testing`` books would take longer than the whole test should."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from okxbook.capture import hft as hft_module
from okxbook.capture.export import export
from okxbook.capture.hft import EVENT_DTYPE, HftExport, export_hftbacktest

BOOK = "books-l2-tbt/BTC-USDT"


def long_stream(path: Path, updates: int, *, more_decimals_at: int | None = None) -> Path:
    """A snapshot of 50 levels a side then ``updates`` update frames (two levels each: one size
    changes on each side, never crossing), ts 1 ms apart; from ``more_decimals_at`` on the prices
    carry one more decimal (the book rescales)."""
    bids = [f"{30000 - i}.5" for i in range(50)]
    asks = [f"{30001 + i}.5" for i in range(50)]
    t0 = 1_700_000_000_000
    lines = [
        json.dumps(
            {
                "arg": {"channel": "books-l2-tbt", "instId": "BTC-USDT"},
                "action": "snapshot",
                "data": [
                    {
                        "bids": [[p, "1.0", "0", "1"] for p in bids],
                        "asks": [[p, "1.0", "0", "1"] for p in asks],
                        "ts": str(t0),
                        "seqId": 1,
                        "prevSeqId": -1,
                    }
                ],
            },
            separators=(",", ":"),
        )
    ]
    head = '{"arg":{"channel":"books-l2-tbt","instId":"BTC-USDT"},"action":"update","data":[{'
    for k in range(1, updates + 1):
        i = k % 50
        bid, ask = bids[i], asks[i]
        if more_decimals_at is not None and k >= more_decimals_at and i == 3:
            bid += "5"  # 29997.55: one more decimal than the book had
        lines.append(
            f'{head}"bids":[["{bid}","{k % 7 + 1}.25","0","2"]],'
            f'"asks":[["{ask}","{k % 5 + 1}.5","0","3"]],'
            f'"ts":"{t0 + k}","seqId":{k + 1},"prevSeqId":{k}}}]}}'
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def peak_bytes(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def test_hftbacktest_export_memory_stays_bounded_as_the_stream_grows(tmp_path, monkeypatch):
    monkeypatch.setattr(
        hft_module, "CHUNK", 4096
    )  # steps far smaller than the export, as in a month
    short = long_stream(tmp_path / "short.jsonl", 20_000)
    long = long_stream(tmp_path / "long.jsonl", 80_000)
    peaks, results = [], []
    for src in (short, long):
        peak, (report, hft) = peak_bytes(
            lambda src=src: export_hftbacktest(
                [src], tmp_path / f"{src.stem}.npz", verify_checksum=False, batch_rows=4_000
            )
        )
        assert report.ok and hft.in_order and hft.events == hft.made
        peaks.append(peak)
        results.append(hft)
    # Four times the events (64 bytes each: about 10 MB for the long one) ...
    assert results[1].events > 3.9 * results[0].events
    assert results[1].events * EVENT_DTYPE.itemsize > 8 * 2**20
    # ... and the same peak: a few chunks, not the export (it held every event before).
    assert peaks[1] < 1.25 * peaks[0]
    assert peaks[1] < results[1].events * EVENT_DTYPE.itemsize / 3
    data = np.load(tmp_path / "long.npz")["data"]
    assert len(data) == results[1].events and data.dtype == EVENT_DTYPE
    assert (np.diff(data["exch_ts"]) >= 0).all()
    assert not list(tmp_path.glob("*.tmp*"))  # the raw spool and the staged array are gone


def test_hftbacktest_fast_path_writes_what_the_general_merge_writes(tmp_path, monkeypatch):
    """The in-order fast path (bounded memory) and the general merge write the same file when no
    timestamp goes back (the merge is then the identity, each event flagged for both timelines)."""
    src = long_stream(tmp_path / "s.jsonl", 2_000)
    export_hftbacktest([src], tmp_path / "fast.npz", verify_checksum=False)
    add = HftExport.add

    def out_of_order(self, chunk):
        add(self, chunk)
        self.in_order = False

    monkeypatch.setattr(HftExport, "add", out_of_order)
    _, hft = export_hftbacktest([src], tmp_path / "merged.npz", verify_checksum=False)
    assert not hft.in_order
    fast = np.load(tmp_path / "fast.npz")["data"]
    merged = np.load(tmp_path / "merged.npz")["data"]
    assert fast.tobytes() == merged.tobytes()


def test_nautilus_refuses_a_book_whose_decimals_grow_mid_export(tmp_path):
    src = long_stream(tmp_path / "s.jsonl", 500, more_decimals_at=200)
    with pytest.raises(ValueError, match="decimals"):
        export([src], tmp_path / "cat", "nautilus", verify_checksum=False)
    assert not [p for p in (tmp_path / "cat").rglob("*") if p.is_file()]
