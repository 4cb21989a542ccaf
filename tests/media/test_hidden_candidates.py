"""A phone that hides its addresses behind mDNS names still connects.

A browser page without camera or microphone permission offers its host candidates as
``<uuid>.local`` names; the server drops them (it does not resolve mDNS), so it knows no
candidate of the phone at all and must learn one — peer-reflexive — from the phone's first
connectivity check. aioice 0.13 gives up when told "end of candidates" while it knows none: in
an SDP (before it gathered) it then gathers nothing and answers without a single candidate;
trickled before the first check arrives, it fails ICE at once. These tests play that phone with
a real aiortc peer on loopback whose candidates are rewritten to mDNS names
(tests/e2e/test_lan.py plays it with Chromium on a namespaced LAN).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media import _aiortc, transport
from media.ice import IceSettings
from media.service import MediaService, MediaSettings
from tests.peers import ColourTrack, ToneTrack, loopback_pc, wait_for

MDNS_NAME = "0b1f4c1e-5d7e-4a0e-9a7b-1c2d3e4f5a6b.local"


def hide_addresses(sdp: str, end_of_candidates: bool) -> str:
    """The SDP as a browser hiding its addresses writes it: host candidates on an mDNS name."""
    sdp = re.sub(
        r"^(a=candidate:\S+ \d+ \S+ \d+ )127\.0\.0\.1 ", rf"\g<1>{MDNS_NAME} ", sdp, flags=re.M
    )
    assert "127.0.0.1 " not in "".join(x for x in sdp.splitlines() if "candidate" in x)
    if not end_of_candidates:
        sdp = sdp.replace("a=end-of-candidates\r\n", "")
    return sdp


async def phone_offer(end_of_candidates: bool) -> tuple[RTCPeerConnection, str]:
    phone = loopback_pc()
    phone.addTrack(ColourTrack((30, 200, 30)))
    phone.addTrack(ToneTrack())
    await phone.setLocalDescription(await phone.createOffer())
    return phone, hide_addresses(phone.localDescription.sdp, end_of_candidates)


def remote_of_selected_pair(service: MediaService, participant: str) -> str | None:
    publish = service.routers["L1"].publish[participant]
    pair = _aiortc.ice_connection_of(publish._dtls)._nominated.get(1)
    return None if pair is None else str(pair.remote_candidate.type)


def test_filter_sdp_drops_mdns_candidates_and_end_of_candidates() -> None:
    ice = IceSettings.loopback()
    sdp = (
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        f"a=candidate:1 1 udp 2130706431 {MDNS_NAME} 50000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 127.0.0.1 50001 typ host\r\n"
        "a=end-of-candidates\r\n"
        "a=mid:0\r\n"
    )
    assert ice.filter_sdp(sdp) == (
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:2 1 udp 2130706431 127.0.0.1 50001 typ host\r\n"
        "a=mid:0\r\n"
    )


async def test_offer_with_only_hidden_candidates_and_their_end_is_answered_and_connects() -> None:
    """Firefox and non-trickling clients put ``a=end-of-candidates`` in the offer."""
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    phone, offer = await phone_offer(end_of_candidates=True)
    try:
        answer, _ = await service.publish("L1", "phone", offer)
        assert re.search(r"^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 ", answer, re.M), answer
        await phone.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        publish = service.routers["L1"].publish["phone"]
        assert await wait_for(lambda: publish.connected, timeout=10)
        assert remote_of_selected_pair(service, "phone") == "prflx"
    finally:
        await phone.close()
        await service.close()


async def test_end_of_candidates_before_the_first_check_still_connects() -> None:
    """The trickled end (WebSocket) overtakes the phone's first check (UDP, lost or late)."""
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    phone, offer = await phone_offer(end_of_candidates=False)
    try:
        answer, _ = await service.publish("L1", "phone", offer)
        assert await service.add_candidate("L1", "phone", "publish", None)
        await asyncio.sleep(0.3)
        await phone.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        publish = service.routers["L1"].publish["phone"]
        assert await wait_for(lambda: publish.connected, timeout=10)
        assert publish.pc.iceConnectionState == "completed"
        assert remote_of_selected_pair(service, "phone") == "prflx"
    finally:
        await phone.close()
        await service.close()


async def test_end_of_candidates_still_ends_ice_after_the_patience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that never checks: after the patience, aioice hears the end and fails."""
    monkeypatch.setattr(transport, "END_OF_CANDIDATES_PATIENCE", 0.3)
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    phone, offer = await phone_offer(end_of_candidates=False)
    try:
        await service.publish("L1", "phone", offer)
        assert await service.add_candidate("L1", "phone", "publish", None)
        publish = service.routers["L1"].publish["phone"]
        await asyncio.sleep(0.1)
        assert publish.pc.iceConnectionState == "checking"
        assert await wait_for(lambda: publish.pc.iceConnectionState == "failed", timeout=5)
        assert not publish.connected
    finally:
        await phone.close()
        await service.close()
