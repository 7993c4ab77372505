"""``okxbook watch --json`` as a subprocess (``python -m okxbook``) against a LocalExchange running
in the test's event loop: every line parses and has the documented keys, and every "live" line's
bid/ask strings are the exchange's top of book at that seqId (feed_helpers.truth)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from feed_helpers import run, truth

from okxbook.testing import LocalExchange

ROOT = Path(__file__).resolve().parents[1]
INSTS = ["BTC-USDT", "ETH-USDT"]
KEYS = {"channel", "instId", "seqId", "ts", "bid", "ask", "status"}


def test_watch_json_lines_match_the_exchange_book_at_each_seqid():
    async def main():
        async with LocalExchange(auto=True, interval=0.01) as ex:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "okxbook",
                "watch",
                "--url",
                ex.ws_url,
                "--rest-url",
                ex.rest_url,
                "--json",
                "--duration",
                "1.5",
                *INSTS,
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 20)
            return ex, proc.returncode, out, err

    ex, code, out, err = run(main)
    assert code == 0, err.decode()
    assert b"Traceback" not in err, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) > 20
    last_live = {}
    for line in lines:
        assert set(line) == KEYS, line
        assert line["channel"] == "books" and line["instId"] in INSTS
        assert line["status"] in ("syncing", "live", "resyncing", "invalid")
        if line["status"] == "live":
            assert isinstance(line["seqId"], int) and isinstance(line["ts"], int)
            assert all(isinstance(x, str) for x in line["bid"] + line["ask"])
            last_live[line["instId"]] = line
        else:
            assert line["bid"] is None and line["ask"] is None
    assert set(last_live) == set(INSTS)
    for inst in INSTS:
        t = truth(ex, ("books", inst))
        live = [ln for ln in lines if ln["instId"] == inst and ln["status"] == "live"]
        seqs = [ln["seqId"] for ln in live]
        assert seqs == sorted(seqs)
        for ln in live:  # every live line, the last one included
            assert (tuple(ln["bid"]), tuple(ln["ask"])) in t.tops[ln["seqId"]], ln
            assert str(ln["ts"]) in t.ts[ln["seqId"]], ln
        last = last_live[inst]
        assert (tuple(last["bid"]), tuple(last["ask"])) in t.tops[last["seqId"]]
