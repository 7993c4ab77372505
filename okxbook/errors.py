"""Every error okxbook raises, in one hierarchy.

A ``BookError`` always names the book it concerns (channel, instId and the seqId of the frame that
failed, where known) so a caller holding many books can act on the right one. Integrity errors
(``ChecksumError``, ``SequenceError``) are raised *after* the book was marked invalid; input errors
(``FrameError`` and subclasses) are raised *before* anything changed: the frame was rejected whole.
"""

from __future__ import annotations

__all__ = [
    "BookError",
    "CaptureFormatError",
    "ChecksumError",
    "DeltaError",
    "EndpointError",
    "FrameError",
    "MissingSnapshotError",
    "OkxbookError",
    "RecorderError",
    "RestError",
    "SequenceError",
    "SubscriptionError",
    "TransportError",
    "UnknownChannelError",
    "UnknownInstrumentError",
]


class OkxbookError(Exception):
    """The one base of every error okxbook raises: ``except okxbook.OkxbookError`` catches them all.

    Each subclass also derives from the built-in error a caller would expect (``ValueError`` for bad
    input, ``ConnectionError`` for a transport, ``OSError`` for the recorder), so existing
    ``except`` clauses keep working.
    """


class BookError(OkxbookError):
    """Base of okxbook's errors: ``channel``, ``inst_id`` and ``seq_id`` say which book and frame."""

    def __init__(
        self,
        message: str,
        channel: str | None = None,
        inst_id: str | None = None,
        seq_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.inst_id = inst_id
        self.seq_id = seq_id

    def _where(self) -> str:
        parts = []
        if self.channel is not None:
            parts.append(f"{self.channel}/{self.inst_id}")
        if self.seq_id is not None:
            parts.append(f"seqId={self.seq_id}")
        return f" [{' '.join(parts)}]" if parts else ""

    def __str__(self) -> str:
        return f"{self.args[0]}{self._where()}"


class FrameError(BookError, ValueError):
    """The frame is malformed or unusable; no book was changed.

    ``reason`` says what is wrong and ``offset`` is the byte offset in the frame where it was found
    (-1 when the problem is not at one place, e.g. a value that overflows after scaling).
    """

    def __init__(
        self,
        reason: str,
        offset: int = -1,
        channel: str | None = None,
        inst_id: str | None = None,
        seq_id: int | None = None,
    ) -> None:
        where = f" at byte {offset}" if offset >= 0 else ""
        super().__init__(f"bad frame: {reason}{where}", channel, inst_id, seq_id)
        self.reason = reason
        self.offset = offset


class UnknownChannelError(FrameError):
    """A well-formed push for a channel okxbook does not keep books for (``trades``, ``tickers`` ...)."""


class UnknownInstrumentError(FrameError):
    """An SBE frame names an ``instIdCode`` no instId was given for (``Books.set_inst_id_code``);
    ``code`` is that instIdCode. No book was changed."""

    def __init__(self, code: int, channel: str | None = None) -> None:
        super().__init__(f"unknown instIdCode {code}", channel=channel)
        self.code = code


class MissingSnapshotError(FrameError):
    """An update arrived for a book that never had a snapshot to apply it to."""


class ChecksumError(BookError):
    """The CRC32 computed over the book after the frame differs from the frame's ``checksum``.

    The book has been marked invalid and stays unusable until its next snapshot.
    """

    def __init__(
        self, channel: str, inst_id: str, seq_id: int | None, expected: int, computed: int
    ) -> None:
        super().__init__(
            f"checksum mismatch: frame says {expected}, book gives {computed}",
            channel,
            inst_id,
            seq_id,
        )
        self.expected = expected
        self.computed = computed


class SequenceError(BookError):
    """``prevSeqId`` of an update does not continue the book's last ``seqId``: updates were lost.

    The frame was not applied; the book has been marked invalid until its next snapshot.
    """

    def __init__(
        self, channel: str, inst_id: str, seq_id: int | None, prev_seq_id: int, last_seq_id: int
    ) -> None:
        super().__init__(
            f"sequence gap: prevSeqId {prev_seq_id} does not follow last seqId {last_seq_id}",
            channel,
            inst_id,
            seq_id,
        )
        self.prev_seq_id = prev_seq_id
        self.last_seq_id = last_seq_id


class SubscriptionError(BookError):
    """OKX refused a subscription (e.g. 60018 unknown channel, 64003 fee tier, 64004 l2-tbt
    conflict). Other subscriptions carry on."""

    def __init__(self, channel: str, inst_id: str, code: str, msg: str) -> None:
        super().__init__(f"subscription refused: {code} {msg}", channel, inst_id)
        self.code = code
        self.msg = msg


class RestError(OkxbookError):
    """A REST snapshot could not be had (HTTP error, OKX error code, unusable body)."""


class TransportError(OkxbookError, ConnectionError):
    """Connecting failed (refused, handshake, TLS ...). ``permanent``: retrying cannot help (a
    4xx handshake answer, a TLS failure or a ws/wss mismatch), as opposed to a refused
    connection or a DNS failure, which may pass."""

    def __init__(self, *args: object, permanent: bool = False) -> None:
        super().__init__(*args)
        self.permanent = permanent


class EndpointError(SubscriptionError):
    """The endpoint cannot work for this subscription: its first connect failed in a way no retry
    can mend (``TransportError.permanent``); ``code`` is ``"connect"``, ``msg`` the reason."""

    def __init__(self, channel: str, inst_id: str, url: str, reason: str) -> None:
        super().__init__(channel, inst_id, "connect", reason)
        self.url = url
        self.args = (f"cannot connect to {url}: {reason}",)

    def __str__(self) -> str:  # the endpoint is at fault, not a book: no [channel/instId]
        return str(self.args[0])


class CaptureFormatError(OkxbookError, ValueError):
    """A line of a capture file is in no known format (or is not a complete frame)."""

    def __init__(self, path: str, line_no: int, reason: str) -> None:
        super().__init__(path, line_no, reason)
        self.path = path
        self.line_no = line_no
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no}: {self.reason}"


class RecorderError(OkxbookError, OSError):
    """Recording cannot start or had to stop (unwritable directory, write failure, writer behind)."""


class DeltaError(BookError, ValueError):
    """A delta stream does not fit the book rebuilt from it (a row lost, reordered or altered)."""


class ShareError(OkxbookError, OSError):
    """A shared-memory book segment cannot be created or opened (name in use by a live writer, no
    such segment, not an okxbook segment, another layout version)."""
