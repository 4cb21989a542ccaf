"""RTX (RFC 4588) toward a real aiortc subscriber on a lossy downlink.

A real aiortc publisher sends to the real server path (MediaService); a real aiortc subscriber,
offered RTX, answers it and reaches the server through a UDP relay that, once media flows,
drops a seeded 10 % of the server's video packets toward it. The subscriber's own NACKs
(aiortc's NackGenerator) are answered on its RTX stream: every packet seen below its SRTP is
recorded, so the test sees which media packets were lost and which came back as RTX, and the
subscriber keeps decoding. (The publisher side — a lossy uplink repaired through the
publisher's RTX — is tests/media/test_upstream_repair.py.)

The relay spares the RTX stream. aiortc's receiver asks again for a packet only when it sees
a new gap, and its jitter buffer waits for a missing packet until 128 later ones have arrived
(8.5 s of this stream): one lost retransmission would stall its decoding for the whole test,
which says nothing of the server. A repeated request is answered like the first
(tests/media/test_rtx.py); a browser asks again on its own timer
(tests/e2e/test_rtx_chromium.py).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiortc import RTCSessionDescription

from media import _aiortc, rtx
from media.ice import IceSettings
from media.router import COUNTERS
from media.rtp import parse_header, seq_diff
from media.service import MediaService, MediaSettings
from tests.media.test_upstream_repair import NoiseTrack
from tests.peers import ColourTrack, Receiver, answer_offer, close_to, loopback_pc, wait_for
from tests.relay import UdpRelay

LOSS = 0.10
SECONDS = 8.0


@pytest.mark.slow
async def test_an_aiortc_subscriber_offered_rtx_is_repaired_through_it() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    teacher = loopback_pc()
    # A small stream (one packet a frame), which no downlink estimate here makes the server
    # hold: a video held right after a loss would leave aiortc's receiver, which asks only
    # when it sees a gap, nothing to ask with.
    teacher.addTrack(ColourTrack((200, 40, 40)))
    await teacher.setLocalDescription(await teacher.createOffer())
    answer, producers = await service.publish("L1", "teacher", teacher.localDescription.sdp)
    await teacher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    (producer,) = producers

    relay = await UdpRelay.open()
    student = loopback_pc()
    rx = Receiver(student)
    offer = await service.subscribe("L1", "student", [producer.id])
    assert offer is not None
    assert " rtx/90000" in offer.sdp and "a=ssrc-group:FID " in offer.sdp
    student_answer = await answer_offer(student, relay.hide(offer.sdp, "a"))
    assert " rtx/90000" in student_answer  # aiortc keeps it
    seen: list[tuple[float, bytes]] = []
    _aiortc.tap_received_rtp(
        _aiortc.dtls_transport_of(student), lambda data: seen.append((time.monotonic(), data))
    )
    await service.accept_answer("L1", "student", relay.hide(student_answer, "b"))
    transport = service.routers["L1"].subscribe["student"]
    (consumer,) = transport.consumers.values()
    assert consumer.rtx is not None and consumer.rtx.ssrc != consumer.ssrc
    sent: list[bytes] = []  # what the server sends, before SRTP
    send_rtp = transport.send_rtp

    def record(packet: bytes) -> bool:
        sent.append(packet)
        return send_rtp(packet)

    transport.send_rtp = record  # type: ignore[method-assign]
    try:
        assert await wait_for(lambda: len(seen) > 20 and len(rx.video_frames) > 3, timeout=15)
        relay.ab.only_ssrcs = frozenset({consumer.ssrc})
        relay.ab.loss = LOSS
        lossy_from = time.monotonic()
        holds = COUNTERS.allocation_holds
        frames_before = sum(rx.frames_of.values())
        await asyncio.sleep(SECONDS)
        lossy_until = time.monotonic()
        relay.ab.loss = 0.0
        await asyncio.sleep(3.0)  # the last repairs (a busy loop: decoding in-process)

        media = [
            (t, parse_header(p).sequence_number)
            for t, p in seen
            if parse_header(p).ssrc == consumer.ssrc
        ]
        repairs = [p for _, p in seen if parse_header(p).ssrc == consumer.rtx.ssrc]
        window = [s for t, s in media if lossy_from <= t <= lossy_until]
        first = window[0]
        span = max(seq_diff(s, first) for s in window) + 1
        originals = {seq_diff(s, first) for _, s in media}
        lost = set(range(span)) - originals
        assert len(lost) > 0.04 * span and span > 80, (len(lost), span)  # really lossy
        assert COUNTERS.allocation_holds == holds and not consumer.held

        headers = [parse_header(p) for p in repairs]
        assert {h.payload_type for h in headers} == {consumer.rtx.payload_type}
        rtx_seqs = [h.sequence_number for h in headers]
        # The RTX stream's own numbering: contiguous.
        assert all(seq_diff(b, a) == 1 for a, b in itertools.pairwise(rtx_seqs))
        unwrapped = [rtx.unwrap(p, consumer.payload_type, consumer.ssrc) for p in repairs]
        assert all(u for u in unwrapped)
        osns = {seq_diff(parse_header(u).sequence_number, first) for u in unwrapped if u}
        assert osns - set(range(-200, span + 200)) == set()
        assert osns & originals == set()  # only what the media stream lost came back
        # Every packet the media stream lost was NACKed, resent on the RTX stream, and
        # arrived.
        resent = {
            seq_diff(int.from_bytes(p[h.payload_offset : h.payload_offset + 2], "big"), first)
            for p, h in ((p, parse_header(p)) for p in sent)
            if h.ssrc == consumer.rtx.ssrc and h.payload_offset + 2 < len(p) and not p[0] & 0x20
        }
        assert lost <= resent, sorted(lost - resent)
        assert lost <= osns, sorted(lost - osns)
        # It kept decoding.
        assert sum(rx.frames_of.values()) - frames_before > 5 * SECONDS
        assert close_to(rx.mean_rgb(), (200, 40, 40))
    finally:
        await rx.close()
        await student.close()
        await teacher.close()
        await service.close()
        relay.close()


async def test_a_publisher_offering_rtx_without_its_ssrc_is_answered_without_rtx() -> None:
    """Without ``a=ssrc-group:FID`` the server could not tell the publisher's RTX packets
    apart, so it does not take RTX up: the publisher retransmits on its media SSRC."""
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    teacher = loopback_pc()
    teacher.addTrack(NoiseTrack())
    await teacher.setLocalDescription(await teacher.createOffer())
    offer = teacher.localDescription.sdp
    assert " rtx/90000" in offer and "a=ssrc-group:FID " in offer
    rtx_ssrc = offer.split("a=ssrc-group:FID ", 1)[1].split()[1]
    without_group = "".join(
        line
        for line in offer.splitlines(keepends=True)
        if not line.startswith(("a=ssrc-group:", f"a=ssrc:{rtx_ssrc} "))
    )
    try:
        answer, _ = await service.publish("L1", "teacher", without_group)
        assert " rtx/90000" not in answer
        (producer,) = service.routers["L1"].publish["teacher"].producers
        assert producer.rtx_ssrc is None and producer.rtx_payload_type is None
        answer, _ = await service.publish("L1", "other", offer)
        assert " rtx/90000" in answer
        (producer,) = service.routers["L1"].publish["other"].producers
        assert producer.rtx_ssrc == int(rtx_ssrc)
    finally:
        await teacher.close()
        await service.close()
