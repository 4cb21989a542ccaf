"""A publisher on a lossy uplink: the SFU's repeated NACKs repair it for the subscriber.

Both ways a publisher retransmits: on its RTX stream (RFC 4588; aiortc offers RTX, as browsers
do, and the server answers it), where the server unwraps each retransmission; and, answered
without RTX, on its media SSRC.

A real aiortc publisher reaches the real server path (MediaService) through a UDP relay that,
once connected, drops a seeded 10 % of the publisher's SRTP/SRTCP; a real subscriber is tapped
below aiortc's depacketizer and counts the video packets it gets. The deterministic version of
this (Producer level, fake clock, with the NACK-once comparison) is in tests/media/test_nack.py.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCRtpSender, RTCSessionDescription
from aiortc.rtp import RtpPacket
from av import VideoFrame

from media import _aiortc
from media.ice import IceSettings
from media.router import COUNTERS
from media.rtp import seq_diff
from media.service import MediaService, MediaSettings
from tests.peers import VIDEO_CLOCK, answer_offer, loopback_pc, wait_for
from tests.relay import UdpRelay

LOSS = 0.10
SECONDS = 8.0


class NoiseTrack(MediaStreamTrack):
    """A small camera filming noise (seeded): every frame takes a few packets, about 35 a
    second — few enough that aiortc's sender, which keeps only its last 128 packets for
    retransmission, still holds a packet when the SFU stops asking (``NACK_MAX_AGE``), as a
    browser's longer history does."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._rng = np.random.default_rng(5)
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.time()
        self._pts += VIDEO_CLOCK // 15
        wait = self._start + self._pts / VIDEO_CLOCK - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        array = self._rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        frame = VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


@pytest.mark.slow
@pytest.mark.parametrize("rtx", [True, False], ids=["rtx", "media-ssrc"])
async def test_a_ten_percent_lossy_publisher_uplink_is_repaired_for_the_subscriber(
    rtx: bool,
) -> None:
    # The cap the server announces to the publisher (REMB) keeps this incompressible noise
    # small, as the test means it; at the default 1.5 Mbit/s aiortc's encoder fills it, and an
    # aiortc subscriber, which sends no bandwidth feedback, stays at the 1 Mbit/s starting
    # estimate: its video would be held, which is not what this test is about.
    service = MediaService(MediaSettings(ice=IceSettings.loopback(), max_video_bitrate=400_000))
    relay = await UdpRelay.open()
    teacher = loopback_pc()
    teacher.addTrack(NoiseTrack())
    if not rtx:
        (transceiver,) = teacher.getTransceivers()
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name == "VP8"]
        )
    await teacher.setLocalDescription(await teacher.createOffer())
    assert (" rtx/90000" in teacher.localDescription.sdp) == rtx
    answer, producers = await service.publish(
        "L1", "teacher", relay.hide(teacher.localDescription.sdp, "a")
    )
    assert (" rtx/90000" in answer) == rtx
    await teacher.setRemoteDescription(RTCSessionDescription(relay.hide(answer, "b"), "answer"))
    publish = service.routers["L1"].publish["teacher"]
    (producer,) = producers
    (forwarded,) = publish.producers
    assert (forwarded.rtx_ssrc is not None) == rtx
    unwrapped = COUNTERS.rtx_received

    student = loopback_pc()
    arrivals: list[tuple[float, int]] = []
    offer = await service.subscribe("L1", "student", [producer.id])
    assert offer is not None
    student_answer = await answer_offer(student, offer.sdp)
    (transceiver,) = student.getTransceivers()

    def count(packet: RtpPacket, arrival_time_ms: int) -> None:
        arrivals.append((time.monotonic(), packet.sequence_number))

    _aiortc.tap_receiver_rtp(transceiver.receiver, count)
    await service.accept_answer("L1", "student", student_answer)
    try:
        assert await wait_for(lambda: publish.connected and len(arrivals) > 20, timeout=15)
        relay.ab.only_rtp = True
        relay.ab.loss = LOSS
        lossy_from = time.monotonic()
        await asyncio.sleep(SECONDS)
        lossy_until = time.monotonic()
        await asyncio.sleep(1.5)  # let the last repairs arrive
        relay.ab.loss = 0.0

        # The subscriber's sequence numbers are the publisher's, shifted: a hole is a packet
        # lost upstream and never repaired.
        window = [s for t, s in arrivals if lossy_from <= t <= lossy_until]
        first = window[0]
        span = max(seq_diff(s, first) for s in window) + 1
        got = {seq_diff(s, first) for _, s in arrivals} & set(range(span))
        dropped = relay.ab.dropped
        assert dropped > 0.05 * span, (dropped, span)  # the uplink really was lossy
        assert span > 150, span  # about 35 packets a second
        assert len(got) >= 0.999 * span, (len(got), span, dropped)
        if rtx:  # the repairs came on the RTX stream, unwrapped
            assert forwarded.rtx_packets > 0.5 * dropped, (forwarded.rtx_packets, dropped)
            assert COUNTERS.rtx_received - unwrapped == forwarded.rtx_packets
        else:
            assert forwarded.rtx_packets == 0
    finally:
        await student.close()
        await teacher.close()
        await service.close()
        relay.close()
