"""What a test needs installed: on a developer machine a missing piece skips the test, under
CI=true it fails it (CI must run every test; conftest.py also turns any other skip into a failure)."""

from __future__ import annotations

import importlib
import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def missing(what: str, hint: str = "see .ci/run and TESTING.md"):
    if in_ci():
        pytest.fail(f"{what} is not installed but CI=true ({hint})", pytrace=False)
    pytest.skip(f"{what} is not installed ({hint})")


def require(module: str):
    """Import an optional Python module the test needs (instead of pytest.importorskip)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(f"the Python module {module!r} ({exc})", "pip install -e '.[test]'")


def require_tool(name: str, *candidates: str) -> str:
    """The path of an external program: the first of `candidates` that is executable, else $PATH."""
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(name)
    if found is None:
        missing(f"the program {name!r}")
    return found
