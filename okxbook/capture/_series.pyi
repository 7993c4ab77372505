"""Type stubs for okxbook._series (Cython)."""

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

from okxbook._book import Book

@disjoint_base  # a Cython extension type
class TopSeries:
    @property
    def bps(self) -> tuple[float, ...]: ...
    @property
    def only_top_changes(self) -> bool: ...
    def __init__(
        self, bps: Iterable[float] = (5, 10, 25), only_top_changes: bool = False
    ) -> None: ...
    def __len__(self) -> int: ...
    @property
    def book_names(self) -> list[str]: ...
    def observe(self, book: Book, recv_ns: int) -> None: ...
    def columns(self) -> dict[str, npt.NDArray[np.generic]]: ...

@disjoint_base  # a Cython extension type
class TopLevels:
    @property
    def n_levels(self) -> int: ...
    @property
    def every_ns(self) -> int: ...
    def __init__(
        self,
        n_levels: int = 10,
        every_ns: int = 0,
        batch_rows: int = 0,
        on_full: Callable[[TopLevels], object] | None = None,
    ) -> None: ...
    def __len__(self) -> int: ...
    @property
    def book_names(self) -> list[str]: ...
    def observe(self, book: Book, recv_ns: int) -> None: ...
    def take(self) -> dict[str, npt.NDArray[np.generic]]: ...

def merge_event_order(
    exch_ts: npt.NDArray[np.int64],
    local_ts: npt.NDArray[np.int64],
    by_exch: npt.NDArray[np.int64],
    by_local: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...
