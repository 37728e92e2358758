"""``install_as_motor()``: make ``import motor`` (and its submodules) resolve to amongo."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from typing import Dict, Optional, Sequence

#: Motor module name -> the amongo module that stands in for it.
MOTOR_MODULES: Dict[str, str] = {
    "motor": "amongo._motor_package",
    "motor.motor_asyncio": "amongo.motor_asyncio",
    "motor.motor_tornado": "amongo.motor_tornado",
    "motor.core": "amongo.motor_core",
    "motor.motor_gridfs": "amongo.motor_gridfs",
    "motor.aiohttp": "amongo.aiohttp",
    "motor.web": "amongo.web",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads a Motor module name by importing the amongo module and putting *it* in
    ``sys.modules`` under the Motor name (the import system returns what ``sys.modules``
    holds after ``exec_module``), so ``motor.motor_asyncio is amongo.motor_asyncio``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[types.ModuleType]:
        return None  # a throwaway placeholder; exec_module swaps in the amongo module

    def exec_module(self, module: types.ModuleType) -> None:
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _MotorFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: answers for the Motor names in :data:`MOTOR_MODULES`
    before the path finder could find an installed Motor; other ``motor.*`` names are not
    found (amongo has no ``motor.frameworks`` ...)."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[types.ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        alias = MOTOR_MODULES.get(fullname)
        if alias is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(alias), is_package=fullname == "motor")


_FINDER = _MotorFinder()


def install_as_motor() -> None:
    """Make ``import motor`` and ``motor.motor_asyncio``, ``motor.motor_tornado``,
    ``motor.core``, ``motor.motor_gridfs``, ``motor.aiohttp``, ``motor.web`` resolve to
    amongo, whether or not the real Motor is installed. Call it once, first thing (before
    importing the application or library that imports motor); calling it again is harmless.

    If real Motor modules were already imported, they are dropped from ``sys.modules`` (so
    every *later* import gets amongo) and a :class:`RuntimeWarning` says so: names already
    bound to real Motor objects (``from motor.motor_asyncio import AsyncIOMotorClient`` that
    ran before the call, and clients created from them) stay real Motor.
    """
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    ours = {id(sys.modules[t]) for t in MOTOR_MODULES.values() if t in sys.modules}
    real = [name for name, mod in list(sys.modules.items())
            if (name == "motor" or name.startswith("motor.")) and id(mod) not in ours]
    for name in real:
        del sys.modules[name]
    if real:
        warnings.warn(
            "install_as_motor(): the real Motor was already imported (" + ", ".join(sorted(real)[:5])
            + ("..." if len(real) > 5 else "") + "); later imports of motor get amongo, but names "
            "bound to Motor before this call stay Motor: call install_as_motor() first",
            RuntimeWarning, stacklevel=2)
