"""Shared pytest configuration.

``async def`` tests run on a fresh event loop each (``AMONGO_TEST_LOOP=uvloop`` runs them on
uvloop). This is all the async support the suite needs, so it does not depend on a plugin.
"""
from __future__ import annotations

import asyncio
import inspect
import os
from typing import Any

import pytest


def _new_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("AMONGO_TEST_LOOP") == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_async(coro: Any, timeout: float = 120.0) -> Any:
    """Run *coro* to completion on a new loop (bounded by *timeout* seconds)."""
    loop = _new_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        funcargs = pyfuncitem.funcargs
        argnames = pyfuncitem._fixtureinfo.argnames
        kwargs = {name: funcargs[name] for name in argnames}
        marker = pyfuncitem.get_closest_marker("timeout")
        timeout = float(marker.args[0]) if marker else 120.0
        run_async(pyfuncitem.obj(**kwargs), timeout)
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "timeout(seconds): bound an async test's run time")
