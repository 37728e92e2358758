"""Sphinx configuration for amongo's documentation (``make docs``)."""
from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.abspath(".."))

from amongo._version import __version__  # noqa: E402

project = "amongo"
author = "The amongo authors"
copyright = "the amongo authors; Apache-2.0"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "alabaster"
html_theme_options = {"description": "A pure-asyncio MongoDB driver; a drop-in replacement for Motor."}
html_static_path: list = []

# Sphinx 9 rewrote autodoc; the class-based implementation (the only one before 9) is what
# ``automotorclass`` below extends.
autodoc_use_legacy_class_based = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
# Type names in signatures that autodoc cannot resolve are not errors: -W is about the docs.
nitpicky = False
# No network during the build (CI has none but PyPI): intersphinx maps are not fetched.
intersphinx_mapping: dict = {}
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "myst.xref_missing"]


def setup(app: Any) -> None:
    """``automotorclass``: autodoc for Motor's names in ``amongo.motor_asyncio`` /
    ``amongo.motor_tornado``.  Most are aliases of amongo's classes (``AsyncIOMotorCollection
    = amongo.collection.Collection``); plain ``autoclass`` would print "alias of ..." and no
    members, this documents the class under its Motor name."""
    from sphinx.ext.autodoc import ClassDocumenter

    class MotorClassDocumenter(ClassDocumenter):
        objtype = "motorclass"
        directivetype = "class"
        priority = ClassDocumenter.priority - 1

        @classmethod
        def can_document_member(cls, member: Any, membername: str, isattr: bool, parent: Any) -> bool:
            return False

        def import_object(self, raiseerror: bool = False) -> bool:
            ok = super().import_object(raiseerror)
            self.doc_as_attr = False
            return ok

        def get_canonical_fullname(self) -> None:
            # The Motor name is the documented one (several Motor names share one class:
            # a ``:canonical:`` target would be described twice).
            return None

    app.add_autodocumenter(MotorClassDocumenter)
