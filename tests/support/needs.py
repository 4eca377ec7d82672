"""What a test does when a program or server it drives for real is missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(why: str) -> NoReturn:
    """Fail under CI=true, where every test must run; skip elsewhere, saying why."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot run under CI=true: {why}")
    pytest.skip(why)
