"""Make real aiortc 1.16 SDP (an offer with audio and video, and an answer to it) on loopback.

Used by the tests at run time, and as a script to refresh the committed copies:

    .venv/bin/python -m tests.signaling.aiortc_sdp

Gathering is pinned to 127.0.0.1 through ``media._aiortc.set_host_addresses`` and no STUN
server is configured (``iceServers=[]``; aiortc otherwise falls back to a public one), so nothing
leaves loopback (BROWSER-TESTING.md). The pin is process-wide and deliberately left in place:
restoring aioice's default would widen gathering to every interface for later tests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from media._aiortc import set_host_addresses

FIXTURES = Path(__file__).parent / "fixtures"
OFFER_FILE = FIXTURES / "aiortc-1.16-offer.sdp"
ANSWER_FILE = FIXTURES / "aiortc-1.16-answer.sdp"


def _loopback_peer() -> RTCPeerConnection:
    set_host_addresses(["127.0.0.1"])
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def make_offer_and_answer() -> tuple[str, str]:
    """An aiortc publisher's offer (audio + video, send-only) and an aiortc peer's answer."""
    publisher = _loopback_peer()
    receiver = _loopback_peer()
    audio, video = AudioStreamTrack(), VideoStreamTrack()
    try:
        publisher.addTransceiver(audio, direction="sendonly")
        publisher.addTransceiver(video, direction="sendonly")
        await publisher.setLocalDescription(await publisher.createOffer())
        offer = publisher.localDescription.sdp
        await receiver.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await receiver.setLocalDescription(await receiver.createAnswer())
        answer = receiver.localDescription.sdp
    finally:
        audio.stop()
        video.stop()
        await publisher.close()
        await receiver.close()
    return offer, answer


def main() -> None:
    offer, answer = asyncio.run(make_offer_and_answer())
    OFFER_FILE.write_text(offer, newline="")
    ANSWER_FILE.write_text(answer, newline="")
    print(f"wrote {OFFER_FILE} and {ANSWER_FILE}")


if __name__ == "__main__":
    main()
