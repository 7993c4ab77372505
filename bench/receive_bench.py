"""The live feeder's receive path at its limit: small ``books`` updates (1-3 changes, checksum 0,
the live shape since 2026-06) pushed as fast as loopback carries them, counted through ``Feed``
with and without an ``on_top`` callback, against a bare picows client that only counts and
timestamps the same frames, in the same run (issue 10, "Live feeder").

    python bench/receive_bench.py            # Markdown table (frames/s, latency p50/p99)
    python bench/receive_bench.py 100000     # fewer frames per throughput run

The server is another process (a picows server, so the client has a core of its own): it answers
the subscribe with the snapshot, then writes the whole pre-generated update stream, already framed
as WebSocket frames, straight into the socket (``underlying_transport.write``), so the sender costs
nothing per frame and the client is the bottleneck. Throughput: frames applied between the first
and the last update, polled every millisecond. Latency: frames paced at 1 ms, send time and the
client's ``on_top`` (or the bare client's receive) on the system-wide monotonic clock, the k-th
update sent matched to the k-th received.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import against_server, bench_feed, serve_books, ws_frame

from okxbook._books import Books
from okxbook.testing import SyntheticBook

N_INST = 10


def make_frames(n_updates: int) -> tuple[dict[str, bytes], list[bytes]]:
    """The snapshots and the update stream, generated once per size (cached in the temp dir:
    generating 100k frames takes a minute on this machine)."""
    cache = Path(tempfile.gettempdir()) / f"okxbook-receive-bench-{n_updates}.json"
    if cache.exists():
        data = orjson.loads(cache.read_bytes())
        return {k: v.encode() for k, v in data["snapshots"].items()}, [
            u.encode() for u in data["updates"]
        ]
    insts = [f"BENCH{i}-USDT" for i in range(N_INST)]
    books = {
        inst: SyntheticBook(inst, "books", seed=i, checksum="zero", changes=(1, 3))
        for i, inst in enumerate(insts)
    }
    snapshots = {inst: b.snapshot_frame() for inst, b in books.items()}
    updates = [books[insts[k % N_INST]].next_update_frame() for k in range(n_updates)]
    data = {"snapshots": {k: v.decode() for k, v in snapshots.items()}}
    data["updates"] = [u.decode() for u in updates]
    cache.write_bytes(orjson.dumps(data))
    return snapshots, updates


def server_main(port_q, go_q, done_q, n_updates: int, pace_s: float) -> None:
    from picows import WSMsgType

    snapshots, updates = make_frames(n_updates)
    seqs = [orjson.loads(f)["data"][0]["seqId"] for f in updates] if pace_s else []
    blob = b"".join(ws_frame(f) for f in updates)

    async def main() -> None:
        server, state = await serve_books(snapshots)
        port_q.put(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, go_q.get)
        transport = state["transport"]
        sent_ns = []
        if pace_s:
            clock = time.monotonic_ns
            for seq, frame in zip(seqs, updates, strict=True):
                sent_ns.append((seq, clock()))
                transport.send(WSMsgType.TEXT, frame)
                await asyncio.sleep(pace_s)
        else:
            raw = transport.underlying_transport
            step = 1 << 20
            for i in range(0, len(blob), step):
                raw.write(blob[i : i + step])
                while raw.get_write_buffer_size() > 4 << 20:
                    await asyncio.sleep(0.0005)
        done_q.put(sent_ns)
        await asyncio.sleep(1.0)
        server.close()

    asyncio.run(main())


async def wait_count(count, target: int, timeout: float = 60.0) -> tuple[int, int, int]:
    """Poll ``count()`` every ms: (frames seen, time of the first, time of the last increase)."""
    start = count()
    t_first = t_last = 0
    last = start
    deadline = time.monotonic() + timeout
    while last - start < target and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
        now = count()
        if now != last:
            t = time.monotonic_ns()
            if not t_first:
                t_first = t
            t_last = t
            last = now
    return last - start, t_first, t_last


async def feed_client(port, n_updates, transport, go_q, done_q, paced, with_top) -> dict:
    insts = [f"BENCH{i}-USDT" for i in range(N_INST)]
    feed = bench_feed(port, insts, transport)
    recv: dict[int, int] = {}
    clock = time.monotonic_ns
    if with_top:

        def on_top(book, recv_ns):
            recv[book.seq_id] = clock()

        feed.on_top(on_top)
    async with feed:
        await feed.wait_live(timeout=30)
        recv.clear()
        go_q.put(True)
        if paced:
            sent = await asyncio.get_running_loop().run_in_executor(None, done_q.get)
            await asyncio.sleep(0.2)
            return latency(sent, recv)
        n, t0, t1 = await wait_count(lambda: sum(b.frames for b in feed._group_books), n_updates)
        return {"frames": n, "fps": n / ((t1 - t0) / 1e9) if t1 > t0 else float("nan")}


async def bare_client(port, n_updates, go_q, done_q, paced) -> dict:
    """A picows client that only timestamps each frame: the transport's own floor."""
    from picows import WSListener, WSMsgType, ws_connect

    recv: list[int] = []
    clock = time.monotonic_ns

    class Listener(WSListener):
        def on_ws_frame(self, transport, frame):
            recv.append(clock())

    ws, _ = await ws_connect(Listener, f"ws://127.0.0.1:{port}", max_frame_size=2**24)
    ws.send(
        WSMsgType.TEXT, b'{"op":"subscribe","args":[{"channel":"books","instId":"BENCH0-USDT"}]}'
    )
    while len(recv) < 2:
        await asyncio.sleep(0.01)
    recv.clear()
    go_q.put(True)
    if paced:
        sent = await asyncio.get_running_loop().run_in_executor(None, done_q.get)
        await asyncio.sleep(0.2)
        ws.disconnect()
        return latency(sent, recv)
    n, t0, t1 = await wait_count(lambda: len(recv), n_updates)
    ws.disconnect()
    return {"frames": n, "fps": n / ((t1 - t0) / 1e9) if t1 > t0 else float("nan")}


async def bare_websockets(port, n_updates, go_q, done_q, paced) -> dict:
    """A websockets client that only timestamps each message it gets from ``recv(decode=False)``
    (bytes, no UTF-8 decode): websockets' own floor for this stream."""
    from websockets.asyncio.client import connect

    recv: list[int] = []
    clock = time.monotonic_ns
    ws = await connect(
        f"ws://127.0.0.1:{port}", compression=None, max_size=2**24, ping_interval=None
    )

    async def read() -> None:
        get = ws.recv
        while True:
            await get(decode=False)
            recv.append(clock())

    await ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BENCH0-USDT"}]}')
    reader = asyncio.get_running_loop().create_task(read())
    while len(recv) < 2:
        await asyncio.sleep(0.01)
    recv.clear()
    go_q.put(True)
    try:
        if paced:
            sent = await asyncio.get_running_loop().run_in_executor(None, done_q.get)
            await asyncio.sleep(0.2)
            return latency(sent, recv)
        n, t0, t1 = await wait_count(lambda: len(recv), n_updates)
        return {"frames": n, "fps": n / ((t1 - t0) / 1e9) if t1 > t0 else float("nan")}
    finally:
        reader.cancel()
        ws.transport.abort()


def latency(sent: list[tuple[int, int]], recv: list[int] | dict[int, int]) -> dict:
    """Send to receive per frame: by seqId for the feed (``on_top`` runs only for the frames that
    changed the top), by order for the bare client (it sees every frame)."""
    if isinstance(recv, dict):
        lat = sorted((recv[q] - s) / 1000 for q, s in sent if q in recv)
    else:
        lat = sorted((r - s) / 1000 for (_, s), r in zip(sent, recv, strict=False))
    return {"p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)], "matched": len(lat)}


def run(mode: str, n_updates: int, paced: bool) -> dict:
    def client(port, go_q, done_q):
        if mode == "bare":
            return bare_client(port, n_updates, go_q, done_q, paced)
        if mode == "bare-websockets":
            return bare_websockets(port, n_updates, go_q, done_q, paced)
        transport, _, top = mode.partition("+")
        return feed_client(port, n_updates, transport, go_q, done_q, paced, top == "top")

    return against_server(server_main, (n_updates, 0.001 if paced else 0.0), client)


def in_process(n_updates: int) -> dict[str, float]:
    """Frames/s of the two costs no transport can avoid, in this process, on the same frames:
    ``Books.apply`` alone, and websockets' frame parser alone (its sans-I/O ``Protocol`` fed the
    wire bytes in 64 KiB reads, as a socket delivers them)."""
    from websockets.protocol import Protocol, Side, State

    snapshots, updates = make_frames(n_updates)
    books = Books(verify_checksum=True)
    for snap in snapshots.values():
        books.apply(snap)
    t0 = time.perf_counter()
    for frame in updates:
        books.apply(frame)
    apply_fps = len(updates) / (time.perf_counter() - t0)
    blob = b"".join(ws_frame(f) for f in updates)
    proto = Protocol(Side.CLIENT, state=State.OPEN, max_size=2**24)
    n = 0
    t0 = time.perf_counter()
    for i in range(0, len(blob), 1 << 16):
        proto.receive_data(blob[i : i + (1 << 16)])
        n += len(proto.events_received())
    return {"apply": apply_fps, "websockets-parse": n / (time.perf_counter() - t0)}


MODES = ("bare", "picows", "picows+top", "bare-websockets", "websockets", "websockets+top")
LATENCY = ("bare", "picows+top", "bare-websockets", "websockets+top")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print("| client | update frames/s (median) | send → receive/on_top p50 µs | p99 µs |")
    print("|---|---:|---:|---:|")
    for mode in MODES:
        fps = statistics.median(run(mode, n, paced=False)["fps"] for _ in range(runs))
        lat = run(mode, 2000, paced=True) if mode in LATENCY else None
        cell = f"{lat['p50']:.0f} | {lat['p99']:.0f}" if lat else "– | –"
        print(f"| {mode} | {fps:,.0f} | {cell} |", flush=True)
    ref = [in_process(n) for _ in range(runs)]
    for name in ("apply", "websockets-parse"):
        fps = statistics.median(r[name] for r in ref)
        print(f"| in-process: {name} alone | {fps:,.0f} | – | – |", flush=True)


if __name__ == "__main__":
    main()
