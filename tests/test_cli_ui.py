"""The terminal UI: on a terminal the table is redrawn in place (rich Live), never by clearing the
screen; ``record`` in a pipe prints a status line a second, not a table (issue 9, UI)."""

from __future__ import annotations

import asyncio
import io
import sys

from okxbook.cli.watch import demo
from okxbook.testing import LocalExchange


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_table_is_redrawn_in_place_with_rich():
    out = FakeTerminal()
    assert demo(out=out) == 0
    text = out.getvalue()
    assert "\x1b[2J" not in text  # no clear-screen copies filling the scrollback
    assert "\x1b[1A" in text  # cursor up: rich's Live redraws over the previous table
    assert "BTC-USDT" in text and "books live 3/3" in text


def test_record_in_a_pipe_prints_status_lines_not_tables(tmp_path):
    async def main() -> tuple[int | None, str, str]:
        async with LocalExchange(interval=0.01) as ex:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "okxbook",
                "record",
                "BTC-USDT",
                "--url",
                ex.ws_url,
                "--rest-url",
                ex.rest_url,
                "--out",
                str(tmp_path / "rec"),
                "--compression",
                "gzip",
                "--duration",
                "3",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, out.decode(), err.decode()

    code, out, err = asyncio.run(main())
    assert code == 0, err
    lines = out.splitlines()
    status = [line for line in lines if line.startswith("record: ")]
    assert status and all("frames written" in s and "MB" in s and "frames/s" in s for s in status)
    assert any(".tardis.gz" in s for s in status)
    assert sum("instId" in line for line in lines) == 1  # one table, at the end


def test_watch_in_a_pipe_prints_status_lines_not_a_table_each_second(capsys):
    from feed_helpers import exchange_in_a_thread

    from okxbook.cli import main

    with exchange_in_a_thread(interval=0.01) as ex:
        code = main(["watch", "BTC-USDT", "ETH-USDT", "--url", ex.ws_url, "--rest-url",
                     ex.rest_url, "--duration", "2.5"])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    status = [line for line in lines if line.startswith("watch: ")]
    assert len(status) >= 2, lines
    assert status[-1].startswith("watch: 2/2 live; BTC-USDT ") and " x " in status[-1]
    assert "; ETH-USDT " in status[-1]
    assert all(len(line) <= 80 for line in status)
    assert sum("instId" in line for line in lines) == 1  # one table, at the end
