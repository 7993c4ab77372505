"""Transport contract and the reconnect loop's resilience: a send on a dead socket is a
``ConnectionError`` on both transports, and no error while (re)subscribing ends a connection's
reconnect loop."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

import pytest

import okxbook.feed
from okxbook.feed import Feed
from okxbook.feed.connection import Connection
from okxbook.feed.transport import connect_transport
from okxbook.testing import LocalExchange


@pytest.mark.parametrize("kind", ["websockets", "picows"])
def test_send_on_a_closed_connection_raises_connection_error(kind):
    async def main() -> None:
        async with LocalExchange(auto=False) as ex:
            frames: list[bytes] = []
            transport = await connect_transport(kind, ex.ws_url, frames.append)
            await transport.send("ping")
            for _ in range(100):
                if frames:
                    break
                await asyncio.sleep(0.01)
            assert frames == [b"pong"]
            await ex.close(code=1000)
            assert await asyncio.wait_for(transport.wait_closed(), 5) is not None
            with pytest.raises(ConnectionError):
                await transport.send("ping")

    asyncio.run(main())


def test_an_unexpected_error_while_subscribing_does_not_end_the_reconnect_loop(monkeypatch):
    original = Connection._subscribe
    calls = {"n": 0}

    async def flaky(self, cs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected")
        await original(self, cs)

    monkeypatch.setattr(Connection, "_subscribe", flaky)

    async def main() -> None:
        async with LocalExchange(interval=0.01) as ex:
            async with Feed(
                ["BTC-USDT"], url=ex.ws_url, rest_url=ex.rest_url, reconnect_delay=(0.01, 0.02)
            ) as feed:
                await feed.wait_live(timeout=10)
                assert feed.stats["connects"] == 2  # the failed attempt, then a good one
                assert feed.book("books", "BTC-USDT").is_valid

    asyncio.run(main())


def test_picows_live_frames_take_the_c_receive_path_and_the_rest_the_python_one():
    """The picows listener is feed._receive.Receiver: a live book's updates are applied from
    picows' buffer (counted in ``raw_frames``) and still reach on_top, on_book and the latency
    histograms; a gap (SequenceError), a malformed frame and the resync after them go through
    Connection's Python path, and the book comes back live and equal to the exchange's."""
    pytest.importorskip("okxbook.feed._receive")

    async def main() -> None:
        async with LocalExchange(interval=0.005, checksum="zero") as ex:
            async with Feed(
                ["BTC-USDT"],
                url=ex.ws_url,
                rest_url=ex.rest_url,
                transport="picows",
                resync_delay=(0.01, 0.02),
            ) as feed:
                tops: list[int] = []
                applied: list[int] = []
                feed.on_top(lambda book, recv_ns: tops.append(recv_ns))
                feed.on_book(lambda book, recv_ns: applied.append(book.seq_id))
                await feed.wait_live(timeout=10)
                receiver = feed.connections[0].transport.listener
                before = receiver.raw_frames
                for _ in range(200):
                    if receiver.raw_frames - before >= 20:
                        break
                    await asyncio.sleep(0.01)
                assert receiver.raw_frames - before >= 20
                assert tops and all(t > 0 for t in tops)
                assert len(applied) >= 20
                report = feed.latency()["books"]["books:BTC-USDT"]
                assert report["apply"]["n"] >= 20
                ex.inject_gap("books", "BTC-USDT")
                await ex.send_malformed(channel="books", inst_id="BTC-USDT")
                for _ in range(300):
                    if feed.stats["resyncs"] and feed.status("books", "BTC-USDT").state == "live":
                        break
                    await asyncio.sleep(0.01)
                assert feed.stats["integrity_errors"] + feed.stats["bad_frames"] >= 1
                assert feed.stats["resyncs"] >= 1
                await feed.wait_live(timeout=10)
                mark = receiver.raw_frames
                for _ in range(200):
                    if receiver.raw_frames > mark:
                        break
                    await asyncio.sleep(0.01)
                assert receiver.raw_frames > mark  # live again: back on the C path
                book = feed.book("books", "BTC-USDT")
                assert book.is_valid

    asyncio.run(main())


def test_picows_without_the_c_receive_path_uses_the_python_listener(monkeypatch):
    """okxbook built without picows (no feed/_receive): the Python listener delivers bytes and the
    feed still goes live and follows the exchange."""
    import sys

    monkeypatch.setitem(sys.modules, "okxbook.feed._receive", None)  # import raises ImportError

    async def main() -> None:
        async with LocalExchange(interval=0.005) as ex:
            async with Feed(
                ["BTC-USDT"], url=ex.ws_url, rest_url=ex.rest_url, transport="picows"
            ) as feed:
                await feed.wait_live(timeout=10)
                assert not hasattr(feed.connections[0].transport, "listener")
                seq = feed.book("books", "BTC-USDT").seq_id
                for _ in range(200):
                    if feed.book("books", "BTC-USDT").seq_id != seq:
                        break
                    await asyncio.sleep(0.01)
                assert feed.book("books", "BTC-USDT").seq_id != seq
                assert feed.book("books", "BTC-USDT").is_valid

    asyncio.run(main())


def test_the_c_receive_path_is_used_only_with_the_picows_it_was_built_against(monkeypatch, caplog):
    """Receiver extends picows' cdef WSListener, whose layout another picows may change: with a
    different picows version installed the transport takes picows' Python listener and says so."""
    receive = pytest.importorskip("okxbook.feed._receive")
    from importlib import metadata

    from okxbook.feed import transport

    assert metadata.version("picows") == receive.PICOWS_BUILT_WITH
    assert transport._c_receiver() is receive.Receiver
    monkeypatch.setattr(transport, "_warned", [])
    monkeypatch.setattr(metadata, "version", lambda name: "0.0.1")
    with caplog.at_level("WARNING", logger="okxbook.feed"):
        assert transport._c_receiver() is None
    assert "picows 0.0.1 is installed but okxbook was built with picows" in caplog.text


def _feed_calls_while(receiver, frames: int):
    """Count the Python functions of okxbook/feed/*.py called (``sys.setprofile``) while the C
    receive path takes ``frames`` more frames; returns (calls by name, the coroutine to await)."""
    feed_dir = str(Path(okxbook.feed.__file__).parent)
    calls: Counter[str] = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(feed_dir):
            calls[frame.f_code.co_name] += 1

    async def wait() -> None:
        start = receiver.raw_frames
        sys.setprofile(profile)
        try:
            for _ in range(500):
                if receiver.raw_frames - start >= frames:
                    break
                await asyncio.sleep(0.005)
        finally:
            sys.setprofile(None)
        assert receiver.raw_frames - start >= frames

    return calls, wait


def test_a_live_picows_frame_makes_no_python_call_but_the_consumers_callback():
    """The feed's per-frame dispatch is C (feed/_hub.pyx): with no consumer a live frame calls
    no Python function of the feed (it called the delta drain and the latency hook before); with
    an on_top callback the only Python call per top change is that callback's. The latency
    histograms still count every frame."""
    pytest.importorskip("okxbook.feed._receive")

    async def main() -> None:
        async with LocalExchange(interval=0.002, checksum="zero") as ex:
            async with Feed(
                ["BTC-USDT"], url=ex.ws_url, rest_url=ex.rest_url, transport="picows"
            ) as feed:
                await feed.wait_live(timeout=10)
                receiver = feed.connections[0].transport.listener
                applied = feed.latency()["books"]["books:BTC-USDT"]["apply"]["n"]
                calls, wait = _feed_calls_while(receiver, 40)
                await wait()
                hot = {k: n for k, n in calls.items() if n >= 5}
                assert hot == {}, hot  # a timer task may wake once; nothing per frame
                tops: list[int] = []
                feed.on_top(lambda book, recv_ns: tops.append(book.seq_id))
                calls, wait = _feed_calls_while(receiver, 40)
                await wait()
                assert len(tops) >= 20
                assert {k: n for k, n in calls.items() if n >= 5} == {}
                report = feed.latency()["books"]["books:BTC-USDT"]
                assert report["apply"]["n"] >= applied + 80
                assert report["callback"]["n"] >= len(tops)

    asyncio.run(main())


def test_websockets_frames_reach_on_frame_whole_and_in_order_also_before_wiring():
    """The websockets transport takes data frames from websockets' protocol as they are parsed
    (no recv() task): a fragmented message arrives joined, and what came before the transport
    was wired is delivered first, in order."""
    from websockets.frames import Frame, Opcode

    from okxbook.feed.transport import _frame_connection

    cls = _frame_connection()
    conn = cls.__new__(cls)
    conn.response = object()  # the handshake is done
    conn.process_event(Frame(Opcode.TEXT, b"early"))
    conn.process_event(Frame(Opcode.TEXT, b'{"a"', fin=False))
    conn.process_event(Frame(Opcode.CONT, b":", fin=False))
    conn.process_event(Frame(Opcode.CONT, b"1}", fin=True))
    got: list[bytes] = []
    conn.wire(got.append)
    conn.process_event(Frame(Opcode.BINARY, b"\x00bin"))
    assert got == [b"early", b'{"a":1}', b"\x00bin"]
    assert all(type(g) is bytes for g in got)
