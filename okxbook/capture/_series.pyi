"""Type stubs for okxbook._series (Cython)."""

from collections.abc import Iterable

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
