"""Old import paths, kept working: ``okxbook.replay`` is ``okxbook.capture.replay`` and so on.

Before the tree had a folder per layer, these modules sat at the package top. A meta path finder
answers the old names with the module that now owns them (the same module object, not a copy), so
``import okxbook.replay`` and ``from okxbook.export import write_parquet`` go on working without a
file per old name in the tree. New code imports the new paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

#: old module name -> the module that owns it now.
MOVED: dict[str, str] = {
    "okxbook.replay": "okxbook.capture.replay",
    "okxbook.recorder": "okxbook.capture.recorder",
    "okxbook.serve": "okxbook.capture.serve",
    "okxbook.export": "okxbook.capture.export",
    "okxbook.plot": "okxbook.capture.plot",
    "okxbook.parallel": "okxbook.capture.parallel",
    "okxbook.progress": "okxbook.capture.progress",
    "okxbook._series": "okxbook.capture._series",
    "okxbook.watch": "okxbook.cli.watch",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self) -> None:
        self._own_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        # module_from_spec() is about to stamp the alias spec on the owning module: keep its own
        # to give back in exec_module (else its relative imports warn, reload() reloads the alias).
        self._own_specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The owning module ran when create_module imported it; only its spec needs putting back.
        module.__spec__ = self._own_specs.pop(module.__name__)


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
