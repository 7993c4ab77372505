"""``okxbook publish NAME INST...`` and ``watch --publish NAME`` as subprocesses against a
LocalExchange: this process reads the books from shared memory while they run and every live
reading is the exchange's top of book at that seqId; the segment is gone when they exit; a name
in use is one line and exit 2."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

from feed_helpers import run, truth

from okxbook import ShareError
from okxbook.share import DEAD, SharedBooks
from okxbook.testing import LocalExchange

INSTS = ["BTC-USDT", "ETH-USDT"]


def _float_top(bid: tuple[str, str] | None, ask: tuple[str, str] | None) -> tuple[float, ...]:
    assert bid is not None and ask is not None
    return (float(bid[0]), float(bid[1]), float(ask[0]), float(ask[1]))


async def _read_while_running(proc: asyncio.subprocess.Process, name: str, readings: list) -> None:
    shared = None
    deadline = time.monotonic() + 20
    while shared is None and time.monotonic() < deadline and proc.returncode is None:
        try:
            shared = SharedBooks(name)
        except ShareError:
            await asyncio.sleep(0.01)
    assert shared is not None, "the segment never appeared"
    books = {inst: shared.book(inst) for inst in INSTS}
    while proc.returncode is None:
        for inst, book in books.items():
            readings.append((inst, book.top()))
        await asyncio.sleep(0.003)
    for inst, book in books.items():
        readings.append((inst, book.top()))  # after the exit: dead, never live
    shared.close()


def _check(ex: LocalExchange, readings: list) -> None:
    live = [(inst, r) for inst, r in readings if r[0] == "live"]
    assert len({r[1] for _, r in live}) > 10, "too few live readings"
    tops = {inst: truth(ex, ("books", inst)).tops for inst in INSTS}
    for inst, (_status, seq_id, *top) in live:
        assert tuple(top) in {_float_top(*t) for t in tops[inst][seq_id]}, (inst, seq_id)
    assert all(r[0] == DEAD for _, r in readings[-len(INSTS) :])


def _gone(name: str) -> bool:
    try:
        SharedBooks(name).close()
    except ShareError:
        return True
    return False


def test_publish_serves_the_live_books_to_another_process_and_cleans_up():
    name = f"okxbook-cli-{uuid.uuid4().hex[:10]}"
    readings: list = []

    async def main():
        async with LocalExchange(auto=True, interval=0.01) as ex:
            args = ["--url", ex.ws_url, "--rest-url", ex.rest_url, "--duration", "2.5"]
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "okxbook", "publish", name, *INSTS, *args,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            reader = asyncio.create_task(_read_while_running(proc, name, readings))
            await asyncio.sleep(0.8)
            # The same name again, while the first publisher is alive: refused, one line.
            second = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "okxbook", "publish", name, "BTC-USDT", *args,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err2 = await asyncio.wait_for(second.communicate(), 30)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            await reader
            return ex, proc.returncode, out.decode(), err.decode(), second.returncode, err2

    ex, code, out, err, code2, err2 = run(main, timeout=60)
    assert code == 0, err
    assert "Traceback" not in err
    assert "publish: " in out and "updates published" in out
    assert code2 == 2 and err2.decode().count("\n") == 1
    assert "writer is alive" in err2.decode()
    _check(ex, readings)
    assert _gone(name)


def test_watch_publish_publishes_while_it_shows_the_books():
    name = f"okxbook-cli-{uuid.uuid4().hex[:10]}"
    readings: list = []

    async def main():
        async with LocalExchange(auto=True, interval=0.01) as ex:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "okxbook", "watch", *INSTS, "--url", ex.ws_url,
                "--rest-url", ex.rest_url, "--duration", "2", "--json", "--latency", "0.5",
                "--publish", name,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            reader = asyncio.create_task(_read_while_running(proc, name, readings))
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            await reader
            return ex, proc.returncode, out.decode(), err.decode()

    ex, code, out, err = run(main, timeout=60)
    assert code == 0, err
    latency = [line for line in out.splitlines() if line.startswith('{"latency"')]
    assert len(latency) >= 2  # every 0.5 s and at the end
    assert '"clock_offset_ms"' in latency[-1] and '"books:BTC-USDT"' in latency[-1]
    _check(ex, readings)
    assert _gone(name)
