"""What part of a capture a replay or export takes: some books (``--book channel/instId``) and a time
window (``--from``/``--to``).

Owns the selection and its parsing, nothing else: ``replay.replay_frames`` applies it. Books left out
are not applied at all (a frame is recognised by its ``arg`` bytes, no JSON decode), so selecting one
instrument of a busy capture is also faster. The time window does not skip frames before it: every
frame of a selected book is applied (its book must be right when the window opens), and only frames
whose time falls in ``[start, end)`` reach the series or export; frames after the window are not
read when the capture has receive times. A frame's time is its receive time, else its exchange
``ts`` (JSON lines record no receive time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["Selection", "parse_book", "parse_interval", "parse_time"]

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000}
_UNITS["h"] = 60 * _UNITS["m"]


def parse_interval(text: str) -> int:
    """``"100ms"``, ``"1s"``, ``"250us"``, ``"5m"``, ``"1h"``, ``"500ns"`` -> ns (positive)."""
    s = text.strip().lower()
    for unit in ("ns", "us", "ms", "s", "m", "h"):
        number = s[: -len(unit)]
        if s.endswith(unit) and number.replace(".", "", 1).isdigit():
            value = round(float(number) * _UNITS[unit])
            if value > 0:
                return value
    raise ValueError(f"interval {text!r}: expected a positive number and a unit, e.g. 100ms, 1s")


def parse_book(text: str) -> str:
    """``"books/BTC-USDT"`` as given; raises ValueError for anything not ``channel/instId``."""
    channel, sep, inst = text.partition("/")
    if not sep or not channel or not inst or "/" in inst or '"' in text:
        raise ValueError(f"book {text!r}: expected channel/instId, e.g. books/BTC-USDT")
    return text


def parse_time(text: str) -> int:
    """A time as ns since the Unix epoch: an ISO 8601 date or date-time (no zone means UTC, e.g.
    ``2022-05-13``, ``2022-05-13T08:30:00.5Z``, ``2022-05-13 08:30+02:00``) or an integer of ns."""
    s = text.strip()
    if s.isdigit():
        return int(s)
    try:
        when = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"time {text!r}: expected an ISO date/time such as 2022-05-13T08:30:00Z or ns"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


@dataclass(frozen=True)
class Selection:
    """Books (``"channel/instId"``; empty: all) and a half-open time window in ns (None: open)."""

    books: frozenset[str] = field(default_factory=frozenset)
    start_ns: int | None = None
    end_ns: int | None = None

    def __post_init__(self) -> None:
        for key in self.books:
            parse_book(key)
        if self.start_ns is not None and self.end_ns is not None and self.end_ns <= self.start_ns:
            raise ValueError("--to must be later than --from")

    @classmethod
    def of(
        cls,
        books: Iterable[str] | None = None,
        start: int | str | None = None,
        end: int | str | None = None,
    ) -> Selection:
        """From user values: book keys, and times as ns or text for :func:`parse_time`."""
        return cls(
            frozenset(parse_book(b) for b in books or ()),
            parse_time(start) if isinstance(start, str) else start,
            parse_time(end) if isinstance(end, str) else end,
        )

    @property
    def everything(self) -> bool:
        return not self.books and self.start_ns is None and self.end_ns is None

    @property
    def timed(self) -> bool:
        return self.start_ns is not None or self.end_ns is not None

    def markers(self) -> list[tuple[bytes, bytes]]:
        """The ``arg`` bytes that mark a selected book's frames: ``"channel":"X"`` and
        ``"instId":"Y"`` (closing quotes included, so ``BTC-USDT`` does not take
        ``BTC-USDT-SWAP``), compact as OKX sends them and with a space after the colon as
        pretty-printed captures have them."""
        out = []
        for key in sorted(self.books):
            channel, _, inst = key.partition("/")
            for sep in (":", ": "):
                out.append(
                    (f'"channel"{sep}"{channel}"'.encode(), f'"instId"{sep}"{inst}"'.encode())
                )
        return out

    def takes(self, frame: bytes) -> bool:
        """Whether ``frame`` may belong to a selected book (always, with no book selection)."""
        if not self.books:
            return True
        return any(c in frame and i in frame for c, i in self.markers())

    def in_window(self, t_ns: int) -> bool:
        return (self.start_ns is None or t_ns >= self.start_ns) and (
            self.end_ns is None or t_ns < self.end_ns
        )
