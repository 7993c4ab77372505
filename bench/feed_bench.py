"""End-to-end feeder figures over loopback: latency from the server's send to the consumer's
top-of-book callback (median, p99), and the most update frames per second one feeder sustains on
one core, for 10 and 100 instruments, with each transport.

    python bench/feed_bench.py              # Markdown table for the README

The server is a separate process (``loopback.serve_books``, a minimal OKX-like picows server, so
the client gets its own core)
serving pre-generated ``books`` frames from ``okxbook.testing.SyntheticBook`` (400 levels, CRC32
checksums, seqId chains). Latency: frames paced at 1 ms, each send time stamped with the system-wide
monotonic clock and matched by seqId to the client's callback time. Throughput: the server writes
the frames back to back; the client's rate is measured from the first to the last update applied.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import against_server, bench_feed, serve_books

from okxbook.testing import SyntheticBook


def make_frames(
    n_inst: int, n_updates: int
) -> tuple[list[str], dict[str, bytes], list[tuple[str, int, bytes]]]:
    insts = [f"BENCH{i}-USDT" for i in range(n_inst)]
    books = {inst: SyntheticBook(inst, "books", seed=i) for i, inst in enumerate(insts)}
    snapshots = {inst: b.snapshot_frame() for inst, b in books.items()}
    updates = []
    for k in range(n_updates):
        inst = insts[k % n_inst]
        frame = books[inst].next_update_frame()
        updates.append((inst, books[inst].seq_id, frame))
    return insts, snapshots, updates


def server_main(port_q, go_q, done_q, n_inst: int, n_updates: int, pace_s: float) -> None:
    """On 'go' stream the updates (paced or back to back) and report the send times."""
    from picows import WSMsgType

    _insts, snapshots, updates = make_frames(n_inst, n_updates)

    async def main() -> None:
        server, state = await serve_books(snapshots)
        port_q.put(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, go_q.get)
        transport = state["transport"]
        sent_ns = []
        send = transport.send
        clock = time.monotonic_ns
        if pace_s:
            for _, seq, frame in updates:
                sent_ns.append((seq, clock()))
                send(WSMsgType.TEXT, frame)
                await asyncio.sleep(pace_s)
        else:
            for i, (_, seq, frame) in enumerate(updates):
                send(WSMsgType.TEXT, frame)
                if i % 64 == 63:
                    await asyncio.sleep(0)  # let the socket drain
        await asyncio.sleep(1.0)
        done_q.put(sent_ns)
        await asyncio.sleep(0.5)
        server.close()

    asyncio.run(main())


def applied(feed) -> int:
    """Frames applied by all the feed's connections."""
    return sum(books.frames for books in feed._group_books)


async def client(
    port: int, insts: list[str], n_updates: int, transport: str, go_q, done_q, paced: bool
) -> dict:
    feed = bench_feed(port, insts, transport)
    recv = {}
    clock = time.monotonic_ns
    counts = {"first": 0, "last": 0}

    def on_top(book, recv_ns):
        t = clock()
        recv[book.seq_id] = t
        if not counts["first"]:
            counts["first"] = t
        counts["last"] = t

    feed.on_top(on_top)
    async with feed:
        await feed.wait_live(timeout=30)
        frames_before = applied(feed)
        recv.clear()
        counts["first"] = 0
        go_q.put(True)
        sent = await asyncio.get_running_loop().run_in_executor(None, done_q.get)
        frames = applied(feed) - frames_before
        t_first = counts["first"]
        t_last = counts["last"]
        # the rate counts every frame applied, between the first and last callback
        stats = {
            "frames": frames,
            "invalid": sum(not feed.book("books", i).is_valid for i in insts),
        }
        if paced:
            lat = sorted((recv[seq] - t) / 1000 for seq, t in sent if seq in recv)
            stats["lat_p50"] = lat[len(lat) // 2]
            stats["lat_p99"] = lat[int(len(lat) * 0.99)]
            stats["matched"] = len(lat)
        else:
            stats["fps"] = frames / ((t_last - t_first) / 1e9) if t_last > t_first else float("nan")
    return stats


def run(n_inst: int, n_updates: int, transport: str, paced: bool) -> dict:
    insts = [f"BENCH{i}-USDT" for i in range(n_inst)]
    return against_server(
        server_main,
        (n_inst, n_updates, 0.001 if paced else 0.0),
        lambda port, go_q, done_q: client(port, insts, n_updates, transport, go_q, done_q, paced),
        port_timeout=120,
    )


def main() -> None:
    print(
        "| transport | instruments | send → callback p50 µs | p99 µs | max update frames/s "
        "(one core) |"
    )
    print("|---|---|---|---|---|")
    for transport in ("websockets", "picows"):
        for n_inst in (10, 100):
            lat = run(n_inst, 2000, transport, paced=True)
            thr = statistics.median(
                run(n_inst, 20000, transport, paced=False)["fps"] for _ in range(3)
            )
            print(
                f"| {transport} | {n_inst} | {lat['lat_p50']:.0f} | {lat['lat_p99']:.0f} | "
                f"{thr:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
