"""``amongo.install_as_motor()``: ``import motor`` and its submodules resolve to amongo.

Each case runs in a fresh interpreter (the switch changes ``sys.modules`` and
``sys.meta_path`` for the whole process), with warnings as errors.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def hide(package: str) -> str:
    """Code that makes *package* (and its submodules) unimportable, as if not installed."""
    return f"""
        import sys, importlib.abc
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == {package!r} or name.startswith({package!r} + "."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
                return None
        sys.meta_path.insert(0, Hide())
        """


def test_every_motor_module_resolves_to_amongo():
    run("""
        import amongo
        amongo.install_as_motor()
        amongo.install_as_motor()  # idempotent
        import sys
        assert sum(type(f).__name__ == "_MotorFinder" for f in sys.meta_path) == 1

        import motor, motor.motor_asyncio, motor.motor_tornado, motor.core, motor.motor_gridfs
        import amongo.motor_asyncio, amongo.motor_tornado, amongo.motor_core, amongo.motor_gridfs
        assert motor.motor_asyncio is amongo.motor_asyncio and motor.motor_tornado is amongo.motor_tornado
        assert motor.core is amongo.motor_core and motor.motor_gridfs is amongo.motor_gridfs
        assert motor.__name__ == "amongo._motor_package"
        assert motor.version == "3.7.1" and motor.version_tuple == (3, 7, 1)
        assert motor.get_version_string() == "3.7.1"
        from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorClientSession, AsyncIOMotorGridFSBucket
        assert AsyncIOMotorClient is amongo.motor_asyncio.AsyncIOMotorClient
        from motor import MotorClient  # Motor's root exports the Tornado names
        assert MotorClient is amongo.motor_tornado.MotorClient
        from motor.motor_gridfs import AgnosticGridFSBucket, AgnosticGridIn, AgnosticGridOut, AgnosticGridOutCursor
        assert AgnosticGridFSBucket is amongo.motor_asyncio.AsyncIOMotorGridFSBucket

        import motor.aiohttp, motor.web, amongo.aiohttp, amongo.web
        assert motor.aiohttp is amongo.aiohttp and motor.web is amongo.web
        from motor.aiohttp import AIOHTTPGridFS
        from motor.web import GridFSHandler
        assert AIOHTTPGridFS is amongo.aiohttp.AIOHTTPGridFS and GridFSHandler is amongo.web.GridFSHandler

        # amongo's own modules are untouched by the aliasing
        assert amongo.motor_asyncio.__name__ == "amongo.motor_asyncio"
        assert amongo.motor_asyncio.__spec__.name == "amongo.motor_asyncio"
        try:
            import motor.frameworks  # not part of amongo's Motor
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("motor.frameworks imported")
        """)


def test_agnostic_names_for_annotations_and_isinstance():
    run("""
        import amongo
        amongo.install_as_motor()
        from motor import core
        from motor.motor_asyncio import AsyncIOMotorClient
        from motor.motor_tornado import MotorClient
        client = AsyncIOMotorClient("mongodb://localhost:1", connect=False)
        db = client.db
        coll = db.coll
        for obj, cls in [(client, core.AgnosticClient), (MotorClient(connect=False), core.AgnosticClient),
                         (db, core.AgnosticDatabase), (coll, core.AgnosticCollection),
                         (coll.find(), core.AgnosticCursor), (coll.find(), core.AgnosticBaseCursor),
                         (coll.aggregate([]), core.AgnosticCommandCursor),
                         (coll.aggregate([]), core.AgnosticLatentCommandCursor),
                         (coll.watch(), core.AgnosticChangeStream), (coll.find_raw_batches(), core.AgnosticRawBatchCursor),
                         (client, core.AgnosticBaseProperties), (db, core.AgnosticBase), (coll.find(), core.AgnosticBase)]:
            assert isinstance(obj, cls), (obj, cls)
        assert not isinstance(coll.find(), core.AgnosticBaseProperties)
        import inspect
        assert inspect.isclass(core.AgnosticClientSession)
        from pymongo.errors import ConfigurationError
        try:
            core.AgnosticClientEncryption()
        except ConfigurationError:
            pass
        else:
            raise AssertionError("ClientEncryption constructed")
        client.close()
        """)


def test_works_when_motor_is_not_installed():
    """A finder that hides any installed Motor (as if not installed): the switch never looks."""
    run(hide("motor") + """
        try:
            import motor
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("motor importable")
        import amongo
        amongo.install_as_motor()
        import motor.motor_asyncio
        assert motor.motor_asyncio.AsyncIOMotorClient.__module__ == "amongo.motor_asyncio"
        """)


def test_after_real_motor_was_imported():
    pytest.importorskip("motor", reason="motor==3.7.1 is in the test extra")
    out = run("""
        import warnings
        import motor.motor_asyncio
        from motor.motor_asyncio import AsyncIOMotorClient as Before
        assert Before.__module__.startswith("motor"), Before.__module__
        import amongo
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            amongo.install_as_motor()
        assert len(caught) == 1 and caught[0].category is RuntimeWarning, caught
        assert "already imported" in str(caught[0].message)
        import motor.motor_asyncio as after_mod
        from motor.motor_asyncio import AsyncIOMotorClient as After
        import amongo.motor_asyncio
        assert After is amongo.motor_asyncio.AsyncIOMotorClient
        assert Before is not After  # names bound before the call stay the real Motor
        import sys
        assert not any(n.startswith("motor.") and not (m.__name__.startswith("amongo"))
                       for n, m in sys.modules.items() if m is not None)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            amongo.install_as_motor()  # nothing real left: no second warning
        print("ok")
        """)
    assert "ok" in out


def test_motor_aiohttp_without_aiohttp_is_an_import_error():
    run(hide("aiohttp") + """
        import amongo
        amongo.install_as_motor()
        import motor.motor_asyncio  # the rest works
        try:
            import motor.aiohttp
        except ImportError as exc:
            assert "aiohttp" in str(exc)
        else:
            raise AssertionError("motor.aiohttp imported without aiohttp")
        assert "motor.aiohttp" not in sys.modules
        """)
