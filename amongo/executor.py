"""Compatibility alias: this module lives in :mod:`amongo.engine.executor` (issue 12).

``import amongo.executor`` gives the very module object of ``amongo.engine.executor`` (so
monkeypatching either name patches both).
"""
from __future__ import annotations

import sys

from amongo.engine import executor as _impl
from amongo.engine.executor import *  # noqa: F401,F403

sys.modules[__name__] = _impl
