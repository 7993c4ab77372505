"""Type stubs for okxbook._deltas (Cython)."""

from typing import Final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

DELTA_DTYPE: Final[np.dtype[np.void]]
FRAME_DTYPE: Final[np.dtype[np.void]]
TEXT_DTYPE: Final[np.dtype[np.void]]
DELTA_TEXT_DTYPE: Final[np.dtype[np.void]]
CLEAR: Final[int]
INSERT: Final[int]
UPDATE: Final[int]
DELETE: Final[int]
TRIM: Final[int]
RESCALE: Final[int]
INVALID: Final[int]
ACTION_NAMES: Final[tuple[str, ...]]
STATUS_NAMES: Final[tuple[str, ...]]

@disjoint_base  # a Cython extension type
class DeltaRecorder:
    def __init__(self, batch: bool = False, capacity: int = 1024, text: bool = False) -> None: ...
    @property
    def batch(self) -> bool: ...
    @property
    def text(self) -> bool: ...
    @property
    def recv_ns(self) -> int: ...
    @recv_ns.setter
    def recv_ns(self, value: int) -> None: ...
    @property
    def books(self) -> list[tuple[str, str]]: ...
    @property
    def recorded(self) -> int: ...
    @property
    def n_rows(self) -> int: ...
    @property
    def n_frames(self) -> int: ...
    def rows(self, copy: bool = True) -> npt.NDArray[np.void]: ...
    def frames(self, copy: bool = True) -> npt.NDArray[np.void]: ...
    def take(self) -> tuple[npt.NDArray[np.void], npt.NDArray[np.void]]: ...
    def clear(self) -> None: ...
