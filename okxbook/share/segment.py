"""Books in shared memory: ``Publisher``, the one writer (in the feeder process), and
``SharedBooks``, a reader (in any process on the host), over stdlib
``multiprocessing.shared_memory`` segments laid out and accessed by ``okxbook.share._shm`` (the
seqlock, the heartbeat; see its docstring).

Owns the segment's life: creating it (taking over the name from a dead writer, refusing it while
a live one has it), opening it by name without letting the reader's exit remove it, and removing
it when the writer closes (``close()``, the ``with`` block, or at interpreter exit). A writer
killed with SIGKILL cannot clean up: its readers see it dead (heartbeat, pid), the stdlib's
resource tracker removes the segment once the killed process is gone, and the next ``Publisher``
of that name replaces a segment left behind.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Iterable
from multiprocessing import resource_tracker, shared_memory
from typing import Any

from okxbook._book import Book
from okxbook.errors import ShareError

from ._shm import DEAD, STATUSES, SharedBook, ShmReader, ShmWriter, segment_size

__all__ = ["DEAD", "STATUSES", "Publisher", "SharedBook", "SharedBooks"]

#: Levels a side kept per book by default: all of a ``books`` book (OKX's deepest channel).
DEFAULT_LEVELS = 400
_CODE = {name: i for i, name in enumerate(STATUSES)}
_TRACK_LOCK = threading.Lock()


def _open_untracked(name: str) -> shared_memory.SharedMemory:
    """Open an existing segment without registering it with the resource tracker. Before 3.13
    ``SharedMemory(name)`` registers every segment it opens and the tracker unlinks them all when
    the process ends: a *reader* exiting would remove the writer's segment (bpo-39959), and
    unregistering afterwards would remove the writer's own registration when both share a
    tracker (a writer started by ``multiprocessing``). 3.13 has ``track=False``; before it, the
    register call is skipped for the one open (under a lock; other resource types pass)."""
    try:
        if sys.version_info >= (3, 13):
            return shared_memory.SharedMemory(name, track=False)  # type: ignore[call-arg,unused-ignore]
        with _TRACK_LOCK:
            real = resource_tracker.register

            def register(rname: Any, rtype: str) -> None:
                if rtype != "shared_memory":
                    real(rname, rtype)

            resource_tracker.register = register  # type: ignore[assignment]
            try:
                return shared_memory.SharedMemory(name)
            finally:
                resource_tracker.register = real
    except FileNotFoundError:
        raise ShareError(
            f"no shared book segment named {name!r} (is the publisher running?)"
        ) from None
    except OSError as exc:
        raise ShareError(f"cannot open shared book segment {name!r}: {exc}") from None


class Publisher:
    """Publishes books into the shared segment ``name``, one slot per ``(channel, instId)`` of
    ``keys``, each with the best ``levels`` a side.

    ``publish(book, status, recv_ns)`` after each frame; ``set_status`` when only the status
    changed; ``beat()`` at least every ``heartbeat_interval`` s while nothing is published (a
    reader calls the writer dead after ``dead_after`` s of neither). Never blocks on readers.
    """

    def __init__(
        self,
        name: str,
        keys: Iterable[tuple[str, str]],
        *,
        levels: int = DEFAULT_LEVELS,
        heartbeat_interval: float = 0.1,
        dead_after: float = 1.0,
    ) -> None:
        self.keys: list[tuple[str, str]] = [(str(c), str(i)) for c, i in keys]
        if not self.keys or len(set(self.keys)) != len(self.keys):
            raise ValueError("keys: at least one, no duplicates")
        if not 0 < heartbeat_interval < dead_after:
            raise ValueError("need 0 < heartbeat_interval < dead_after")
        if levels < 1:  # checked before the segment exists: a refused writer leaves none behind
            raise ValueError("levels must be >= 1")
        self.name = name
        self.heartbeat_interval = heartbeat_interval
        size = segment_size(len(self.keys), levels)
        self._shm = self._create(name, size)
        self.generation = time.time_ns()
        try:
            self._writer = ShmWriter(
                self._shm.buf,
                self.keys,
                levels,
                os.getpid(),
                self.generation,
                heartbeat_interval,
                dead_after,
            )
        except BaseException:
            # A segment with no writer would read as a live name nobody can publish to.
            self._shm.close()
            self._shm.unlink()
            raise
        self._slot = {k: i for i, k in enumerate(self.keys)}
        self._by_book: dict[Book, int] = {}  # the slot of each Book object published (a cache)
        self.levels = levels
        self.closed = False
        atexit.register(self.close)

    @staticmethod
    def _create(name: str, size: int) -> shared_memory.SharedMemory:
        try:
            return shared_memory.SharedMemory(name, create=True, size=size)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ShareError(f"cannot create shared book segment {name!r}: {exc}") from None
        old = _open_untracked(name)
        try:
            try:
                alive = ShmReader(old.buf).writer_alive()
            except ValueError:  # not laid out (a writer starting, or not ours): leave it
                alive = True
            if alive:
                raise ShareError(
                    f"shared book segment {name!r} exists and its writer is alive; "
                    "pick another name or stop that publisher"
                )
        finally:
            old.close()
        # A dead writer's segment: replace it (its readers keep their mapping and see it dead).
        # A tracked open, so that unlink's unregister is balanced.
        try:
            old_again = shared_memory.SharedMemory(name)
            old_again.close()
            old_again.unlink()
        except FileNotFoundError:  # its tracker removed it meanwhile
            pass
        try:
            return shared_memory.SharedMemory(name, create=True, size=size)
        except OSError as exc:
            raise ShareError(f"cannot create shared book segment {name!r}: {exc}") from None

    def slot(self, channel: str, inst_id: str) -> int:
        return self._slot[channel, inst_id]

    def publish(self, book: Book, status: str = "live", recv_ns: int = 0) -> None:
        """Copy ``book`` into its slot with ``status`` (one of ``STATUSES``; "live" is written
        only for a valid book) and its receive time."""
        slot = self._by_book.get(book)
        if slot is None:
            slot = self._by_book[book] = self._slot[book.channel, book.inst_id]
        self._writer.publish(slot, book, _CODE[status], recv_ns)

    def set_status(self, channel: str, inst_id: str, status: str) -> None:
        self._writer.set_status(self._slot[channel, inst_id], _CODE[status])

    def beat(self) -> None:
        self._writer.beat()

    def close(self) -> None:
        """Mark the segment closed (readers answer "dead") and remove it. Idempotent."""
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        self._writer.close()
        self._shm.close()
        try:
            self._shm.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SharedBooks:
    """The books a ``Publisher`` (in another process) publishes under ``name``.

    ``book(inst_id)`` or ``book(channel, inst_id)`` gives a ``SharedBook`` whose reads
    (``top()``, ``top_ticks()``, ``levels(n)``, ``info()``) are O(1)/O(n) copies that are never
    torn and say "dead" instead of "live" once the writer is gone. Open a new ``SharedBooks``
    to follow a restarted publisher (a new ``generation``). ``check_pid=False`` for a reader in
    another PID namespace than the writer (the heartbeat alone then tells a dead writer).
    """

    def __init__(self, name: str, *, check_pid: bool = True) -> None:
        self.name = name
        self._shm = _open_untracked(name)
        try:
            self._reader = ShmReader(self._shm.buf, check_pid)
        except ValueError as exc:
            self._shm.close()
            raise ShareError(f"shared book segment {name!r}: {exc}") from None
        self._keys = self._reader.keys()
        self._books: dict[tuple[str, str], SharedBook] = {}

    @property
    def generation(self) -> int:
        return int(self._reader.generation)

    @property
    def writer_pid(self) -> int:
        return int(self._reader.writer_pid)

    @property
    def levels(self) -> int:
        return int(self._reader.levels)

    def keys(self) -> list[tuple[str, str]]:
        return list(self._keys)

    def writer_alive(self) -> bool:
        return bool(self._reader.writer_alive())

    def heartbeat_age(self) -> float:
        return float(self._reader.heartbeat_age())

    def book(self, channel_or_inst: str, inst_id: str | None = None) -> SharedBook:
        if inst_id is None:
            found = [k for k in self._keys if k[1] == channel_or_inst]
            if len(found) != 1:
                raise KeyError(
                    f"{channel_or_inst!r}: {'no such book' if not found else 'give the channel'}"
                    f" (published: {', '.join(f'{c}/{i}' for c, i in self._keys)})"
                )
            key = found[0]
        else:
            key = (channel_or_inst, inst_id)
            if key not in self._keys:
                raise KeyError(f"{key!r} is not published in {self.name!r}")
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = self._reader.book(self._keys.index(key))
        return book

    def close(self) -> None:
        """Unmap the segment (the books got from it may not be read any more)."""
        self._books.clear()
        self._reader.close()
        self._shm.close()

    def __enter__(self) -> SharedBooks:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
