"""RTX (RFC 4588) toward a real aiortc subscriber on a lossy downlink.

A real aiortc publisher sends to the real server path (MediaService); a real aiortc subscriber,
offered RTX, answers it and reaches the server through a UDP relay that, once media flows,
drops a seeded 10 % of the server's SRTP toward it. The subscriber's own NACKs (aiortc's
NackGenerator) are answered on its RTX stream: every packet seen below its SRTP is recorded,
so the test sees which media packets were lost and which came back as RTX, and the subscriber
keeps decoding. (The publisher side — a lossy uplink repaired through the publisher's RTX —
is tests/media/test_upstream_repair.py.)
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiortc import RTCSessionDescription

from media import _aiortc, rtx
from media.ice import IceSettings
from media.rtp import parse_header, seq_diff
from media.service import MediaService, MediaSettings
from tests.media.test_upstream_repair import NoiseTrack
from tests.peers import Receiver, answer_offer, loopback_pc, wait_for
from tests.relay import UdpRelay

LOSS = 0.10
SECONDS = 6.0


@pytest.mark.slow
async def test_an_aiortc_subscriber_offered_rtx_is_repaired_through_it() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    teacher = loopback_pc()
    teacher.addTrack(NoiseTrack())
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
    (consumer,) = service.routers["L1"].subscribe["student"].consumers.values()
    assert consumer.rtx is not None and consumer.rtx.ssrc != consumer.ssrc
    try:
        assert await wait_for(lambda: len(seen) > 20 and len(rx.video_frames) > 3, timeout=15)
        relay.ab.only_rtp = True
        relay.ab.loss = LOSS
        lossy_from = time.monotonic()
        frames_before = sum(rx.frames_of.values())
        await asyncio.sleep(SECONDS)
        lossy_until = time.monotonic()
        relay.ab.loss = 0.0
        await asyncio.sleep(1.0)  # the last repairs

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

        headers = [parse_header(p) for p in repairs]
        assert {h.payload_type for h in headers} == {consumer.rtx.payload_type}
        rtx_seqs = [h.sequence_number for h in headers]
        # The RTX stream's own numbering: contiguous but for what the relay dropped.
        assert all(0 < seq_diff(b, a) <= 4 for a, b in itertools.pairwise(rtx_seqs))
        unwrapped = [rtx.unwrap(p, consumer.payload_type, consumer.ssrc) for p in repairs]
        assert all(u for u in unwrapped)
        osns = {seq_diff(parse_header(u).sequence_number, first) for u in unwrapped if u}
        assert osns - set(range(-200, span + 200)) == set()
        assert osns & originals == set()  # only what the media stream lost came back
        got = originals | osns
        assert len(got & set(range(span))) >= 0.98 * span, (len(lost), len(osns & lost), span)
        # It kept decoding (a slow software decoder here: a frame or two a second).
        assert sum(rx.frames_of.values()) - frames_before >= 5
    finally:
        await rx.close()
        await student.close()
        await teacher.close()
        await service.close()
        relay.close()
