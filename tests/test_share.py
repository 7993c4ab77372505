"""Books shared across processes (okxbook.share): a reader process sees exactly the writer's book
at the seqId it reads, never torn, under a fast stream; a killed, stopped or closed writer is
"dead" to its readers, never stale-but-live; segments are removed on exit."""

from __future__ import annotations

import multiprocessing
import os
import signal
import struct
import time
import uuid
from multiprocessing import shared_memory

import numpy as np
import pytest
import share_helpers as sh

from okxbook import DEPTH_DTYPE, Books, ShareError
from okxbook.share import DEAD, Publisher, SharedBooks
from okxbook.share._shm import HEADER_SIZE

CTX = multiprocessing.get_context("spawn")  # no fork of a threaded test process


def fresh_name() -> str:
    return f"okxbook-test-{uuid.uuid4().hex[:12]}"


def gone(name: str) -> bool:
    try:
        shm = shared_memory.SharedMemory(name)
    except FileNotFoundError:
        return True
    shm.close()
    # Opened to look: keep the tracker of this process from removing it at our exit.
    from multiprocessing import resource_tracker

    resource_tracker.unregister(shm._name, "shared_memory")
    return False


def test_a_reader_process_sees_exactly_the_writers_book_at_each_seq_id_it_reads():
    stream = sh.frames(6000)
    states = sh.states_of(stream)
    last_seq = max(states, key=lambda s: list(states).index(s))
    name = fresh_name()
    # No heartbeat while waiting for the reader to start: a long dead_after keeps it "alive".
    with Publisher(name, [sh.KEY], levels=sh.LEVELS, heartbeat_interval=1, dead_after=120) as pub:
        ready, out = CTX.Event(), CTX.Queue()
        reader = CTX.Process(target=sh.read_until, args=(name, last_seq, ready, out, 1))
        reader.start()
        assert ready.wait(60), "reader did not start"
        books = Books()
        for i, frame in enumerate(stream):  # as fast as it goes, in bursts of 50 frames
            pub.publish(books.apply(frame), "live", time.time_ns())
            if i % 50 == 49:
                # A pause between bursts lets the reader run on a loaded machine, where the writer
                # would otherwise write the whole stream before the reader is scheduled (it then
                # saw under 20 states); within a burst the reader races full-speed writes.
                time.sleep(0.001)
        kind, samples, retries = out.get(timeout=60)
        reader.join(10)
    assert kind == "samples"
    before = [x for x in samples if x[1] == -1]  # read before the first publish
    assert all(st == "syncing" and s in (None, b"") for st, _, s in before)
    samples = samples[len(before) :]
    levels = [(st, seq, s) for st, seq, s in samples if s is not None]
    seen = {seq for _, seq, _ in levels}
    assert len(seen) > 20, f"the reader saw only {len(seen)} states of the stream"
    for status, seq_id, got in levels:
        assert status == "live"
        assert got == states[seq_id], f"torn or wrong book at seqId {seq_id}"
    for status, seq_id, _ in samples:
        assert status == "live" and seq_id in states
    assert levels[-1][1] == last_seq
    print(f"{len(samples)} samples, {len(seen)} distinct seqIds, {retries} retried copies")


def test_a_killed_writer_is_dead_to_its_reader_even_in_the_middle_of_a_write():
    name = fresh_name()
    ready = CTX.Event()
    writer = CTX.Process(target=sh.write_forever, args=(name, ready))
    writer.start()
    try:
        assert ready.wait(60)
        shared = SharedBooks(name)
        book = shared.book("S-HM")
        deadline = time.monotonic() + 10
        while book.top()[0] != "live" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert book.top()[0] == "live" and shared.writer_alive()
        assert shared.writer_pid == writer.pid
        # While it runs, every read is exactly the writer's book at that seqId.
        states = sh.states_of(sh.frames(400, seed=9))
        bids = np.empty(sh.LEVELS, dtype=DEPTH_DTYPE)
        asks = np.empty(sh.LEVELS, dtype=DEPTH_DTYPE)
        seen = set()
        for _ in range(3000):
            status, seq_id, _ts, _recv, nb, na = book.levels_into(bids, asks)
            assert status == "live"
            assert sh.shared_state(bids[:nb], asks[:na]) == states[seq_id]
            seen.add(seq_id)
        assert len(seen) > 5
        by_heartbeat = SharedBooks(name, check_pid=False)  # e.g. another PID namespace
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(10)
    time.sleep(0.002)  # the reader looks at the pid at most once a millisecond
    assert not shared.writer_alive()
    time.sleep(0.35)  # dead_after is 0.3 s: the heartbeat alone tells it too
    assert by_heartbeat.book("S-HM").top()[0] == DEAD
    by_heartbeat.close()
    assert book.top()[0] == DEAD and book.top_ticks()[0] == DEAD
    status, seq_id, *_rest, bids, asks = book.levels(25)
    assert status == DEAD and seq_id >= 0 and len(bids) and len(asks)  # data, flagged dead
    assert book.info()["status"] == DEAD
    # A writer killed between its two counter stores leaves the slot odd: the reader must not
    # spin forever on it, it answers "dead".
    counter = HEADER_SIZE  # slot 0's seqlock counter
    (seq,) = struct.unpack_from("<Q", shared._shm.buf, counter)
    struct.pack_into("<Q", shared._shm.buf, counter, seq | 1)
    started = time.monotonic()
    assert book.top() == (DEAD, -1, *(float("nan"),) * 4) or book.top()[0] == DEAD
    assert book.levels(5)[0] == DEAD
    assert time.monotonic() - started < 1.0
    shared.close()
    # The name is free again: the stdlib tracker removed the segment, or the next publisher
    # replaces a dead writer's segment.
    with Publisher(name, [sh.KEY], levels=sh.LEVELS) as pub:
        assert pub.generation > 0
    assert gone(name)


def test_a_stopped_writer_turns_dead_after_dead_after_and_live_when_it_resumes():
    name = fresh_name()
    ready = CTX.Event()
    writer = CTX.Process(target=sh.write_forever, args=(name, ready))
    writer.start()
    try:
        assert ready.wait(60)
        shared = SharedBooks(name)
        book = shared.book("S-HM")
        deadline = time.monotonic() + 10
        while book.top()[0] != "live" and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(writer.pid, signal.SIGSTOP)
        time.sleep(0.5)  # dead_after is 0.3 s: a hung writer's book must not read as live
        assert shared.heartbeat_age() > 0.3
        assert book.top()[0] == DEAD
        os.kill(writer.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while book.top()[0] != "live" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert book.top()[0] == "live"
        shared.close()
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(10)
    Publisher(name, [sh.KEY]).close()  # takes the dead writer's segment over, then removes it
    assert gone(name)


def test_reads_racing_a_writer_that_never_pauses_are_never_torn():
    """The writer process alternates two books that differ at every level, back to back; every
    read of this process is exactly one of them, with its own seqId (a torn copy would mix)."""
    a, b = sh.two_books()
    want = {a.seq_id: sh.state(a), b.seq_id: sh.state(b)}
    want_top = {
        x.seq_id: ("live", x.seq_id, x.best_bid_ticks, x.bids(1)["sz_lots"][0],
                   x.best_ask_ticks, x.asks(1)["sz_lots"][0])
        for x in (a, b)
    }  # fmt: skip
    name = fresh_name()
    ready = CTX.Event()
    writer = CTX.Process(target=sh.alternate, args=(name, ready, 3.0))
    writer.start()
    try:
        assert ready.wait(60)
        shared = SharedBooks(name)
        book = shared.book(*sh.KEY)
        bids = np.empty(sh.LEVELS, dtype=DEPTH_DTYPE)
        asks = np.empty(sh.LEVELS, dtype=DEPTH_DTYPE)
        seen = {a.seq_id: 0, b.seq_id: 0}
        end = time.monotonic() + 1.5
        reads = 0
        while time.monotonic() < end:
            for _ in range(200):
                status, seq_id, _ts, _recv, nb, na = book.levels_into(bids, asks)
                assert status == "live"
                assert sh.shared_state(bids[:nb], asks[:na]) == want[seq_id]
                assert book.top_ticks() in want_top.values()
                seen[seq_id] += 1
                reads += 1
        print(f"{reads} reads, {book.retries} retried copies, seen {seen}")
        assert all(seen.values())
        shared.close()
    finally:
        writer.join(30)
    assert writer.exitcode == 0 and gone(name)


@pytest.mark.parametrize("close", [True, False], ids=["close", "atexit"])
def test_the_segment_is_removed_when_the_writer_exits(close):
    name = fresh_name()
    writer = CTX.Process(target=sh.publish_and_exit, args=(name, close))
    writer.start()
    writer.join(60)
    assert writer.exitcode == 0
    assert gone(name)
    with pytest.raises(ShareError, match="no shared book segment"):
        SharedBooks(name)


def test_status_seq_and_levels_follow_the_writer_in_one_process(mkframe):
    name = fresh_name()
    books = Books()
    frame = mkframe("books", "S-HM", [("10.5", "2"), ("10", "1")], [("11", "3")],
                    action="snapshot", seqId=7, prevSeqId=-1, ts="1700000000123")  # fmt: skip
    book = books.apply(frame)
    with Publisher(name, [sh.KEY, ("books", "OTHER")], levels=4) as pub:
        with SharedBooks(name) as shared:
            sb = shared.book("S-HM")
            assert shared.keys() == [sh.KEY, ("books", "OTHER")]
            assert sb.top()[0] == "syncing" and sb.seq_id == -1  # nothing published yet
            pub.publish(book, "live", 123)
            assert sb.top() == ("live", 7, 10.5, 2.0, 11.0, 3.0)
            assert sb.top_ticks() == ("live", 7, 105, 2, 110, 3)
            info = sb.info()
            assert (info["ts_ms"], info["recv_ns"], info["updates"]) == (1700000000123, 123, 1)
            status, seq_id, ts, recv, bids, asks = sb.levels(10)
            assert np.array_equal(bids, book.bids()) and np.array_equal(asks, book.asks())
            pub.set_status("books", "S-HM", "resyncing")
            assert sb.status == "resyncing" and sb.top()[1] == 7
            pub.publish(book, "live", 124)
            book.invalidate("test")
            pub.publish(book, "live", 125)  # an invalid book is never published as live
            assert sb.status == "invalid"
            out = np.zeros(2, dtype=DEPTH_DTYPE)
            with pytest.raises(TypeError):
                sb.levels_into(np.zeros(2), out)
            with pytest.raises(KeyError):
                shared.book("NOPE")
        with pytest.raises(ShareError, match="writer is alive"):
            Publisher(name, [sh.KEY])
        shared = SharedBooks(name)
    assert shared.book("S-HM").status == DEAD  # closed writer
    with pytest.raises(ValueError, match="closed"):
        pub.publish(book, "live", 1)  # not a crash
    shared.close()
    assert gone(name)


def test_a_segment_that_is_not_okxbooks_is_refused():
    name = fresh_name()
    other = shared_memory.SharedMemory(name, create=True, size=4096)
    try:
        with pytest.raises(ShareError, match="not an okxbook segment"):
            SharedBooks(name)
    finally:
        other.close()
        other.unlink()
