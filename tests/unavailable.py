"""What a test does when something it needs is missing: skip on a laptop, fail in CI.

A laptop without Chromium, Node.js, PostgreSQL, Redis or network namespaces still runs the rest
of the suite; under ``CI`` (``.ci/run`` installs and starts all of them) a silent skip would
prove nothing, so the same absence is a failure.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail with it when ``CI`` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so these tests must run", pytrace=False)
    pytest.skip(reason)
