"""TLS (issue 9): ``LocalExchange(tls=True)`` and ``okxbook serve --tls`` serve ``wss://`` and
``https://`` as OKX does, with a certificate made on the fly or given as files; ``Feed`` trusts
it through ``ca_file``/``ssl_context``, and refuses it without (the certificate is checked)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys

import httpx
import pytest
from feed_helpers import FAST, assert_matches_exchange, initial_snapshot, settle, step_until

from okxbook.capture.serve import CaptureServer
from okxbook.endpoint import ServerTls
from okxbook.feed import Feed
from okxbook.testing import LocalExchange

pytest.importorskip("trustme")  # part of the test extra: present in CI

BTC = ("books", "BTC-USDT")


def _run(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.parametrize("resync", ["resubscribe", "rest"])
def test_a_feed_trusting_the_ca_file_syncs_over_wss_and_https(resync):
    async def main():
        async with LocalExchange(auto=False, tls=True, no_snapshot=resync == "rest") as ex:
            assert ex.ws_url.startswith("wss://127.0.0.1:")
            assert ex.rest_url.startswith("https://127.0.0.1:")
            feed = Feed(
                [BTC],
                url=ex.ws_url,
                rest_url=ex.rest_url,
                ca_file=ex.tls.ca_file,
                resync=resync,
                **FAST,
            )
            async with feed:
                await step_until(ex, lambda: feed.status(*BTC).state == "live")
                await ex.step(3)
                await settle(feed, ex)
                initial = {BTC: initial_snapshot(ex, *BTC)} if resync == "rest" else None
                assert_matches_exchange(feed, ex, initial=initial, per_connection=resync != "rest")
                if resync == "rest":  # the seed came over https
                    assert ex.rest_requests and feed.stats["rest_seeds"] >= 1

    _run(main())


def test_an_ssl_context_works_as_well_and_both_at_once_is_refused():
    async def main():
        async with LocalExchange(auto=False, tls=True) as ex:
            ctx = ex.tls.client_context()
            with pytest.raises(ValueError, match="not both"):
                Feed([BTC], url=ex.ws_url, ssl_context=ctx, ca_file=ex.tls.ca_file)
            async with Feed(
                [BTC], url=ex.ws_url, rest_url=ex.rest_url, ssl_context=ctx, **FAST
            ) as feed:
                await feed.wait_live(timeout=5.0)

    _run(main())


def test_without_the_ca_the_certificate_is_refused_and_the_reason_says_so():
    async def main():
        async with LocalExchange(auto=False, tls=True) as ex:
            async with Feed([BTC], url=ex.ws_url, rest_url=ex.rest_url, **FAST) as feed:
                for _ in range(200):
                    reason = feed.status(*BTC).reason or ""
                    if "certificate" in reason.lower():
                        break
                    await asyncio.sleep(0.01)
                assert "certificate verify failed" in reason.lower(), reason
                assert feed.status(*BTC).state != "live"
                assert ex.connections == []  # no WebSocket was ever opened

    _run(main())


def test_https_rest_answers_with_the_ca_and_not_without():
    async def main():
        async with LocalExchange(auto=False, tls=True) as ex:
            url = f"{ex.rest_url}/api/v5/market/books?instId=BTC-USDT&sz=5"
            async with httpx.AsyncClient(verify=ex.tls.client_context()) as client:
                body = (await client.get(url)).json()
            assert body["code"] == "0" and len(body["data"][0]["bids"]) == 5
            async with httpx.AsyncClient() as client:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await client.get(url)

    _run(main())


def test_a_given_certificate_and_key_are_served(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key, ca_pem = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(cert)
    leaf.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(ca_pem)
    tls = ServerTls(cert=str(cert), key=str(key))
    assert tls.ca_file == str(cert)

    async def main():
        async with LocalExchange(auto=False, tls=tls) as ex:
            async with Feed(
                [BTC], url=ex.ws_url, rest_url=ex.rest_url, ca_file=str(ca_pem), **FAST
            ) as feed:
                await feed.wait_live(timeout=5.0)

    _run(main())
    with pytest.raises(ValueError, match="both"):
        ServerTls(key=str(key))
    with pytest.raises((OSError, ssl.SSLError)):
        ServerTls(cert=str(tmp_path / "missing.pem"), key=str(key))


def test_the_self_signed_ca_file_is_removed_with_its_endpoint():
    import gc
    import os
    from pathlib import Path

    tls = ServerTls()
    path = tls.ca_file
    assert b"BEGIN CERTIFICATE" in Path(path).read_bytes()
    del tls
    gc.collect()
    assert not os.path.exists(path)


def test_capture_server_serves_a_capture_over_wss(tmp_path):
    from conftest import CF_BOOKS_0513

    async def main():
        async with CaptureServer(
            [CF_BOOKS_0513], speed=None, tls=True, wait_for_subscriber=True
        ) as srv:
            assert srv.ws_url.startswith("wss://")
            key = ("books", "BTC-USDT")
            feed = Feed(
                [key], url=srv.ws_url, rest_url=srv.rest_url, ca_file=srv.tls.ca_file, **FAST
            )
            async with feed:
                await srv.wait_done()
                for _ in range(300):
                    if (
                        feed.status(*key).state == "live"
                        and feed.book(*key).ts_ms == srv.books.get(*key).ts_ms
                    ):
                        break
                    await asyncio.sleep(0.01)
                assert feed.book(*key).bid_levels() == srv.books.get(*key).bid_levels()
                assert feed.book(*key).ask_levels() == srv.books.get(*key).ask_levels()

    _run(main())


def test_serve_cli_tls_prints_a_wss_url_and_the_ca_file_to_trust():
    from conftest import CF_BOOKS_0513

    with subprocess.Popen(
        [sys.executable, "-m", "okxbook", "serve", "--tls", "--speed", "max", str(CF_BOOKS_0513)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        _talk_to(proc)
    assert proc.returncode == 0


def _talk_to(proc: subprocess.Popen) -> None:
    try:
        url = proc.stdout.readline().strip()
        err = proc.stderr.readline()
        assert url.startswith("wss://127.0.0.1:"), (url, err)
        assert "REST https://127.0.0.1:" in err
        ca_line = proc.stderr.readline()
        assert "ca file" in ca_line.lower() and ".pem" in ca_line
        ca_file = ca_line.rsplit(" ", 1)[-1].strip()

        async def main():
            async with Feed([("books", "BTC-USDT")], url=url, ca_file=ca_file, **FAST) as feed:
                await feed.wait_live(timeout=10.0)

        _run(main())
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cert", "/nonexistent/cert.pem", "--key", "/nonexistent/key.pem"], "--cert"),
        (["--key", "k.pem"], "--key needs --cert"),
    ],
)
def test_serve_cli_bad_certificate_flags_are_one_line_exit_2(args, message):
    from conftest import CF_BOOKS_0513

    proc = subprocess.run(
        [sys.executable, "-m", "okxbook", "serve", *args, str(CF_BOOKS_0513)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
