"""Captures: what was received, on disk and back.

The capture layer sits on the core (``okxbook._books``) and beside the live feeder: ``files`` reads
and writes capture lines, ``recorder`` writes them from a live feed, ``replay`` runs them through
``Books.apply`` and reports, ``serve`` plays them to OKX clients, ``export``/``plot``/``parallel``
turn replays into research data, ``_series`` records per-frame rows in C.

The capture-file API is re-exported here (``okxbook.capture.iter_frames`` ...) as before the
package existed.
"""

from .files import (
    CapturedFrame,
    CaptureFormatError,
    CaptureWarning,
    format_tardis_line,
    iter_frames,
    parse_tardis_timestamp,
)

__all__ = [
    "CaptureFormatError",
    "CaptureWarning",
    "CapturedFrame",
    "format_tardis_line",
    "iter_frames",
    "parse_tardis_timestamp",
]
