from __future__ import annotations

import asyncio

import pytest

from tests.signaling.aiortc_sdp import make_offer_and_answer


@pytest.fixture(scope="session")
def live_aiortc_sdp() -> tuple[str, str]:
    """A fresh aiortc 1.16 offer and answer, gathered on 127.0.0.1 only (no STUN)."""
    return asyncio.run(make_offer_and_answer())
