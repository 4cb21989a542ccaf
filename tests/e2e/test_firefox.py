"""A Firefox student (Debian's Firefox ESR) in a lesson, both directions.

The teacher is an aiortc peer speaking the real protocol (``tests/client.py``: a red camera and
a tone); the student is Firefox on the real student page, with its fake camera and
microphone. Pass criterion: Firefox joins through the join form, its page shows the teacher's
picture — the video element is on screen, not covered, playing, and its centre pixel is the
teacher's red — and receives the teacher's sound; the teacher receives the Firefox student's
camera. Firefox differs from Chromium where an SFU notices (VP8 and Opus payload types,
``a=rtcp`` and RTCP-component candidates, ``a=end-of-candidates``, no H.264 in Debian's build),
so this is the check that the server's SDP handling serves both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.typing import Origin

from tests.client import Client
from tests.e2e.firefox import Firefox
from tests.e2e.harness import LophocServer
from tests.peers import ColourTrack, ToneTrack, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

RED = (200, 30, 30)

# What a person sees of the teacher's video: on screen, not covered, playing, and its colour.
_TEACHER_VIDEO_JS = """
const video = document.querySelector('[data-testid="teacher-video"]');
if (!video) return {error: "no teacher video"};
const r = video.getBoundingClientRect();
const x = r.left + r.width / 2, y = r.top + r.height / 2;
const top = document.elementFromPoint(x, y);
let pixel = null;
if (video.videoWidth > 0) {
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0);
  pixel = Array.from(ctx.getImageData(canvas.width >> 1, canvas.height >> 1, 1, 1).data);
}
return {
  width: video.videoWidth, time: video.currentTime, paused: video.paused,
  rect: [r.left, r.top, r.width, r.height], viewport: [innerWidth, innerHeight],
  uncovered: top === video || video.contains(top), pixel,
};
"""

_AUDIO_BYTES_JS = """
const done = arguments[arguments.length - 1];
const pc = window.lophoc && window.lophoc.pcs ? window.lophoc.pcs().subscribe : null;
if (!pc) { done(0); return; }
pc.getStats().then((report) => {
  let bytes = 0;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") bytes += s.bytesReceived;
  });
  done(bytes);
});
"""


@pytest.fixture
def firefox(artifacts: Path) -> Iterator[Firefox]:
    browser = Firefox()
    try:
        yield browser
    finally:
        browser.close()


def fill_join_form(ff: Firefox, name: str, password: str) -> None:
    client = ff.client
    client.find_element("css selector", '[data-testid="join-name"]').send_keys(name)
    client.find_element("css selector", '[data-testid="join-password"]').send_keys(password)
    client.find_element("css selector", '[data-testid="join-submit"]').click()


def close_to(pixel: list[int] | None, rgb: tuple[int, int, int], tolerance: int = 40) -> bool:
    return pixel is not None and all(
        abs(a - b) <= tolerance for a, b in zip(pixel, rgb, strict=False)
    )


async def test_a_firefox_student_sees_and_hears_the_teacher_and_is_seen(
    lophoc: LophocServer, firefox: Firefox, artifacts: Path
) -> None:
    async with httpx.AsyncClient(base_url=lophoc.url) as http:
        created = await http.post(
            "/api/lessons", json={"title": "Âm nhạc 4B", "password": "mat-khau-4b"}
        )
    assert created.status_code == 201, created.text
    lesson: dict[str, Any] = created.json()
    teacher = await Client(lophoc.url.replace("http", "ws") + "/ws").connect(
        origin=Origin(lophoc.url)
    )
    try:
        await teacher.join_teacher(lesson["teacher_token"])
        await teacher.publish(ColourTrack(RED), ToneTrack())
        await teacher.subscribe()

        await asyncio.to_thread(firefox.grant_media, lophoc.url)
        await asyncio.to_thread(firefox.open, lesson["join_url"])
        await asyncio.to_thread(
            firefox.wait,
            "return !!document.querySelector('[data-testid=\"join-form\"]')",
            what="the join form",
        )
        await asyncio.to_thread(fill_join_form, firefox, "Hoàng Gia Bảo", "mat-khau-4b")
        await asyncio.to_thread(
            firefox.wait,
            "const c = document.querySelector('[data-testid=\"connection-state\"]');"
            "return c && c.dataset.state === 'connected'",
            timeout=30,
            what="connected",
        )

        first = await asyncio.to_thread(
            firefox.wait,
            f"const v = (() => {{{_TEACHER_VIDEO_JS}}})(); return v.width > 0 ? v : null",
            timeout=30,
            what="the teacher's picture",
        )
        await asyncio.sleep(1.5)
        later = await asyncio.to_thread(firefox.run, _TEACHER_VIDEO_JS)
        x, y, w, h = later["rect"]
        vw, vh = later["viewport"]
        assert w > 100 and h > 50 and x >= 0 and y >= 0 and x + w <= vw + 1, later
        assert y < vh, later
        assert later["uncovered"], later
        assert later["time"] > first["time"] and not later["paused"], (first, later)
        assert close_to(later["pixel"], RED), later

        async def audio_bytes() -> int:
            return int(
                await asyncio.to_thread(
                    firefox.client.execute_async_script,
                    _AUDIO_BYTES_JS,
                    sandbox=None,
                    script_timeout=10_000,
                )
            )

        before = await audio_bytes()
        await asyncio.sleep(1.5)
        assert await audio_bytes() > before + 2000, "no teacher sound reached Firefox"

        # The other direction: the teacher receives the Firefox student's camera.
        assert await wait_for(
            lambda: any(
                t.kind == "video" and teacher.receiver.frames_of.get(t, 0) > 10
                for t in teacher.receiver.tracks
            ),
            timeout=30,
        ), "the teacher never decoded the Firefox student's camera"
        await asyncio.to_thread(firefox.screenshot, artifacts / "firefox-student.png")
    finally:
        await teacher.close()
