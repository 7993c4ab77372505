"""Transport contract and the reconnect loop's resilience: a send on a dead socket is a
``ConnectionError`` on both transports, and no error while (re)subscribing ends a connection's
reconnect loop."""

from __future__ import annotations

import asyncio

import pytest

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
