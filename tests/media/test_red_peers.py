"""RED end to end with real aiortc peers on loopback: a publisher that offers and sends RED the
way Chromium does, one subscriber that negotiates RED and one that does not.

aiortc neither offers nor sends RED, so the publisher plays Chromium's part in two steps: its
offer is Chromium's audio m-line (Opus 111, then ``63 red/48000/2`` with ``111/111``), and each
Opus packet its encoder sends is wrapped, on its way out, into RED with the previous frame as
the redundant block — what libwebrtc's RED encoder does with one level of redundancy. The RED
subscriber answers as a browser would (``red`` kept), so it is an aiortc peer whose received
packets are read raw; the other subscriber is plain aiortc and decodes the Opus it gets.
"""

from __future__ import annotations

from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from media import _aiortc, red
from media.ice import IceSettings
from media.rtp import is_rtcp, parse_header
from media.service import MediaService, MediaSettings
from tests.peers import ColourTrack, Receiver, ToneTrack, answer_offer, loopback_pc, wait_for

OPUS, RED = 111, 63


def chromium_audio_offer(sdp: str, with_red: bool = True) -> str:
    """aiortc's offer with Chromium's audio codecs: Opus renumbered 111, RED 63 after it."""
    description = SessionDescription.parse(sdp)
    for media in description.media:
        if media.kind != "audio":
            continue
        opus = next(c for c in media.rtp.codecs if c.mimeType.lower() == "audio/opus")
        old = opus.payloadType
        opus.payloadType = OPUS
        opus.parameters = {"minptime": 10, "useinbandfec": 1}
        media.fmt = [OPUS if f == old else f for f in media.fmt]
    text = str(description)
    if not with_red:
        return text
    # Chromium lists red right after Opus; with_red puts it first, so move it back.
    red_first = SessionDescription.parse(_aiortc.with_red(text, lambda m: RED))
    for media in red_first.media:
        if media.kind == "audio":
            media.rtp.codecs.insert(1, media.rtp.codecs.pop(0))
            media.fmt.insert(1, media.fmt.pop(0))
    return str(red_first)


class RedWrapper:
    """Wraps a peer's outgoing Opus packets into RED (previous frame + current frame)."""

    def __init__(self) -> None:
        self.previous: tuple[int, bytes] | None = None
        self.wrapped = 0

    def __call__(self, data: bytes) -> bytes:
        if is_rtcp(data):
            return data
        header = parse_header(data)
        if header.payload_type != OPUS:
            return data
        frame = data[header.payload_offset :]
        redundant = []
        if self.previous is not None:
            offset = (header.timestamp - self.previous[0]) & 0xFFFFFFFF
            if 0 < offset <= red.MAX_TIMESTAMP_OFFSET and len(self.previous[1]) <= 1023:
                redundant = [(OPUS, offset, self.previous[1])]
        self.previous = (header.timestamp, frame)
        self.wrapped += 1
        head = bytearray(data[: header.payload_offset])
        head[1] = (head[1] & 0x80) | RED
        return bytes(head) + red.encode(redundant, OPUS, frame)


async def test_red_publisher_reaches_a_red_and_a_plain_subscriber() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    teacher = loopback_pc()
    teacher.addTrack(ToneTrack())
    offer = await teacher.createOffer()
    await teacher.setLocalDescription(
        RTCSessionDescription(chromium_audio_offer(offer.sdp), "offer")
    )
    wrapper = RedWrapper()
    _aiortc.rewrite_sent_rtp(_aiortc.dtls_transport_of(teacher), wrapper)
    answer, infos = await service.publish("L1", "teacher", teacher.localDescription.sdp)

    # The answer puts red first (libwebrtc sends RED only then) and asks for Opus FEC.
    audio = SessionDescription.parse(answer).media[0]
    assert audio.fmt[:2] == [RED, OPUS]
    assert _aiortc.red_type_of(audio) == (RED, OPUS)
    assert next(c for c in audio.rtp.codecs if c.payloadType == OPUS).parameters == {
        "useinbandfec": 1
    }
    await teacher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    (producer,) = service.routers["L1"].producers.values()
    assert producer.red is not None and producer.codec.payload_type == OPUS

    # A subscriber that keeps red in its answer, as Chromium and Safari do.
    red_student = loopback_pc()
    red_offer = await service.subscribe("L1", "red_student", [i.id for i in infos])
    assert red_offer is not None
    offered = SessionDescription.parse(red_offer.sdp).media[0]
    assert offered.fmt[0] == 63 and _aiortc.red_type_of(offered) is not None
    sub_red, sub_opus = _aiortc.red_type_of(offered) or (0, 0)
    await red_student.setRemoteDescription(RTCSessionDescription(red_offer.sdp, "offer"))
    received: list[bytes] = []  # aiortc would discard RED (a codec it did not negotiate)
    _aiortc.tap_received_rtp(_aiortc.dtls_transport_of(red_student), received.append)
    plain_answer = await red_student.createAnswer()
    assert _aiortc.red_type_of(SessionDescription.parse(plain_answer.sdp).media[0]) is None
    browser_answer = _aiortc.with_red(plain_answer.sdp, lambda m: sub_red)
    await red_student.setLocalDescription(RTCSessionDescription(browser_answer, "answer"))
    await service.accept_answer("L1", "red_student", red_student.localDescription.sdp)

    # A plain aiortc subscriber: its answer drops red, so it gets Opus, and decodes it.
    plain_student = loopback_pc()
    rx = Receiver(plain_student)
    plain_offer = await service.subscribe("L1", "plain_student", [i.id for i in infos])
    assert plain_offer is not None
    await service.accept_answer(
        "L1", "plain_student", await answer_offer(plain_student, plain_offer.sdp)
    )
    subscribers = service.routers["L1"].subscribe
    (red_consumer,) = subscribers["red_student"].consumers.values()
    (plain_consumer,) = subscribers["plain_student"].consumers.values()
    assert red_consumer.red is not None and red_consumer.red.red_type == sub_red
    assert plain_consumer.red is not None and plain_consumer.red.red_type is None
    try:
        assert await wait_for(lambda: rx.audio_frames > 25, timeout=15)
        assert await wait_for(lambda: len(received) > 25, timeout=5)
        assert wrapper.wrapped > 25
        headers = [parse_header(p) for p in received]
        assert {h.payload_type for h in headers} == {sub_red}
        with_redundancy = 0
        previous: bytes | None = None
        for packet, header in zip(received, headers, strict=True):
            payload = packet[header.payload_offset :]
            blocks = red.parse(payload)
            assert blocks is not None
            assert {b[0] for b in blocks} == {sub_opus}
            data = [payload[s:e] for _, _, s, e in blocks]
            if len(blocks) == 2:
                assert blocks[0][1] == 960  # 20 ms of Opus before the primary
                if previous is not None and data[0] == previous:
                    with_redundancy += 1
            previous = data[-1]
        # Consecutive packets: each one's redundant block is the frame before it.
        assert with_redundancy > 20
    finally:
        await rx.close()
        for pc in (plain_student, red_student, teacher):
            await pc.close()
        await service.close()


async def test_a_re_offer_that_drops_red_is_answered_without_it() -> None:
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    teacher = loopback_pc()
    teacher.addTrack(ToneTrack())
    offer = await teacher.createOffer()
    await teacher.setLocalDescription(
        RTCSessionDescription(chromium_audio_offer(offer.sdp), "offer")
    )
    answer, _ = await service.publish("L1", "teacher", teacher.localDescription.sdp)
    assert _aiortc.red_type_of(SessionDescription.parse(answer).media[0]) == (RED, OPUS)
    await teacher.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    teacher.addTrack(ColourTrack((0, 0, 200)))  # the camera comes later: a new offer
    offer = await teacher.createOffer()
    await teacher.setLocalDescription(
        RTCSessionDescription(chromium_audio_offer(offer.sdp, with_red=False), "offer")
    )
    answer, created = await service.publish("L1", "teacher", teacher.localDescription.sdp)
    audio, video = SessionDescription.parse(answer).media
    assert video.kind == "video"
    assert _aiortc.red_type_of(audio) is None and RED not in audio.fmt
    assert audio.fmt[0] == OPUS
    assert [p.kind for p in created] == ["video"]
    try:
        await teacher.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    finally:
        await teacher.close()
        await service.close()
