"""Books shared across processes on one host: a feeder publishes, any process reads.

    # the feeder (or: okxbook publish NAME BTC-USDT ETH-USDT)
    with Publisher("okx", [("books", "BTC-USDT")]) as pub:
        pub.publish(book, "live", recv_ns)

    # a strategy, in another process
    with SharedBooks("okx") as books:
        status, seq_id, bid, bid_sz, ask, ask_sz = books.book("BTC-USDT").top()

``okxbook.share._shm`` is the segment (layout, seqlock, heartbeat; Cython), ``segment`` its life
(create, open, remove), ``feeder`` the glue from a live ``Feed`` (``FeedPublisher``; imported from
there, so that a reader does not load the feeder).
"""

from .segment import DEAD, DEFAULT_LEVELS, STATUSES, Publisher, SharedBook, SharedBooks

__all__ = [
    "DEAD",
    "DEFAULT_LEVELS",
    "STATUSES",
    "Publisher",
    "SharedBook",
    "SharedBooks",
]
