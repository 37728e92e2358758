"""Compatibility alias: this module lives in :mod:`amongo.engine.operations` (issue 12).

``import amongo.operations`` gives the very module object of ``amongo.engine.operations`` (so
monkeypatching either name patches both).
"""
from __future__ import annotations

import sys

from amongo.engine import operations as _impl
from amongo.engine.operations import *  # noqa: F401,F403

sys.modules[__name__] = _impl
