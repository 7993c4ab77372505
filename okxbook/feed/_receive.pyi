"""Type stubs for okxbook.feed._receive (Cython): the picows receive path."""

from collections.abc import Callable
from typing import Any

from picows import WSFrame, WSListener, WSTransport
from typing_extensions import disjoint_base

PICOWS_BUILT_WITH: str

@disjoint_base  # a Cython extension type
class Receiver(WSListener):
    @property
    def raw_frames(self) -> int: ...
    def __init__(self, owner: Any, conn: Any, on_frame: Callable[[bytes], None]) -> None: ...
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None: ...
