"""RED (RFC 2198) and loss reflection with real Chromium.

* A Chromium publisher's microphone is answered with RED, Chromium sends RED, and the SFU
  forwards it as RED to a Chromium subscriber and as plain Opus to an aiortc subscriber that
  decodes it.
* When a subscriber's link loses packets, the Chromium publisher is told of that loss for its
  audio (so its Opus encoder adds in-band FEC) and not for its video.
* At 5 % loss toward two Chromium students, the one receiving RED conceals at most 2 % of the
  teacher's audio (the goal for weak phone links); the one receiving plain Opus conceals more.

The pages are bare ``RTCPeerConnection``s (what ``web/static/js/media.js`` does with SDP: pass it
through untouched), talking to a ``MediaService`` in the test's own process so the producer and
consumers can be inspected. The pages are served by Playwright's router on ``http://localhost``
(no server; a secure context, so the fake microphone is available). An aiortc peer that keeps
``red`` in its answer reads the RED packets as they arrive, to see Chromium's redundant blocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiortc import RTCSessionDescription
from aiortc.sdp import MediaDescription, SessionDescription
from playwright.async_api import Browser, Page, Route

from media import _aiortc, red
from media.ice import IceSettings
from media.router import COUNTERS
from media.rtp import parse_header
from media.service import MediaService, MediaSettings
from tests.e2e.rawpc import ANSWER_JS, NEW_PC_JS, PUBLISH_JS
from tests.peers import Receiver, answer_offer, loopback_pc, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PAGE = "http://localhost/red.html"

# Received audio is decoded only while something plays it (as the lesson page does).
_ONTRACK_JS = """
() => {
  pc.ontrack = (event) => {
    const audio = new Audio();
    audio.srcObject = new MediaStream([event.track]);
    audio.muted = true;
    window.playing = audio.play().then(() => 'playing', (e) => String(e));
  };
}
"""
_INBOUND_AUDIO_JS = """
async () => {
  const report = await pc.getStats();
  let out = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      const codec = s.codecId ? report.get(s.codecId) : null;
      out = {packetsReceived: s.packetsReceived || 0, totalSamplesReceived:
             s.totalSamplesReceived || 0, concealedSamples: s.concealedSamples || 0,
             mimeType: codec ? codec.mimeType : null};
    }
  });
  return out;
}
"""


async def _serve(route: Route) -> None:
    await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>red")


@pytest_asyncio.fixture(loop_scope="module")
async def pages(browser: Browser) -> AsyncIterator[tuple[Page, Page, Page]]:
    context = await browser.new_context()
    await context.route(PAGE, _serve)
    try:
        opened = []
        for _ in range(3):
            page = await context.new_page()
            await page.goto(PAGE)
            await page.evaluate(NEW_PC_JS)
            await page.evaluate(_ONTRACK_JS)
            opened.append(page)
        yield opened[0], opened[1], opened[2]
    finally:
        await context.close()


def _audio(sdp: str) -> MediaDescription:
    return next(m for m in SessionDescription.parse(sdp).media if m.kind == "audio")


async def test_chromium_publisher_negotiates_and_sends_red(
    pages: tuple[Page, Page, Page],
) -> None:
    publisher, subscriber, _ = pages
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    malformed = COUNTERS.dropped_malformed_red
    offer = await publisher.evaluate(PUBLISH_JS, {"audio": True, "video": False})
    offered = _audio(offer)
    negotiated = _aiortc.red_type_of(offered)
    assert negotiated is not None, "Chromium no longer offers red/48000/2 for audio"
    red_pt, opus_pt = negotiated

    answer, infos = await service.publish("L1", "teacher", offer)
    answered = _audio(answer)
    assert answered.fmt[:2] == [red_pt, opus_pt]
    assert f"a=fmtp:{opus_pt} useinbandfec=1" in answer
    await publisher.evaluate("(sdp) => pc.setRemoteDescription({type: 'answer', sdp})", answer)
    (producer,) = service.routers["L1"].producers.values()
    assert producer.red is not None and producer.red.red_type == red_pt

    # A Chromium subscriber: offered red first, it answers with red.
    sub_offer = await service.subscribe("L1", "chromium_student", [i.id for i in infos])
    assert sub_offer is not None
    sub_answer = await subscriber.evaluate(ANSWER_JS, sub_offer.sdp)
    assert _aiortc.red_type_of(_audio(sub_answer)) is not None
    await service.accept_answer("L1", "chromium_student", sub_answer)

    # An aiortc subscriber without RED, decoding; and one that keeps red, reading raw packets.
    plain = loopback_pc()
    rx = Receiver(plain)
    plain_offer = await service.subscribe("L1", "plain_student", [i.id for i in infos])
    assert plain_offer is not None
    await service.accept_answer("L1", "plain_student", await answer_offer(plain, plain_offer.sdp))
    raw = loopback_pc()
    received: list[bytes] = []
    raw_offer = await service.subscribe("L1", "raw_student", [i.id for i in infos])
    assert raw_offer is not None
    await raw.setRemoteDescription(RTCSessionDescription(raw_offer.sdp, "offer"))
    _aiortc.tap_received_rtp(_aiortc.dtls_transport_of(raw), received.append)
    raw_answer = await raw.createAnswer()
    await raw.setLocalDescription(
        RTCSessionDescription(_aiortc.with_red(raw_answer.sdp, lambda m: 63), "answer")
    )
    await service.accept_answer("L1", "raw_student", raw.localDescription.sdp)

    subscribers = service.routers["L1"].subscribe
    (chromium_consumer,) = subscribers["chromium_student"].consumers.values()
    (plain_consumer,) = subscribers["plain_student"].consumers.values()
    assert chromium_consumer.red is not None and chromium_consumer.red.red_type is not None
    assert plain_consumer.red is not None and plain_consumer.red.red_type is None
    try:
        assert await wait_for(lambda: rx.audio_frames > 50, timeout=20)
        assert await wait_for(lambda: len(received) > 50, timeout=10)
        headers = [parse_header(p) for p in received]
        assert {h.payload_type for h in headers} == {63}  # Chromium sends RED, forwarded as RED
        blocks = [red.parse(p[h.payload_offset :]) for p, h in zip(received, headers, strict=True)]
        assert all(b is not None for b in blocks)
        assert any(len(b) > 1 for b in blocks if b is not None), "no redundant block seen"
        stats = None
        for _ in range(100):
            stats = await subscriber.evaluate(_INBOUND_AUDIO_JS)
            if stats and stats["packetsReceived"] > 50:
                break
            await subscriber.wait_for_timeout(100)
        assert stats is not None and stats["packetsReceived"] > 50, stats
        assert await subscriber.evaluate("() => window.playing") == "playing"
        assert stats["totalSamplesReceived"] > 0, stats
        assert COUNTERS.dropped_malformed_red == malformed
    finally:
        await rx.close()
        await plain.close()
        await raw.close()
        await service.close()


_REMOTE_INBOUND_JS = """
async () => {
  const report = await pc.getStats();
  const out = {};
  report.forEach((s) => {
    if (s.type === 'remote-inbound-rtp') out[s.kind] = s.fractionLost ?? null;
  });
  return out;
}
"""


async def test_subscriber_loss_is_reflected_to_the_publishers_audio_only(
    pages: tuple[Page, Page, Page],
) -> None:
    publisher, subscriber, _ = pages
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    offer = await publisher.evaluate(PUBLISH_JS, {"audio": True, "video": True})
    answer, infos = await service.publish("L1", "teacher", offer)
    await publisher.evaluate("(sdp) => pc.setRemoteDescription({type: 'answer', sdp})", answer)
    sub_offer = await service.subscribe("L1", "student", [i.id for i in infos])
    assert sub_offer is not None
    await service.accept_answer(
        "L1", "student", await subscriber.evaluate(ANSWER_JS, sub_offer.sdp)
    )
    # The student's link loses every tenth packet of each stream for good: the same sequence
    # number is lost again when resent, so NACKs cannot hide it from the student's reports.
    transport = service.routers["L1"].subscribe["student"]
    send_rtp = transport.send_rtp

    def lossy(packet: bytes) -> bool:
        return False if int.from_bytes(packet[2:4], "big") % 10 == 0 else send_rtp(packet)

    transport.send_rtp = lossy  # type: ignore[method-assign]
    seen: dict[str, float | None] = {}
    try:
        for _ in range(200):
            seen = await publisher.evaluate(_REMOTE_INBOUND_JS)
            if (seen.get("audio") or 0) > 0.05 and "video" in seen:
                break
            await publisher.wait_for_timeout(100)
        audio, video = seen.get("audio"), seen.get("video")
        assert audio is not None and audio > 0.05, seen  # ≈ 10 % reflected (26/256 at most)
        assert video is not None and video < 0.02, seen  # the uplink itself loses nothing
    finally:
        await service.close()


def _without_red(sdp: str) -> str:
    """A browser's answer as a subscriber without RED support would have written it."""
    description = SessionDescription.parse(sdp)
    for media in description.media:
        found = _aiortc.red_type_of(media)
        if found is not None:
            media.rtp.codecs = [c for c in media.rtp.codecs if c.payloadType != found[0]]
            media.fmt = [f for f in media.fmt if f != found[0]]
    return str(description)


def _lose_one_in_twenty(transport: Any) -> None:
    """Make a subscriber's link lose every twentieth sequence number: 5 % isolated losses."""
    send_rtp = transport.send_rtp

    def lossy(packet: bytes) -> bool:
        return False if int.from_bytes(packet[2:4], "big") % 20 == 0 else send_rtp(packet)

    transport.send_rtp = lossy


async def test_red_keeps_concealed_audio_under_two_percent_at_five_percent_loss(
    pages: tuple[Page, Page, Page],
) -> None:
    publisher, with_red, without_red = pages
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    offer = await publisher.evaluate(PUBLISH_JS, {"audio": True, "video": False})
    answer, infos = await service.publish("L1", "teacher", offer)
    await publisher.evaluate("(sdp) => pc.setRemoteDescription({type: 'answer', sdp})", answer)
    for name, page in (("red", with_red), ("plain", without_red)):
        sub_offer = await service.subscribe("L1", name, [i.id for i in infos])
        assert sub_offer is not None
        sub_answer = await page.evaluate(ANSWER_JS, sub_offer.sdp)
        await service.accept_answer(
            "L1", name, sub_answer if name == "red" else _without_red(sub_answer)
        )
        _lose_one_in_twenty(service.routers["L1"].subscribe[name])
    subscribers = service.routers["L1"].subscribe
    (red_consumer,) = subscribers["red"].consumers.values()
    (plain_consumer,) = subscribers["plain"].consumers.values()
    assert red_consumer.red is not None and red_consumer.red.red_type is not None
    assert plain_consumer.red is not None and plain_consumer.red.red_type is None
    try:
        # Past the jitter buffers' start-up, 10 s of audio (500 packets, 25 of them lost).
        await publisher.wait_for_timeout(3000)
        before = [await page.evaluate(_INBOUND_AUDIO_JS) for page in (with_red, without_red)]
        await publisher.wait_for_timeout(10000)
        after = [await page.evaluate(_INBOUND_AUDIO_JS) for page in (with_red, without_red)]
        concealed = []
        for b, a in zip(before, after, strict=True):
            samples = a["totalSamplesReceived"] - b["totalSamplesReceived"]
            assert samples > 48000 * 8, (b, a)  # the audio really played
            concealed.append((a["concealedSamples"] - b["concealedSamples"]) / samples)
        red_share, plain_share = concealed
        assert red_share <= 0.02, concealed
        assert plain_share > red_share, concealed
    finally:
        await service.close()
