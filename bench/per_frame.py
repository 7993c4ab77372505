"""Per-frame figures of the core (issue 10): the source of the README's speed table and of
bench/BENCHMARKS.md.

    python bench/per_frame.py                 # Markdown tables on stdout
    python bench/per_frame.py --rounds 5      # fewer rounds (default 9)
    python bench/per_frame.py --json out.json # the figures as JSON too

What is timed, all from raw frame bytes, no I/O, GC off while timing:
1. ``Books.apply`` of 400-level ``books`` update frames plus the top-of-book read a consumer makes
   (``best_bid_px``, ``best_ask_px``), per frame, beside ``orjson.loads`` and ``msgspec`` decoding of
   the same frames in the same round. Checksum 0 (the live shape since 2026-06-23: nothing to verify)
   and the legacy CRC32 (verified on every frame); 1 instrument, and 10 interleaved at random.
2. A 400-level snapshot frame re-applied to a live book.
3. Depth: frames that insert (then delete) one bid and one ask level at depth 0, 25, 200, 399 and
   past the 400-level tail, and frames that change a size there; per change, after subtracting an
   update frame that changes nothing.
4. Memory per book, from the storage layout.

Method: every round times each contender over the same frames, one after the other, as the least of
3 passes (load from other processes only adds time); a ratio is taken within a round (what survives
a shared, loaded machine) and the table shows the median of the rounds, for µs and ratios alike. Inputs are generated (``bench/frames.py``) unless
``OKXBOOK_BENCH_FRAMES`` names files. Peers that need another Python are in ``bench/peers.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from frames import SEED, checksum_stream, copies_stream

import okxbook

try:
    import msgspec
except ImportError:  # an optional peer
    msgspec = None  # type: ignore[assignment]

UPDATES = 5_000
DEPTHS = (0, 25, 200, 399, 400)  # 400: past the tail (a 401st level, kept but not published)

# Level memory: one 80-byte Level in the slot pool, an 8-byte key and a 4-byte slot number, the key
# and slot buffers twice the window (okxbook/_level.pxd); a side keeps at most 2 x depth levels.
LEVEL_BYTES = 80 + 2 * (8 + 4)


def _timed(fn: Callable[[], object], n: int, repeat: int = 3) -> float:
    """µs per item of ``fn`` over ``n`` items, GC off: the least of ``repeat`` calls (other
    processes on a shared machine can only add time)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter_ns()
            fn()
            best = min(best, (time.perf_counter_ns() - t0) / n / 1000)
        finally:
            gc.enable()
    return best


def _books(snapshots: list[bytes], verify: bool = True) -> okxbook.Books:
    books = okxbook.Books(verify_checksum=verify)
    for frame in snapshots:
        books.apply(frame)
    return books


def okxbook_pass(
    snapshots: list[bytes], updates: list[bytes], repeat: int = 3, read_top: bool = True
) -> float:
    """The least of ``repeat`` timed passes, each on books freshly loaded from the snapshots (the
    updates chain on them): ``Books.apply`` of each frame, then (``read_top``) the top of book a
    consumer reads."""
    best = float("inf")
    for _ in range(repeat):
        books = _books(snapshots)
        apply = books.apply

        def run(apply: Callable[[bytes], okxbook.Book] = apply) -> None:
            for frame in updates:
                book = apply(frame)
                book.best_bid_px, book.best_ask_px

        def run_apply(apply: Callable[[bytes], okxbook.Book] = apply) -> None:
            for frame in updates:
                apply(frame)

        best = min(best, _timed(run if read_top else run_apply, len(updates), repeat=1))
    return best


def loads_pass(loads: Callable[[bytes], object], frames: list[bytes]) -> float:
    def run() -> None:
        for frame in frames:
            loads(frame)

    return _timed(run, len(frames))


if msgspec is not None:

    class Arg(msgspec.Struct):
        channel: str
        instId: str

    class Data(msgspec.Struct):
        asks: list[tuple[str, str, str, str]]
        bids: list[tuple[str, str, str, str]]
        ts: str
        checksum: int
        seqId: int
        prevSeqId: int = -1

    class Push(msgspec.Struct):
        arg: Arg
        data: list[Data]
        action: str = ""


def contenders() -> dict[str, Callable[[bytes], object]]:
    out: dict[str, Callable[[bytes], object]] = {"orjson.loads": orjson.loads}
    if msgspec is not None:
        out["msgspec.json.decode"] = msgspec.json.decode
        # Decoding into typed structs: the fastest way msgspec reads these frames.
        out["msgspec typed Struct"] = msgspec.json.Decoder(Push).decode
    return out


def update_rounds(n_inst: int, checksum: str, rounds: int) -> dict[str, list[float]]:
    snapshots, updates = checksum_stream(n_inst, UPDATES, checksum)
    peers = contenders()
    res: dict[str, list[float]] = {"okxbook": [], "Books.apply": [], **{k: [] for k in peers}}
    for _ in range(rounds):
        res["okxbook"].append(okxbook_pass(snapshots, updates))
        res["Books.apply"].append(okxbook_pass(snapshots, updates, read_top=False))
        for name, loads in peers.items():
            res[name].append(loads_pass(loads, updates))
    final = _books(snapshots)
    for frame in updates:
        final.apply(frame)
    assert all(b.is_valid for b in final)
    if checksum == "crc":
        assert sum(b.checksum_ok for b in final) == len(snapshots) + len(updates)
    return res


def interleave_rounds(rounds: int) -> dict[str, list[float]]:
    """What the 10-instrument figure is made of (checksum 0, ``Books.apply`` alone), per round:
    the 10-instrument frames as they come and the same frames with each instrument's in a run of
    its own (same books, same frames, only the order differs); then the same two orders for ten
    books of one instrument (``frames.copies_stream``), which have the ten books' memory but one
    instrument's number shapes and depths."""
    streams = {
        "10 instruments, interleaved": checksum_stream(10, UPDATES, "zero"),
        "10 instruments, one at a time": checksum_stream(10, UPDATES, "zero", grouped=True),
        "10 books of one instrument, interleaved": copies_stream(10, UPDATES),
        "10 books of one instrument, one at a time": copies_stream(10, UPDATES, grouped=True),
    }
    res: dict[str, list[float]] = {name: [] for name in streams}
    for _ in range(rounds):
        for name, (snapshots, updates) in streams.items():
            res[name].append(okxbook_pass(snapshots, updates, read_top=False))
    return res


def snapshot_rounds(rounds: int, n: int = 200) -> dict[str, list[float]]:
    snapshots, _ = checksum_stream(1, 0, "zero")
    frame = snapshots[0]
    books = _books(snapshots)
    apply = books.apply
    frames = [frame] * n

    def run() -> None:
        for f in frames:
            apply(f)

    res: dict[str, list[float]] = {"okxbook": [], "orjson.loads": []}
    for _ in range(rounds):
        res["okxbook"].append(_timed(run, n))
        res["orjson.loads"].append(loads_pass(orjson.loads, frames))
    return res


# ---------------------------------------------------------------- depth


def _frame(bids: list[list[str]], asks: list[list[str]], action: str, prev: int, seq: int) -> bytes:
    return orjson.dumps(
        {
            "arg": {"channel": "books", "instId": "DEPTH-USDT"},
            "action": action,
            "data": [
                {
                    "asks": asks,
                    "bids": bids,
                    "ts": "1700000000000",
                    "checksum": 0,
                    "prevSeqId": prev,
                    "seqId": seq,
                }
            ],
        }
    )


def depth_frames(depth: int, kind: str, n: int) -> tuple[bytes, list[bytes], list[bytes]]:
    """A 400-level snapshot (prices 2 ticks apart), then ``n`` frames each changing one bid and one
    ask at ``depth`` (``kind`` "insert": insert, next frame delete; "modify": a new size), and as
    many frames that change nothing (same seqId chain shape, empty sides)."""

    def bid(i: int) -> int:  # ticks of 0.1
        return 1_000_000 - 2 * i

    def ask(i: int) -> int:  # a spread of 10 ticks: inserts one tick inside it never cross
        return 1_000_010 + 2 * i

    def px(t: int) -> str:
        return f"{t // 10}.{t % 10}"

    snap = _frame(
        [[px(bid(i)), "1.5", "0", "3"] for i in range(400)],
        [[px(ask(i)), "1.5", "0", "3"] for i in range(400)],
        "snapshot",
        -1,
        1,
    )
    seq = 1
    changes: list[bytes] = []
    for j in range(n):
        if kind == "insert":
            # One tick better than the level now at `depth`: the new level sits at that depth.
            b, a = bid(depth) + 1, ask(depth) - 1
            if depth >= 400:
                b, a = bid(399) - 1, ask(399) + 1
            sz = "2.25" if j % 2 == 0 else "0"
        else:
            b, a = bid(min(depth, 399)), ask(min(depth, 399))
            sz = "2.25" if j % 2 == 0 else "1.5"
        changes.append(
            _frame([[px(b), sz, "0", "4"]], [[px(a), sz, "0", "4"]], "update", seq, seq + 1)
        )
        seq += 1
    empty = [_frame([], [], "update", k, k + 1) for k in range(1, n + 1)]
    return snap, changes, empty


def depth_rounds(rounds: int, n: int = 2_000) -> dict[str, dict[int, list[float]]]:
    """µs per level change (two per frame), empty-frame cost subtracted, per kind and depth."""
    out: dict[str, dict[int, list[float]]] = {}
    for kind in ("insert", "modify"):
        out[kind] = {d: [] for d in DEPTHS}
        prepared = {d: depth_frames(d, kind, n) for d in DEPTHS}
        for _ in range(rounds):
            for d in DEPTHS:
                snap, changes, empty = prepared[d]

                def run(frames: list[bytes], snap: bytes = snap) -> float:
                    books = _books([snap])
                    apply = books.apply

                    def go() -> None:
                        for f in frames:
                            apply(f)

                    t = _timed(go, n, repeat=1)
                    book = books.get("books", "DEPTH-USDT")
                    assert book is not None and book.is_valid and book.n_bids == 400
                    return t

                # The least of 3 passes each (load from other processes only adds time).
                t_change = min(run(changes) for _ in range(3))
                t_empty = min(run(empty) for _ in range(3))
                out[kind][d].append((t_change - t_empty) / 2)
    return out


# ---------------------------------------------------------------- peers in another Python


def peer_figures(pythons: list[str], rounds: int) -> dict[str, object]:
    """bench/peers.py under each of ``pythons`` (e.g. CPython 3.13 with order-book 1.1, orjson and
    cryptofeed 3; CPython 3.11 with cryptofeed 2.4) on the 1-instrument checksum-0 stream, beside
    okxbook timed here on the same frames."""
    if not pythons:
        return {"skipped": "no --peer-python (or OKXBOOK_PEER_PYTHON) given"}
    snapshots, updates = checksum_stream(1, UPDATES, "zero")
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="okxbook-peers-") as tmp:
        path = Path(tmp) / "frames.jsonl"
        path.write_bytes(b"\n".join(snapshots + updates) + b"\n")
        peers = Path(__file__).with_name("peers.py")
        for python in pythons:
            try:
                done = subprocess.run(
                    [python, str(peers), str(path), "--rounds", str(rounds)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
            except OSError as exc:
                runs.append({"python": python, "failed": str(exc)})
                continue
            if done.returncode != 0:
                runs.append({"python": python, "failed": done.stderr.strip()[-300:]})
            else:
                runs.append(json.loads(done.stdout))
    ours = [okxbook_pass(snapshots, updates) for _ in range(rounds)]
    return {"okxbook": med(ours), "runs": runs}


# ---------------------------------------------------------------- report


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--peer-python",
        action="append",
        default=[p for p in os.environ.get("OKXBOOK_PEER_PYTHON", "").split(os.pathsep) if p],
        help="a Python with the peers installed, for bench/peers.py (may be repeated)",
    )
    args = ap.parse_args()
    rounds = args.rounds
    figures: dict[str, object] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
        "rounds": rounds,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{figures['machine']}; {time.strftime('%Y-%m-%d', time.gmtime())}; median of {rounds} "
        f"rounds, GC off; frames: okxbook.testing.SyntheticBook (400-level books, seed {SEED}), "
        f"{UPDATES:,} updates a stream\n"
    )
    peers = list(contenders())
    print(
        "| update frame | okxbook µs (apply + top read) | Books.apply alone µs | "
        + " | ".join(f"{p} µs" for p in peers)
        + " | "
    )
    print("|---|---|---|" + "---|" * len(peers) + "")
    updates: dict[str, dict[str, float]] = {}
    for checksum, label in (("zero", "checksum 0"), ("crc", "CRC32 verified")):
        for n_inst in (1, 10):
            res = update_rounds(n_inst, checksum, rounds)
            row = {"okxbook": med(res["okxbook"]), "Books.apply": med(res["Books.apply"])}
            row["Books.apply / orjson.loads"] = ratio(res["Books.apply"], res["orjson.loads"])
            cells = [
                f"**{row['okxbook']:.2f}**",
                f"{row['Books.apply']:.2f} ({row['Books.apply / orjson.loads']:.2f}× orjson)",
            ]
            for p in peers:
                row[p] = med(res[p])
                row[f"okxbook / {p}"] = ratio(res["okxbook"], res[p])
                cells.append(f"{row[p]:.2f} (okxbook {row[f'okxbook / {p}']:.2f}×)")
            name = f"{label}, {n_inst} instrument{'s' if n_inst > 1 else ''}"
            updates[name] = row
            print(f"| {name} | " + " | ".join(cells) + " |")
    figures["updates"] = updates
    for label in ("checksum 0", "CRC32 verified"):
        one, ten = updates[f"{label}, 1 instrument"], updates[f"{label}, 10 instruments"]
        print(
            f"\n10 instruments / 1 instrument ({label}): "
            f"{ten['okxbook'] / one['okxbook']:.2f}× in µs, "
            f"{ten['okxbook / orjson.loads'] / one['okxbook / orjson.loads']:.2f}× in ratio to orjson"
        )

    mix = interleave_rounds(rounds)
    figures["interleaving"] = {k: med(v) for k, v in mix.items()}
    names = list(mix)
    print(
        "\nWhat the 10-instrument figure is made of (checksum 0, `Books.apply` alone, µs a frame): "
        + "; ".join(f"{k} {med(v):.2f}" for k, v in mix.items())
        + f". Interleaving 10 instruments costs {ratio(mix[names[0]], mix[names[1]]):.2f}× the same"
        f" frames one instrument at a time; interleaving 10 books of one instrument costs"
        f" {ratio(mix[names[2]], mix[names[3]]):.2f}×."
    )

    snap = snapshot_rounds(rounds)
    figures["snapshot"] = {
        "okxbook": med(snap["okxbook"]),
        "orjson.loads": med(snap["orjson.loads"]),
        "okxbook / orjson.loads": ratio(snap["okxbook"], snap["orjson.loads"]),
    }
    s = figures["snapshot"]
    assert isinstance(s, dict)
    print(
        f"\n400-level snapshot frame: okxbook **{s['okxbook']:.1f} µs**, orjson.loads "
        f"{s['orjson.loads']:.1f} µs (okxbook {s['okxbook / orjson.loads']:.2f}×)"
    )

    depth = depth_rounds(rounds)
    print(
        "\n| µs per level change at depth | "
        + " | ".join(str(d) for d in DEPTHS[:-1])
        + " | past the tail | dearest / cheapest |"
    )
    print("|---|" + "---|" * (len(DEPTHS) + 1))
    figures["depth"] = {}
    for kind, per in depth.items():
        meds = [med(per[d]) for d in DEPTHS]
        spread = max(meds) / max(min(meds), 1e-9)
        figures["depth"][kind] = {str(d): m for d, m in zip(DEPTHS, meds, strict=True)}  # type: ignore[index]
        figures["depth"][kind]["dearest / cheapest"] = spread  # type: ignore[index]
        label = "insert or delete" if kind == "insert" else "size change"
        print(f"| {label} | " + " | ".join(f"{m:.3f}" for m in meds) + f" | {spread:.2f}× |")

    held = 2 * 400
    figures["memory"] = {
        "bytes_per_level": LEVEL_BYTES,
        "max_bytes_per_book": 2 * held * LEVEL_BYTES,
        "bytes_400_levels_a_side": 2 * 512 * LEVEL_BYTES,
    }
    print(
        f"\nMemory per 400-level book: {LEVEL_BYTES} B a level (80 B level + 8 B key + 4 B slot); "
        f"a side grows by doubling from 64 to at most 2 × 400 = {held} levels, so at most "
        f"{2 * held * LEVEL_BYTES:,} B a book; {2 * 512 * LEVEL_BYTES:,} B while each side holds "
        "the 400 levels OKX publishes (512 allocated)."
    )
    peers_out = peer_figures(args.peer_python, rounds)
    figures["peers"] = peers_out
    print(
        "\n| whole job: raw frame -> updated book, top of book read (checksum 0, 1 instrument) "
        "| µs per frame | okxbook faster by |"
    )
    print("|---|---|---|")
    if "skipped" in peers_out:
        print(f"| peers | skipped: {peers_out['skipped']} | |")
    else:
        ours = peers_out["okxbook"]
        assert isinstance(ours, float)
        print(f"| okxbook (Python {platform.python_version()}) | **{ours:.2f}** | |")
        runs = peers_out["runs"]
        assert isinstance(runs, list)
        for run in runs:
            if "failed" in run:
                print(f"| peers under {run['python']} | failed: {run['failed']} | |")
                continue
            for name in ("order-book + orjson", "cryptofeed"):
                p = run.get(name, {"skipped": "not run"})
                if "skipped" in p:
                    print(f"| {name} (Python {run['python']}) | skipped: {p['skipped']} | |")
                else:
                    label = f"{name} {p['version']} (Python {run['python']})"
                    print(f"| {label} | {p['us']:.1f} | {p['us'] / ours:.0f}× |")
        print(
            "| nautilus_trader, raw OKX frame to deltas, not applied (its published figure on a "
            "fast desktop, not run here) | 4.01 | not comparable here |"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
