"""Type stubs for okxbook._checksum (Cython)."""

from collections.abc import Iterable, Sequence
from typing import Any

from typing_extensions import Buffer

# Levels best first; only the first two fields (px, sz strings) are used.
def okx_checksum(bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]]) -> int: ...

# CRC-32 of any contiguous bytes-like object, unsigned: zlib.crc32(data, value).
def crc32(data: Buffer, value: int = 0) -> int: ...

# Tests: force the zlib path (True) or return to the fastest (False); True if PCLMULQDQ is in use.
def _use_portable(portable: bool) -> bool: ...
def _accelerated() -> bool: ...
def _clmul_constants() -> tuple[int, int, int, int, int, int, int, int]: ...
