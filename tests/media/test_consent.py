"""Consent freshness (RFC 7675) that survives a phone's slow link: ``_aiortc.keep_consent``.

Two real aiortc peers on loopback talk through a UDP relay (tests/relay.py) that, once they are
connected, adds round-trip time or drops everything. aioice's own check waits 0.5 s for a
response and closes the connection after six failures in a row, so 1.5 s of round trip ends a
connection whose peer answers every check; with ``keep_consent`` it lives on, and only a
connection that truly hears nothing for ``timeout`` seconds is closed.

aioice's checks run every ``aioice.ice.CONSENT_INTERVAL`` (5 s); the plain pair below runs them
every second so that its six failures fit in the test (the failure is the same, only sooner).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media import _aiortc
from tests.peers import loopback_pc, wait_for
from tests.relay import UdpRelay

RTT = 1.5


class Pair:
    """Two connected peers through a relay; ``down_at[i]``: when peer i's ICE failed/closed."""

    def __init__(self, relay: UdpRelay, a: RTCPeerConnection, b: RTCPeerConnection) -> None:
        self.relay = relay
        self.peers = (a, b)
        self.down_at: list[float | None] = [None, None]
        for i, pc in enumerate(self.peers):
            pc.on("iceconnectionstatechange", self._watch(i, pc))

    def _watch(self, i: int, pc: RTCPeerConnection) -> Callable[[], None]:
        def changed() -> None:
            if pc.iceConnectionState in ("failed", "closed") and self.down_at[i] is None:
                self.down_at[i] = time.monotonic()

        return changed

    def up(self) -> bool:
        return all(pc.iceConnectionState == "completed" for pc in self.peers)

    def down(self) -> bool:
        return any(t is not None for t in self.down_at)

    async def close(self) -> None:
        for pc in self.peers:
            await pc.close()
        self.relay.close()


async def connect_pair(
    before_connect: Callable[[RTCPeerConnection], None] | None = None,
) -> Pair:
    relay = await UdpRelay.open()
    a = loopback_pc()
    a.addTransceiver("audio", direction="sendrecv")
    await a.setLocalDescription(await a.createOffer())
    if before_connect is not None:
        before_connect(a)
    b = loopback_pc()
    await b.setRemoteDescription(
        RTCSessionDescription(relay.hide(a.localDescription.sdp, "a"), "offer")
    )
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(
        RTCSessionDescription(relay.hide(b.localDescription.sdp, "b"), "answer")
    )
    pair = Pair(relay, a, b)
    assert await wait_for(pair.up, timeout=10)
    assert relay.ab.forwarded and relay.ba.forwarded  # really through the relay
    return pair


@pytest.mark.slow
async def test_a_slow_link_keeps_consent_where_aioice_drops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 1.0)
    rtts: tuple[list[float], list[float]] = ([], [])
    # One side replaces the checks before ICE connects, the other after (both paths).
    kept = await connect_pair(
        lambda pc: _aiortc.keep_consent(
            _aiortc.dtls_transport_of(pc), interval=1.0, timeout=6.0, on_rtt=rtts[0].append
        )
    )
    _aiortc.keep_consent(
        _aiortc.dtls_transport_of(kept.peers[1]), interval=1.0, timeout=6.0, on_rtt=rtts[1].append
    )
    plain = await connect_pair()
    try:
        await asyncio.sleep(1.5)
        assert rtts[0] and max(rtts[0]) < 0.2, rtts
        before = (len(rtts[0]), len(rtts[1]))
        kept.relay.set(delay=RTT / 2)
        plain.relay.set(delay=RTT / 2)
        slowed = time.monotonic()
        # aioice drops its connection after six unanswered checks (about 9 s at 1 s each)...
        assert await wait_for(plain.down, timeout=13.0)
        # ...while the same link keeps the other one, for twice its consent timeout.
        remaining = slowed + 12.5 - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)
        assert not kept.down() and kept.up()
        for side in (0, 1):
            # Each side's checks were answered by a peer busy with its own checks.
            late = rtts[side][before[side] + 1 :]
            assert len(late) >= 5, rtts
            assert RTT - 0.1 < statistics.median(late) < RTT + 0.5, late
    finally:
        await kept.close()
        await plain.close()


@pytest.mark.slow
async def test_consent_expires_after_the_timeout_when_nothing_comes_back() -> None:
    timeout = 3.0
    interval = 0.5
    pair = await connect_pair(
        lambda pc: _aiortc.keep_consent(
            _aiortc.dtls_transport_of(pc), interval=interval, timeout=timeout
        )
    )
    try:
        await asyncio.sleep(1.0)
        pair.relay.set(drop=True)
        cut = time.monotonic()
        assert await wait_for(lambda: pair.down_at[0] is not None, timeout=timeout + 4)
        down_at = pair.down_at[0]
        assert down_at is not None
        # The last answer came at most one check (plus its round trip) before the cut.
        assert down_at - cut >= timeout - interval * 1.2 - 0.2
        # Closed as aioice closes it: aiortc's ICE transport fails or, when the closed socket
        # ends DTLS first, the peer connection shuts down — the same race as aioice's own expiry.
        assert pair.peers[0].connectionState in ("failed", "closed")
        assert pair.down_at[1] is None  # the other side's own aioice checks are still patient
    finally:
        await pair.close()


async def test_keep_consent_takes_the_place_of_aioice_task_and_reports_rtt() -> None:
    rtts: list[float] = []
    pair = await connect_pair()
    try:
        connection = _aiortc.ice_connection_of(_aiortc.dtls_transport_of(pair.peers[0]))
        original = connection._query_consent_task
        assert original is not None and original.get_name() != _aiortc.CONSENT_TASK_NAME
        _aiortc.keep_consent(
            _aiortc.dtls_transport_of(pair.peers[0]), interval=0.2, on_rtt=rtts.append
        )
        assert await wait_for(lambda: len(rtts) >= 3, timeout=3)
        assert original.cancelled()
        task = connection._query_consent_task
        assert task is not None and task.get_name() == _aiortc.CONSENT_TASK_NAME
        assert all(0 <= r < 0.2 for r in rtts), rtts
        # No request is left registered once answered.
        protocol = connection._nominated[1].protocol
        await asyncio.sleep(0.05)
        assert len(protocol.transactions) <= 1
        await pair.peers[0].close()
        assert task.done()
    finally:
        await pair.close()
