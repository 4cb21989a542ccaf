"""Transport-wide congestion control added to the subscribe offer, read back from answers."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from media.extensions import (
    TRANSPORT_CC_ID,
    TRANSPORT_CC_URI,
    answered_transport_cc,
    offer_transport_cc,
)


async def aiortc_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendonly")
    pc.addTransceiver("video", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_every_media_section_offers_the_extension_and_feedback_for_its_codecs() -> None:
    original = await aiortc_offer()
    offer = offer_transport_cc(original)
    parsed = SessionDescription.parse(offer)
    assert [m.kind for m in parsed.media] == ["audio", "video"]
    for media in parsed.media:
        uris = {e.uri: e.id for e in media.rtp.headerExtensions}
        assert uris[TRANSPORT_CC_URI] == TRANSPORT_CC_ID
        for codec in media.rtp.codecs:
            feedback = {(f.type, f.parameter) for f in codec.rtcpFeedback}
            wants = codec.mimeType.split("/")[1].lower() != "rtx"
            assert (("transport-cc", None) in feedback) == wants, codec
    # every line aiortc wrote is still there, in order
    kept = [line for line in offer.splitlines() if line in set(original.splitlines())]
    assert kept == original.splitlines()
    assert offer_transport_cc(offer).count(TRANSPORT_CC_URI) == 2  # idempotent for the extmap


async def test_aiortc_takes_the_offer_and_ignores_what_it_does_not_know() -> None:
    offer = offer_transport_cc(await aiortc_offer())
    answerer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
    await answerer.setLocalDescription(await answerer.createAnswer())
    answer = answerer.localDescription.sdp
    await answerer.close()
    assert answered_transport_cc(answer) == {}  # aiortc does not send the feedback


CHROMIUM_LIKE_ANSWER = """v=0\r
o=- 1 2 IN IP4 127.0.0.1\r
s=-\r
t=0 0\r
a=group:BUNDLE 0 1 2\r
m=audio 9 UDP/TLS/RTP/SAVPF 96\r
a=mid:0\r
a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r
a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=recvonly\r
a=rtpmap:96 opus/48000/2\r
a=rtcp-fb:96 transport-cc\r
m=video 9 UDP/TLS/RTP/SAVPF 97\r
a=mid:1\r
a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=recvonly\r
a=rtpmap:97 VP8/90000\r
a=rtcp-fb:97 transport-cc\r
m=video 0 UDP/TLS/RTP/SAVPF 97\r
a=mid:2\r
a=extmap:5 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r
a=inactive\r
a=rtpmap:97 VP8/90000\r
"""


def test_an_answer_tells_which_sections_accepted_it() -> None:
    assert answered_transport_cc(CHROMIUM_LIKE_ANSWER) == {"0": 5, "1": 5}  # not the rejected


def test_an_id_outside_the_one_byte_form_is_not_taken() -> None:
    answer = CHROMIUM_LIKE_ANSWER.replace("a=extmap:5 ", "a=extmap:15 ")
    assert answered_transport_cc(answer) == {}
