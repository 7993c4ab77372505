# cython: language_level=3
"""The picows receive path in C (issue 10, "Live feeder"): picows calls ``on_ws_frame`` of this
listener from its own Cython read loop; a whole text/binary frame of a live book goes from picows'
read buffer (``frame.payload_ptr``, no ``bytes`` object) into ``Books.apply_raw``, and the
connection's per-frame bookkeeping for a live book (receive clocks, ``last_rx``) runs here, then
the feed's hub (``feed._hub.FeedHub``, C too): no Python call at all for a frame no consumer
asked for, and only the consumers' own callbacks otherwise.

Everything else takes the connection's ordinary Python path (``Connection._on_frame`` or, after
the apply, ``Connection._applied`` / ``_apply_failed``), with the frame as ``bytes`` made only
then: events, rejected frames, books not live (subscribing, syncing, seeding, stale), a recording
feed (it keeps the bytes), a 64008 successor still staging, the SBE feed (its latency fields),
fragmented messages. So there is one implementation of each decision; this module only skips the
Python layer for the case that has nothing to decide.

Hand-written because picows has no such hook: its Python ``WSListener`` costs a Python call and a
``bytes`` copy per frame.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from posix.time cimport clock_gettime, timespec, CLOCK_REALTIME, CLOCK_MONOTONIC
from picows.picows cimport WSListener, WSTransport, WSFrame, WSMsgType
from okxbook._books cimport Books
from okxbook._book cimport Book
from okxbook.feed._hub cimport FeedHub, LinkCore, SubCore

from okxbook.feed.sync import State

cdef extern from *:
    """
    #ifndef OKXBOOK_PICOWS_VERSION
    #define OKXBOOK_PICOWS_VERSION ""
    #endif
    """
    const char* OKXBOOK_PICOWS_VERSION

#: The picows version this module was compiled against (setup.py): the transport uses it only
#: with that same picows installed, since ``Receiver`` extends picows' cdef ``WSListener``.
PICOWS_BUILT_WITH = OKXBOOK_PICOWS_VERSION.decode("ascii")

cdef object LIVE = State.LIVE


cdef inline long long _now(int clock) noexcept:
    cdef timespec ts
    clock_gettime(clock, &ts)
    return <long long>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef class Receiver(WSListener):
    """A picows listener feeding ``conn`` (a ``Connection``); ``owner`` (the ``PicowsTransport``)
    gets the close code. ``on_frame(bytes)`` is the whole-message Python path."""

    cdef object owner
    cdef object conn
    cdef object on_frame
    cdef list fragments
    cdef readonly long long raw_frames     # frames that took the C path to the end

    def __init__(self, owner, conn, on_frame):
        self.owner = owner
        self.conn = conn
        self.on_frame = on_frame
        self.fragments = []
        self.raw_frames = 0

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef WSMsgType kind = frame.msg_type
        if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
            if frame.fin:
                self._message(frame.payload_ptr, frame.payload_size)
            else:
                self.fragments = [frame.get_payload_as_bytes()]
        elif kind == WSMsgType.CONTINUATION:
            self.fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                data = b"".join(self.fragments)
                self.fragments = []
                self.on_frame(data)
        elif kind == WSMsgType.CLOSE:
            code = frame.get_close_code()
            self.owner.close_code = code
            transport.send_close(code)
            transport.disconnect()

    cdef _message(self, const char* p, Py_ssize_t n):
        if self.conn is None:
            self.on_frame(PyBytes_FromStringAndSize(p, n))
            return
        cdef LinkCore conn = <LinkCore?>self.conn
        if conn.retired or conn._gone:  # a socket judged dead: what it still delivers is late
            return
        if conn.staging or not conn.plain:
            self.on_frame(PyBytes_FromStringAndSize(p, n))
            return
        cdef long long recv_ns = _now(CLOCK_REALTIME)
        conn.last_rx = _now(CLOCK_MONOTONIC) / 1e9
        cdef Books books = <Books?>conn.books
        cdef FeedHub hub = conn.hub
        try:
            result = books.apply_raw(p, n, None)
        except Exception as exc:
            conn._apply_failed(exc, PyBytes_FromStringAndSize(p, n))
            hub.deltas_ready(recv_ns)
            return
        if hub.deltas_active:
            hub.deltas_ready(recv_ns)
        if type(result) is not Book:
            conn._applied(result, PyBytes_FromStringAndSize(p, n), recv_ns)
            return
        cdef PyObject* found = PyDict_GetItem(conn.by_book, result)
        if found is NULL or not isinstance(<object>found, SubCore):  # a stray book
            conn._applied(result, PyBytes_FromStringAndSize(p, n), recv_ns)
            return
        cdef SubCore cs = <SubCore>found
        if cs.stale or cs.state is not LIVE:
            conn._applied(result, PyBytes_FromStringAndSize(p, n), recv_ns)
            return
        # A live book of this connection: what Connection._applied does for it, no more.
        cs.last_rx = conn.last_rx
        hub.live_frame(conn, cs, <Book>result, recv_ns)
        self.raw_frames += 1
