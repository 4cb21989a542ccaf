"""RTX (RFC 4588) with real Chromium on both sides of the SFU.

* A Chromium publisher offers ``rtx`` for its video and is answered with it; the SFU learns the
  RTX SSRC from the offer's FID group. When the server loses some of the publisher's packets
  (a test hook on the publish transport drops every tenth first arrival), its NACKs are
  answered on Chromium's RTX stream, which the server unwraps and forwards.
* A Chromium subscriber offered ``rtx`` keeps it in its answer. When the server's packets to
  it are lost (every tenth media packet dropped before it is protected; retransmissions, on
  the RTX SSRC, pass), the server retransmits on the RTX stream and Chromium's ``getStats()``
  counts them as retransmissions of that stream.

The pages are bare ``RTCPeerConnection``s served by Playwright's router on
``http://localhost``, talking to a ``MediaService`` in the test's process (as in
tests/e2e/test_red_chromium.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiortc.sdp import SessionDescription
from playwright.async_api import Browser, Page, Route

from media import _aiortc
from media.ice import IceSettings
from media.router import COUNTERS
from media.service import MediaService, MediaSettings
from tests.e2e.rawpc import ANSWER_JS, NEW_PC_JS, PUBLISH_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

PAGE = "http://localhost/rtx.html"

_ONTRACK_JS = """
() => {
  pc.ontrack = (event) => {
    if (event.track.kind !== 'video') return;
    const video = document.createElement('video');
    video.muted = true;
    video.srcObject = new MediaStream([event.track]);
    document.body.appendChild(video);
    video.play();
  };
}
"""
_INBOUND_VIDEO_JS = """
async () => {
  const report = await pc.getStats();
  let out = null;
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out = {packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0,
             retransmittedPacketsReceived: s.retransmittedPacketsReceived,
             rtxSsrc: s.rtxSsrc ?? null, ssrc: s.ssrc, framesDecoded: s.framesDecoded || 0,
             nackCount: s.nackCount || 0};
    }
  });
  return out;
}
"""


async def _serve(route: Route) -> None:
    await route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>rtx")


@pytest_asyncio.fixture(loop_scope="module")
async def pages(browser: Browser) -> AsyncIterator[tuple[Page, Page]]:
    context = await browser.new_context()
    await context.route(PAGE, _serve)
    try:
        opened = []
        for _ in range(2):
            page = await context.new_page()
            await page.goto(PAGE)
            await page.evaluate(NEW_PC_JS)
            await page.evaluate(_ONTRACK_JS)
            opened.append(page)
        yield opened[0], opened[1]
    finally:
        await context.close()


def _video_rtx(sdp: str) -> int | None:
    """The rtx payload type of the video m-line whose apt is its first codec."""
    media = next(m for m in SessionDescription.parse(sdp).media if m.kind == "video")
    return _aiortc.rtx_payload_type(list(media.rtp.codecs))


def _drop_every_tenth(packets: Any, ssrc: int) -> None:
    """Make ``packets(data)`` (an RTP sink of a transport) lose every tenth packet of the
    media stream ``ssrc`` — first transmissions only: packets of any other SSRC (the RTX
    stream's) pass."""
    owner, name = packets
    original = getattr(owner, name)
    count = [0]

    def lossy(data: bytes) -> Any:
        if int.from_bytes(data[8:12], "big") == ssrc:
            count[0] += 1
            if count[0] % 10 == 0:
                return False
        return original(data)

    setattr(owner, name, lossy)


async def test_chromium_retransmits_on_rtx_both_ways(pages: tuple[Page, Page]) -> None:
    publisher, subscriber = pages
    service = MediaService(MediaSettings(ice=IceSettings.loopback()))
    offer = await publisher.evaluate(PUBLISH_JS, {"audio": False, "video": True})
    assert _video_rtx(offer) is not None, "Chromium no longer offers rtx for its video"
    answer, infos = await service.publish("L1", "teacher", offer)
    answered_rtx = _video_rtx(answer)
    assert answered_rtx is not None and answered_rtx == _video_rtx(offer)
    await publisher.evaluate("(sdp) => pc.setRemoteDescription({type: 'answer', sdp})", answer)
    publish = service.routers["L1"].publish["teacher"]
    (producer,) = publish.producers
    assert producer.rtx_ssrc is not None and producer.rtx_payload_type == answered_rtx
    # The uplink loses every tenth packet as the server receives it; Chromium's RTX repairs.
    _drop_every_tenth((publish, "_on_rtp"), producer.ssrc)

    sub_offer = await service.subscribe("L1", "student", [i.id for i in infos])
    assert sub_offer is not None
    sub_answer = await subscriber.evaluate(ANSWER_JS, sub_offer.sdp)
    assert _video_rtx(sub_answer) is not None  # Chromium keeps rtx
    await service.accept_answer("L1", "student", sub_answer)
    transport = service.routers["L1"].subscribe["student"]
    (consumer,) = transport.consumers.values()
    assert consumer.rtx is not None
    # The downlink loses every tenth media packet; retransmissions (RTX SSRC) get through.
    _drop_every_tenth((transport, "send_rtp"), consumer.ssrc)
    unwrapped = COUNTERS.rtx_received
    try:
        stats: dict[str, Any] | None = None
        for _ in range(200):
            stats = await subscriber.evaluate(_INBOUND_VIDEO_JS)
            if (
                stats
                and (stats["retransmittedPacketsReceived"] or 0) > 20
                and stats["framesDecoded"] > 30
                and producer.rtx_packets > 20
            ):
                break
            await subscriber.wait_for_timeout(100)
        assert stats is not None, "Chromium received no video"
        assert stats["ssrc"] == consumer.ssrc
        assert stats["retransmittedPacketsReceived"] is not None, "no such stat in this Chromium"
        assert stats["retransmittedPacketsReceived"] > 20, stats
        assert stats["nackCount"] > 0, stats
        if stats["rtxSsrc"] is not None:
            assert stats["rtxSsrc"] == consumer.rtx.ssrc, stats
        assert stats["framesDecoded"] > 30, stats
        assert consumer.rtx.packets >= stats["retransmittedPacketsReceived"]
        # Chromium's repairs came on its RTX stream and were unwrapped.
        assert producer.rtx_packets > 20, (producer.rtx_packets, producer.rtx_padding)
        assert COUNTERS.rtx_received > unwrapped
    finally:
        await service.close()
