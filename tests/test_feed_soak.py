"""A bounded soak of the real feeder (issue 14, "Also keep in the suite"): ten books over several
connections of ``okxbook.feed.Feed`` against ``okxbook.testing.LocalExchange`` while a seeded random
sequence of faults hits them (protocol doc §4 gaps, seqId resets and checksums, §6 drops, silence
with and without pong, 64008, echoed error events, garbage and malformed frames, and frames of a
book sent on a connection that does not carry it). After the storm every book must equal the
exchange's, nothing may ever have been shown live while invalid or at a top the exchange never had,
resubscriptions stay bounded and nothing raised. The seed is in every assertion message, and
``OKXBOOK_SOAK_SEED`` (an int, or ``random``) picks the storm; the default is fixed."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from typing import Any

from feed_helpers import (
    BOOK_KINDS,
    Key,
    assert_matches_exchange,
    harness,
    run,
    settle,
    sub_counts,
)

from okxbook import okx

KEYS: list[Key] = [
    ("books", f"{c}-USDT") for c in ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "LTC", "DOT", "TRX")
] + [("books", "BTC-USDT-SWAP")]
# 15 s of storm; 5 s with OKXBOOK_QUICK_SEARCH (conftest.py: the other interpreters' runs).
STORM_SECONDS = 5.0 if os.environ.get("OKXBOOK_QUICK_SEARCH", "") not in ("", "0") else 15.0
PUSH_PAUSE = 0.03
KINDS = (
    "drop",
    "silence",
    "silence_no_pong",
    "gap",
    "reset",
    "corrupt",
    "malformed",
    "garbage",
    "error_event",
    "notice_64008",
    "misrouted",
)
GARBAGE = (
    b"not json at all",
    b'{"event":"subscribe"',
    b"[]",
    b"null",
    b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["x"]]}]}',
    b'{"arg":{"channel":"books"},"action":"snapshot","data":[]}',
    b'{"event":"subscribe","arg":{"channel":"books","instId":"NOPE-USDT"},"connId":"x"}',
)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _seed() -> int:
    # A fixed default keeps CI reproducible; OKXBOOK_SOAK_SEED=random explores new storms.
    env = os.environ.get("OKXBOOK_SOAK_SEED", "14")
    return random.SystemRandom().randrange(2**32) if env == "random" else int(env)


def test_soak_ten_books_over_three_connections_under_a_random_fault_storm() -> None:
    seed = _seed()
    rng = random.Random(seed)
    tag = f"[soak seed {seed}; rerun with OKXBOOK_SOAK_SEED={seed}]"
    handler = _Collect()
    logger = logging.getLogger("okxbook")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    injected: list[tuple[float, str, Any]] = []
    touched: dict[Key, int] = dict.fromkeys(KEYS, 0)
    live_invalid: list[tuple[Key, str | None]] = []
    loop_errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: loop_errors.append(ctx))
        async with harness(
            KEYS,
            exchange=dict(seed=seed, notice_close_delay=0.5, idle_timeout=30.0),
            max_per_connection=4,
            ping_after=0.4,
            pong_timeout=0.4,
            subscribe_timeout=2.0,
        ) as h:
            ex, feed = h.ex, h.feed
            stop = asyncio.Event()

            async def pusher() -> None:
                while not stop.is_set():
                    await ex.step(1)
                    await asyncio.sleep(PUSH_PAUSE)

            async def sampler() -> None:
                # §4: a book whose chain broke is unknown; its status may never say live meanwhile.
                while not stop.is_set():
                    for k in KEYS:
                        if feed.status(*k).state == "live" and not feed.book(*k).is_valid:
                            live_invalid.append((k, feed.book(*k).invalid_reason))
                    await asyncio.sleep(0.002)

            def carried_by(conn: str) -> list[Key]:
                return [k for k in KEYS if conn in ex.subscribers(*k)]

            async def inject(kind: str) -> None:
                conns = ex.connections
                if not conns:
                    return
                conn = rng.choice(conns)
                key = rng.choice(KEYS)
                if kind in ("gap", "reset", "corrupt"):
                    {"gap": ex.inject_gap, "reset": ex.reset_seq, "corrupt": ex.corrupt_checksum}[
                        kind
                    ](*key)
                    touched[key] += 1
                    injected.append((time.monotonic(), kind, key))
                    return
                if kind == "misrouted":
                    # A frame of `key` (an old update, so applying it would break its chain) on a
                    # connection that does not carry it (issue 14 item 2).
                    owners = ex.subscribers(*key)
                    others = [c for c in conns if c not in owners]
                    old = [
                        s.data
                        for o in owners
                        for s in ex.sent(o, *key)
                        if s.kind in BOOK_KINDS and s.kind != "snapshot"
                    ]
                    if not others or not old:
                        return
                    target = rng.choice(others)
                    await ex.send_raw(target, rng.choice(old[-20:]))
                    injected.append((time.monotonic(), kind, (key, target)))
                    return
                for k in carried_by(conn):
                    touched[k] += 1
                injected.append((time.monotonic(), kind, conn))
                if kind == "drop":
                    await ex.drop(conn)
                elif kind in ("silence", "silence_no_pong"):
                    ex.silence(conn, pong=kind == "silence")
                    await asyncio.sleep(rng.uniform(0.3, 1.2))
                    if conn in ex.connections:
                        ex.unsilence(conn)
                elif kind == "malformed":
                    await ex.send_malformed(conn)
                elif kind == "garbage":
                    await ex.send_malformed(conn, rng.choice(GARBAGE))
                elif kind == "error_event":
                    echo = {"op": "subscribe", "args": [{"channel": key[0], "instId": key[1]}]}
                    event = {
                        "event": "error",
                        "code": okx.Code.INVALID_REQUEST.value,
                        "msg": f"Invalid request: {json.dumps(echo)}",
                        "connId": conn,
                    }
                    await ex.send_raw(conn, json.dumps(event).encode())
                elif kind == "notice_64008":
                    await ex.notice_64008(conn, close_after=rng.uniform(0.2, 0.8))

            tasks = [asyncio.create_task(pusher()), asyncio.create_task(sampler())]
            try:
                assert len(ex.connections) >= 3, f"{tag} {ex.connections}"
                end = time.monotonic() + STORM_SECONDS
                hard_end = time.monotonic() + 15.0  # a short storm goes on until 5 kinds hit

                def storming() -> bool:
                    now = time.monotonic()
                    few = len({k for _, k, _ in injected}) < 5
                    return now < end or (few and now < hard_end)

                while storming():
                    await inject(rng.choice(KINDS))
                    await asyncio.sleep(rng.uniform(0.4, 0.9))
                # Faults stop; the books must come back by themselves.
                ex.unsilence()
                await feed.wait_live(timeout=20.0)
                stop.set()
                await asyncio.gather(*tasks)
                await ex.step(3)
                await settle(feed, ex, timeout=20.0)
            finally:
                stop.set()
                for t in tasks:
                    t.cancel()

            kinds = sorted({k for _, k, _ in injected})
            what = f"{tag} {len(injected)} faults {kinds}"
            assert not live_invalid, f"{what}: live while invalid: {live_invalid[:5]}"
            try:
                assert_matches_exchange(feed, ex)
                checked = h.obs.check_no_stale(ex)
            except AssertionError as exc:
                raise AssertionError(f"{what}: {exc}") from exc
            assert checked > 0, what
            # The storm bit: several kinds of fault, and books went through resyncs.
            assert len(kinds) >= 5, what
            hit = [k for k in KEYS if "resyncing" in h.obs.states(k)]
            assert hit, f"{what}: no book ever resynced"
            print(f"{what}; {len(hit)} books resynced; {checked} live readings checked")
            for k in KEYS:
                subs, _ = sub_counts(ex, k)
                # One subscribe to start, and each fault that touched the book (or its
                # connection) costs at most a couple (a resubscribe, a successor).
                assert subs <= 1 + 2 * touched[k], f"{what}: {k}: {subs} subscribes, {touched[k]}"
            # Pushes after the storm arrived; the feed is not stuck on one connection.
            assert len(ex.connections) >= 3, f"{what}: {ex.connections}"

    try:
        run(main, timeout=90.0)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    tracebacks = [r for r in handler.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, f"{tag}: {[(r.getMessage(), r.exc_info) for r in tracebacks[:5]]}"
    assert not loop_errors, f"{tag}: {loop_errors[:5]}"
