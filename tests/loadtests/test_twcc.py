"""Transport-wide cc at the load-test students: the answer they send and the feedback they build.

Packets are real RTP bytes, serialized by aiortc's own packetizer with the extensions a browser
would see (``sdes:mid`` before the sequence number, and the server's one-word form), and the
feedback is read back with the server's parser.
"""

from __future__ import annotations

import re

import pytest
from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters, RTCSessionDescription
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Policy, Session

from loadtests.twcc import FeedbackRecorder, accept_transport_cc
from media._aiortc import set_host_addresses
from media.extensions import TRANSPORT_CC_URI, answered_transport_cc, offer_transport_cc
from media.rtp import (
    TWCC_DELTA_UNIT,
    TWCC_MAX_STATUS_COUNT,
    find_extension,
    parse_header,
    parse_rtcp,
)
from tests.peers import loopback_pc

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


def _extension_map(tcc_id: int = 5) -> HeaderExtensionsMap:
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
                RTCRtpHeaderExtensionParameters(id=tcc_id, uri=TRANSPORT_CC_URI),
            ]
        )
    )
    return extensions


def packet(tseq: int | None, *, rtp_seq: int = 1, mid: str | None = "1", tcc_id: int = 5) -> bytes:
    p = RtpPacket(payload_type=96, sequence_number=rtp_seq, timestamp=1234, ssrc=0xCAFE)
    p.payload = b"\x90\xe0" + bytes(100)
    if mid is not None:
        p.extensions.mid = mid
    if tseq is not None:
        p.extensions.transport_sequence_number = tseq
    return p.serialize(_extension_map(tcc_id))


def server_packet(tseq: int, rtp_seq: int = 1) -> bytes:
    """The form the SFU writes (media/transport.py): one word, id 5, no other extension."""
    header = bytes([0x90, 96, rtp_seq >> 8, rtp_seq & 0xFF, 0, 0, 0, 1, 0, 0, 0xCA, 0xFE])
    header += bytes([0xBE, 0xDE, 0, 1])
    return header + bytes([0x51, tseq >> 8, tseq & 0xFF, 0]) + b"payload"


def twcc_of(data: bytes) -> tuple[int, list[tuple[int, float | None]]]:
    (fb,) = parse_rtcp(data)
    assert fb.kind == "twcc" and fb.twcc is not None
    return fb.twcc.feedback_count, list(fb.twcc.packets)


# -- reading the sequence number ----------------------------------------------------------


@pytest.mark.parametrize("tseq", [0, 1, 0x1234, 0xFFFF])
def test_sequence_number_from_real_packets(tseq: int) -> None:
    recorder = FeedbackRecorder(5, 1)
    for data in (packet(tseq), packet(tseq, mid=None), server_packet(tseq)):
        header = parse_header(data)
        assert find_extension(data, header, 5) == tseq.to_bytes(2, "big")
        assert recorder.sequence_number(data) == tseq


def test_packets_without_the_negotiated_id_carry_no_sequence_number() -> None:
    recorder = FeedbackRecorder(5, 1)
    assert recorder.sequence_number(packet(None)) is None  # mid only
    assert recorder.sequence_number(packet(None, mid=None)) is None  # no extension at all
    assert recorder.sequence_number(packet(7, tcc_id=6)) is None  # another id
    assert FeedbackRecorder(6, 1).sequence_number(packet(7, tcc_id=6)) == 7
    truncated = server_packet(7)[:17]
    assert recorder.sequence_number(truncated) is None
    with pytest.raises(ValueError):
        FeedbackRecorder(15, 1)


# -- feedback -------------------------------------------------------------------------------


def test_feedback_covers_everything_since_the_last_across_the_wrap_with_losses() -> None:
    recorder = FeedbackRecorder(5, 0x11)
    assert recorder.feedback() is None  # nothing received yet
    t0 = 1000.0
    # 65533, 65534, (65535 lost), 0, 2, 1 (reordered), (3 lost), 4
    order = [65533, 65534, 0, 2, 1, 4]
    for i, tseq in enumerate(order):
        recorder.on_rtp(packet(tseq, rtp_seq=i), t0 + i * 0.002)
    recorder.on_rtp(packet(None), t0 + 0.5)  # no sequence number: not counted
    assert recorder.received == 6 and recorder.media_ssrc == 0xCAFE
    fb = recorder.feedback()
    assert fb is not None
    count, reported = twcc_of(fb)
    assert count == 0
    assert [s for s, _ in reported] == [65533, 65534, 65535, 0, 1, 2, 3, 4]
    got = dict(reported)
    assert got[65535] is None and got[3] is None
    arrival = {tseq: t0 + i * 0.002 for i, tseq in enumerate(order)}
    first = got[65533]
    assert first is not None
    for tseq, at in arrival.items():
        value = got[tseq]
        assert value is not None
        # only differences mean anything; each is exact to the 250 µs unit
        assert abs((value - first) - (at - arrival[65533])) <= TWCC_DELTA_UNIT
    assert recorder.feedback() is None  # nothing new
    # late packet already reported as lost: not reported again; the next report starts at 5
    recorder.on_rtp(packet(3), t0 + 0.1)
    recorder.on_rtp(packet(6), t0 + 0.1)
    fb = recorder.feedback()
    assert fb is not None
    count, reported = twcc_of(fb)
    assert count == 1
    assert [(s, a is not None) for s, a in reported] == [(5, False), (6, True)]
    assert recorder.reported == 10


def test_feedback_after_a_long_gap_is_cut_to_what_one_packet_can_carry() -> None:
    recorder = FeedbackRecorder(5, 1)
    recorder.on_rtp(server_packet(10), 1.0)
    assert recorder.feedback() is not None
    # 10 000 sequence numbers later (the wrap included): only the newest are reported
    for k in range(3):
        recorder.on_rtp(server_packet((10 + 10_000 + k) & 0xFFFF), 2.0 + k * 0.001)
    fb = recorder.feedback()
    assert fb is not None
    _, reported = twcc_of(fb)
    assert len(reported) == TWCC_MAX_STATUS_COUNT
    assert reported[-1][0] == (10 + 10_002) & 0xFFFF
    assert [a is not None for _, a in reported[-3:]] == [True, True, True]


def test_receptions_too_far_apart_for_one_packet_are_dropped_not_sent_wrong() -> None:
    recorder = FeedbackRecorder(5, 1)
    recorder.on_rtp(server_packet(1), 1.0)
    recorder.on_rtp(server_packet(2), 20.0)  # 19 s later: no 16-bit delta can say it
    assert recorder.feedback() is None
    recorder.on_rtp(server_packet(3), 20.05)
    fb = recorder.feedback()
    assert fb is not None
    _, reported = twcc_of(fb)
    assert [s for s, _ in reported] == [3]


# -- the answer -----------------------------------------------------------------------------


async def _server_like_offer_and_answer() -> tuple[str, str, list[str]]:
    """An offer as the SFU sends it (aiortc's, with transport-cc added) and an aiortc answer."""
    set_host_addresses(["127.0.0.1"])
    server, student = loopback_pc(), loopback_pc()
    try:
        server.addTransceiver("audio", direction="sendonly")
        server.addTransceiver("video", direction="sendonly")
        await server.setLocalDescription(await server.createOffer())
        assert server.localDescription is not None
        offer = offer_transport_cc(server.localDescription.sdp)
        await student.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await student.setLocalDescription(await student.createAnswer())
        assert student.localDescription is not None
        mids = [str(t.mid) for t in student.getTransceivers()]
        return offer, student.localDescription.sdp, mids
    finally:
        await server.close()
        await student.close()


async def test_answer_accepts_transport_cc_where_offered() -> None:
    offer, answer, mids = await _server_like_offer_and_answer()
    assert answered_transport_cc(answer) == {}  # aiortc alone does not accept it
    edited, ext_id = accept_transport_cc(offer, answer)
    assert ext_id == 5
    assert answered_transport_cc(edited) == {mid: 5 for mid in mids}
    for line in answer.splitlines():  # nothing aiortc wrote is lost
        assert line in edited.splitlines()
    fb = [line for line in edited.splitlines() if line.endswith(" transport-cc")]
    rtpmaps = [line.split()[0][9:] for line in edited.splitlines() if line.startswith("a=rtpmap:")]
    rtx = {line.split()[0][9:] for line in edited.splitlines() if " rtx/" in line}
    assert sorted(f"a=rtcp-fb:{pt} transport-cc" for pt in rtpmaps if pt not in rtx) == sorted(fb)
    assert rtx and not any(f"a=rtcp-fb:{pt} transport-cc" in fb for pt in rtx)
    # idempotent: a renegotiated answer edited twice has each line once
    again, _ = accept_transport_cc(offer, edited)
    assert again == edited
    # what the server makes of it, and aiortc still takes it as an answer
    set_host_addresses(["127.0.0.1"])
    pc = loopback_pc()
    try:
        pc.addTransceiver("audio", direction="sendonly")
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        tcc_offer = offer_transport_cc(pc.localDescription.sdp)
        student = loopback_pc()
        try:
            await student.setRemoteDescription(RTCSessionDescription(tcc_offer, "offer"))
            await student.setLocalDescription(await student.createAnswer())
            assert student.localDescription is not None
            mine, _ = accept_transport_cc(tcc_offer, student.localDescription.sdp)
            await pc.setRemoteDescription(RTCSessionDescription(mine, "answer"))
            assert pc.signalingState == "stable"
        finally:
            await student.close()
    finally:
        await pc.close()


async def test_answer_is_untouched_where_transport_cc_was_not_offered() -> None:
    offer, answer, mids = await _server_like_offer_and_answer()
    plain = "\r\n".join(line for line in offer.splitlines() if TRANSPORT_CC_URI not in line)
    assert accept_transport_cc(plain, answer) == (answer, None)
    # offered in the first section only: the second stays as aiortc wrote it
    lines = offer.splitlines()
    second = [i for i, line in enumerate(lines) if line.startswith("m=")][1]
    partial = "\r\n".join(
        line for i, line in enumerate(lines) if i < second or TRANSPORT_CC_URI not in line
    )
    edited, ext_id = accept_transport_cc(partial, answer)
    assert ext_id == 5
    assert answered_transport_cc(edited) == {mids[0]: 5}
    # a rejected section (port 0) accepts nothing
    rejected = re.sub(r"^m=video \d+ ", "m=video 0 ", answer, count=1, flags=re.M)
    assert "m=video 0 " in rejected
    edited, _ = accept_transport_cc(offer, rejected)
    assert answered_transport_cc(edited) == {mids[0]: 5}


@pytest.mark.parametrize(
    ("profile", "key_length"),
    [
        (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
        (Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 28),
    ],
)
def test_sequence_number_read_from_the_protected_datagram(profile: int, key_length: int) -> None:
    """Students read it as the SRTP datagram comes off the socket: the header stays in clear."""
    key = bytes(range(key_length))
    sender = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile))
    receiver = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    recorder = FeedbackRecorder(5, 1)
    for i, tseq in enumerate((0xFFFF, 0, 0x1234)):
        for plain in (packet(tseq, rtp_seq=2 * i + 10), server_packet(tseq, 2 * i + 11)):
            protected = sender.protect(plain)
            assert protected[12:] != plain[12:]  # the payload is encrypted …
            assert recorder.sequence_number(protected) == tseq  # … the extension is not
            assert receiver.unprotect(protected) == plain
