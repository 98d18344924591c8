"""Modules imported on first use, so that ``dse --help`` and light commands pay for none of Optuna,
OR-Tools, pandas or matplotlib. ``cd = lazy("studies.codesign")`` reads like an import; the real
import happens at the first attribute access (``cd.run_worker``), once, through ``sys.modules``."""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


def lazy(name: str) -> LazyModule:
    return LazyModule(name)
