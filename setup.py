"""Builds okxbook's Cython core. One mandatory set of extensions: if they do not build, the install
fails (there is no pure-Python fallback).

OKXBOOK_DEBUG=1 turns on Cython's annotate HTML, line tracing (for coverage/profilers) and bounds
checks.
"""

import os

from Cython.Build import cythonize
from Cython.Compiler import Options
from setuptools import Extension, setup

DEBUG = os.environ.get("OKXBOOK_DEBUG", "") not in ("", "0")
Options.warning_errors = True

MODULES = [
    "_wire",
    "_sbe",
    "_checksum",
    "_deltas",
    "_book",
    "_books",
    "_query",
    "capture/_series",
    "feed/_hist",
    "feed/_hub",
    "share/_shm",
]
# The picows receive path (feed/_receive.pyx) cimports picows: built when picows is installed at
# build time (it is in the build requirements); without it the feed uses picows' Python listener.
# The picows version it was compiled against is built in (PICOWS_BUILT_WITH): the feed uses the C
# path only with that same version, as a subclass of picows' cdef WSListener depends on its layout.
picows_version = None
try:
    from importlib.metadata import version

    import picows  # noqa: F401

    picows_version = version("picows")
    MODULES.append("feed/_receive")
except ImportError:
    pass

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if DEBUG:
    macros += [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")]

extensions = [
    Extension(
        f"okxbook.{name.replace('/', '.')}",
        [f"okxbook/{name}.pyx"],
        libraries=["z"] if name == "_checksum" else [],
        # The CRC-32 by carry-less multiplication (C, included by _checksum.pyx).
        depends=["okxbook/_crc32.h"] if name == "_checksum" else [],
        define_macros=macros
        + (
            [("OKXBOOK_PICOWS_VERSION", f'"{picows_version}"')]
            if name == "feed/_receive"
            else []
        ),
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )
    for name in MODULES
]

# The extensions are compiled side by side, one per core (build_ext's own --parallel): the C
# compile of the eleven modules is most of an install's time. OKXBOOK_BUILD_JOBS overrides it.
jobs = int(os.environ.get("OKXBOOK_BUILD_JOBS", "0")) or os.cpu_count() or 1

setup(
    options={"build_ext": {"parallel": jobs}},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        nthreads=jobs,
        annotate=DEBUG,
        compiler_directives={
            "boundscheck": DEBUG,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": DEBUG,
            "embedsignature": True,
            "linetrace": DEBUG,
        },
    ),
)
