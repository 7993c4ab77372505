"""Type stubs for okxbook._checksum (Cython)."""

from collections.abc import Iterable, Sequence

def okx_checksum(bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> int: ...
