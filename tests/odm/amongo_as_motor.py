"""pytest plugin for ``make test-odm``: ``-p amongo_as_motor`` serves ``import motor`` from
amongo (``amongo.install_as_motor()``) before the ODM's conftest imports motor.

``AMONGO_ODM_DRIVER=motor`` leaves the real Motor in place (the baseline run).
"""
from __future__ import annotations

import os

import pytest

DRIVER = os.environ.get("AMONGO_ODM_DRIVER", "amongo")
if DRIVER == "amongo":
    import amongo

    amongo.install_as_motor()
elif DRIVER != "motor":
    raise RuntimeError(f"AMONGO_ODM_DRIVER must be 'amongo' or 'motor', not {DRIVER!r}")


def pytest_report_header(config: pytest.Config) -> str:
    import motor

    return f"motor served by: {DRIVER} ({motor.__name__} from {motor.__file__})"
