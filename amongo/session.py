"""Compatibility alias: this module lives in :mod:`amongo.engine.session` (issue 12).

``import amongo.session`` gives the very module object of ``amongo.engine.session`` (so
monkeypatching either name patches both).
"""
from __future__ import annotations

import sys

from amongo.engine import session as _impl
from amongo.engine.session import *  # noqa: F401,F403

sys.modules[__name__] = _impl
