"""What ``import motor`` gives after :func:`amongo.install_as_motor`.

Motor's package root: ``version`` / ``version_tuple`` / ``get_version_string`` (the Motor
release whose API amongo implements, so libraries' version checks take Motor 3.7.1's
branches) and, as Motor does, the Tornado class names (``motor.MotorClient`` ...).
Its submodules (``motor.motor_asyncio`` ...) are resolved by the finder
:func:`amongo.install_as_motor` installs.
"""
from __future__ import annotations

import importlib
from typing import Any, List, Tuple, Union

from amongo._version import __version__ as amongo_version  # noqa: F401 - says who serves motor
from amongo.motor_tornado import *  # noqa: F401,F403
from amongo.motor_tornado import __all__  # noqa: F401

#: The Motor release whose API amongo implements.
version = "3.7.1"
version_tuple: Tuple[Union[int, str], ...] = (3, 7, 1)

# A package (submodules are found by amongo's motor finder, never on disk).
__path__: List[str] = []


def get_version_string() -> str:
    """The Motor version amongo stands in for (Motor: ``motor.get_version_string``)."""
    return version


def __getattr__(name: str) -> Any:
    """``motor.core`` etc. as attributes (``from motor import core``), imported on first use."""
    from amongo._motor_switch import MOTOR_MODULES

    if f"motor.{name}" in MOTOR_MODULES:
        return importlib.import_module(MOTOR_MODULES[f"motor.{name}"])
    raise AttributeError(f"module 'motor' has no attribute {name!r}")
