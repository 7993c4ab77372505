"""okxbook._wire is the Cython frame scanner; it has no Python-level API (use ``Books.apply``).
Cython code can ``cimport`` ``scan_frame`` and ``Scratch`` from ``okxbook/_wire.pxd``."""
