"""Type stubs for okxbook.feed._hub (Cython): the feed's per-frame dispatch."""

from typing import Any

from typing_extensions import disjoint_base

from okxbook._book import Book

@disjoint_base  # a Cython extension type
class LinkCore:
    retired: bool
    _gone: bool
    staging: bool
    plain: bool
    last_rx: float
    books: Any
    by_book: dict[Any, Any]
    name: str
    hub: FeedHub

@disjoint_base
class SubCore:
    key: Any
    state: Any
    stale: bool
    last_rx: float
    latency: Any

@disjoint_base
class FeedHub:
    @property
    def top_callbacks(self) -> list[Any]: ...
    @property
    def book_callbacks(self) -> list[Any]: ...
    @property
    def depth_callbacks(self) -> list[Any]: ...
    @property
    def streams(self) -> list[Any]: ...
    @property
    def latency(self) -> Any: ...
    deltas: Any
    deltas_active: bool
    sbe: bool
    def __init__(self, latency: Any) -> None: ...
    def deltas_ready(self, recv_ns: int) -> None: ...
    def applied(self, conn: LinkCore, cs: SubCore, book: Book, recv_ns: int) -> None: ...
    def top(self, key: Any, book: Book, recv_ns: int, cs: SubCore | None = None) -> None: ...
