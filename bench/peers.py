"""Peers that do the same job as ``Books.apply`` (raw OKX ``books`` frame -> updated book) in other
libraries, for bench/per_frame.py. Runs under whatever Python has them installed, imports nothing
from okxbook, and reads the frames from a file (one frame per line, snapshots first):

    python3.13 bench/peers.py FRAMES.jsonl [--rounds 9]    # prints one JSON object

- ``order-book + orjson``: orjson.loads, then every level into bmoscon's C ``order_book.OrderBook``
  as ``Decimal`` (what cryptofeed does with a frame), and the top of book read.
- ``cryptofeed OKX handler``: cryptofeed's own ``OKX.message_handler`` (its JSON parse, sequence
  check, Decimal levels into the same OrderBook, the book callback), with a no-op user callback.
  The feed object is made without a network: its symbol table is set by hand.
A peer that does not import is reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from decimal import Decimal


def _timed(fn, n):
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter_ns()
        fn()
        return (time.perf_counter_ns() - t0) / n / 1000
    finally:
        gc.enable()


def order_book_pass(snapshots, updates):
    import orjson
    from order_book import OrderBook

    books = {}

    def load(frame):
        msg = orjson.loads(frame)
        inst = msg["arg"]["instId"]
        for item in msg["data"]:
            if msg.get("action") == "snapshot":
                ob = books[inst] = OrderBook(max_depth=800)
            else:
                ob = books[inst]
            for side, levels in ((ob.bids, item["bids"]), (ob.asks, item["asks"])):
                for px, sz, *_ in levels:
                    price = Decimal(px)
                    if sz == "0":
                        if price in side:
                            del side[price]
                    else:
                        side[price] = Decimal(sz)
        return ob

    for f in snapshots:
        load(f)

    def run():
        for f in updates:
            ob = load(f)
            ob.bids.index(0), ob.asks.index(0)

    return _timed(run, len(updates))


def cryptofeed_pass(snapshots, updates):
    import asyncio

    from cryptofeed.defines import L2_BOOK
    from cryptofeed.exchanges.okx import OKX

    insts = sorted({json.loads(f)["arg"]["instId"] for f in snapshots})

    async def on_book(book, receipt_timestamp):
        book.book.bids.index(0), book.book.asks.index(0)

    # The symbol table normally comes from OKX's REST API: give it the instruments directly.
    OKX.exchange_symbol_to_std_symbol = lambda self, sym: sym  # type: ignore[method-assign]
    OKX.std_symbol_to_exchange_symbol = lambda self, sym: sym  # type: ignore[method-assign]
    OKX.symbols = classmethod(lambda cls, refresh=False: insts)  # type: ignore[method-assign]
    OKX._symbol_mapping = classmethod(lambda cls, refresh=False: ({s: s for s in insts}, {}))
    try:  # cryptofeed 2.x reads the table from its Symbols registry
        from cryptofeed.symbols import Symbols

        Symbols.set(OKX.id, {s: s for s in insts}, {})
    except ImportError:
        pass
    feed = OKX(symbols=insts, channels=[L2_BOOK], callbacks={L2_BOOK: on_book}, max_depth=800)
    handler = feed.message_handler
    texts_snap = [f.decode() for f in snapshots]
    texts = [f.decode() for f in updates]

    def step(msg):
        coro = handler(msg, None, 0.0)
        try:
            coro.send(None)
        except StopIteration:
            return
        raise RuntimeError("the handler suspended")

    for t in texts_snap:
        step(t)

    def run():
        for t in texts:
            step(t)

    out = _timed(run, len(texts))
    asyncio.set_event_loop(None)
    assert all(len(feed._l2_book[i].book.bids) >= 400 for i in insts), "books were not applied"
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("frames")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    with open(args.frames, "rb") as fh:
        lines = fh.read().splitlines()
    snapshots = [x for x in lines if b'"action":"snapshot"' in x]
    updates = [x for x in lines if b'"action":"update"' in x]
    out = {"python": sys.version.split()[0]}
    for name, fn in (("order-book + orjson", order_book_pass), ("cryptofeed", cryptofeed_pass)):
        try:
            import importlib.metadata as md

            version = {
                "order-book + orjson": lambda: md.version("order-book"),
                "cryptofeed": lambda: md.version("cryptofeed"),
            }[name]()
            runs = [fn(snapshots, updates) for _ in range(args.rounds)]
            out[name] = {"us": statistics.median(runs), "runs": runs, "version": version}
        except Exception as exc:  # a peer that is not installed or does not run here
            out[name] = {"skipped": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
