"""Helpers the test modules share (fixtures live in conftest.py)."""
from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether the tests run under CI (``CI=true``): a missing broker, runtime or dataset then
    fails the test instead of skipping it."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """Something a test needs is missing: fail under CI, skip elsewhere, with ``message``."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
