"""A weak downlink as a person sees it, in real browsers: the student's "Audio only" button on a
360×640 phone, what covers the teacher's video when it is off, held back or frozen, and the
weak-link tags of the console (docs/protocol.md, "Downlink").

The frozen-video cover is driven for real: the teacher's browser stops sending video frames
(its sender's track is replaced by none) without telling anyone, as a stalled uplink would, and
the student's page must notice from the frames alone. The server-driven states (`downlink`
events, the participants' `link`) are read after the student turns data saver on, which a server
that knows `data_saver` answers with `audio_only` / `data_saver`; against a server that does not
(`unknown_type`), that test is skipped and the page must stay calm.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, Playwright, expect

from tests.e2e.browser import Flow, video_advancing, video_has_size, wait_for_flows
from tests.e2e.harness import LophocServer, Tab, Tabs
from tests.e2e.pages import (
    TIMEOUT,
    VIETNAMESE_LETTER,
    create_lesson,
    enable_sound_if_offered,
    expect_connected,
    expect_seen,
    join_lesson,
    participant_id,
    phone,
    tid,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TEACHER_VIDEO = '[data-testid="teacher-video"]'
CONTROLS = (
    "toggle-mic",
    "toggle-camera",
    "raise-hand",
    "toggle-chat",
    "toggle-data-saver",
    "leave",
)

# Stop (or restart) sending one's camera without a word to the server: the sender's track is
# replaced by none, so no more video RTP leaves the browser, as when an uplink stalls.
_STOP_VIDEO_JS = """
async () => {
  const pc = window.lophoc.pcs().publish;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'video');
  if (!sender) return false;
  window.__e2eVideo = {sender, track: sender.track};
  await sender.replaceTrack(null);
  return true;
}
"""
_RESTART_VIDEO_JS = """
async () => {
  const saved = window.__e2eVideo;
  await saved.sender.replaceTrack(saved.track);
  return true;
}
"""


async def lesson_with_phone(
    tabs: Tabs, lophoc: LophocServer, playwright_driver: Playwright, title: str
) -> tuple[Tab, Tab, str, str]:
    """A teacher and a student on a 360×640 phone who watches her; returns both tabs and ids."""
    pixel5 = playwright_driver.devices["Pixel 5"]
    teacher = await tabs.open("teacher")
    student = await tabs.open("student-360x640", **phone(pixel5, 360, 640))
    lesson = await create_lesson(teacher, lophoc.url, title, "mật-khẩu-lớp")
    teacher_id = await participant_id(teacher.page)
    student_id = await join_lesson(student, lesson.link, "Nguyễn Thị Mai", lesson.password)
    await video_has_size(student.page, TEACHER_VIDEO)
    await enable_sound_if_offered(student.page)
    await video_advancing(student.page, TEACHER_VIDEO)
    return teacher, student, teacher_id, student_id


def requests_of(tab: Tab, kind: str) -> list[dict[str, Any]]:
    sent = [json.loads(frame) for frame in tab.sent_messages()]
    return [message for message in sent if message.get("type") == kind]


async def response_to(tab: Tab, request: dict[str, Any]) -> dict[str, Any]:
    """The server's answer to one request the page sent (ok or error, same id)."""
    page = tab.page
    for _ in range(100):
        for _, frame in tab.received_frames:
            message = json.loads(frame)
            if message.get("id") == request["id"] and message.get("type") in {"ok", "error"}:
                return dict(message)
        await page.wait_for_timeout(100)
    raise AssertionError(f"no answer to {request}")


async def teacher_video_tracks(page: Page) -> list[str]:
    """The kinds of the live tracks the teacher's `<video>` is given to play."""
    kinds: list[str] = await page.evaluate(
        """(sel) => { const v = document.querySelector(sel);
                      const s = v && v.srcObject;
                      return s ? s.getTracks().filter((t) => t.readyState === 'live')
                                  .map((t) => t.kind).sort() : []; }""",
        TEACHER_VIDEO,
    )
    return kinds


async def expect_teacher_named(page: Page) -> None:
    """The cover stands for the teacher: her name (as on the stage) and its initial."""
    name = (await tid(page, "teacher-name").text_content() or "").strip()
    assert name, "the stage does not name the teacher"
    await expect(tid(page, "video-paused-name")).to_have_text(name)
    # The given name's initial (the last word's), or the role word's own for a teacher
    # without an account ("Giáo viên").
    expected = name[0] if name in ("Giáo viên", "Teacher") else name.split()[-1][0]
    await expect(tid(page, "video-paused-initial")).to_have_text(expected.upper())


async def expect_control_bar_fits(page: Page) -> None:
    """Every control on screen, none overlapping another, labels drawn uncut."""
    boxes = []
    for test_id in CONTROLS:
        button = tid(page, test_id)
        await expect_seen(button)
        box = await button.bounding_box()
        assert box is not None, test_id
        assert box["width"] >= 44 and box["height"] >= 44, (test_id, box)  # a finger's size
        boxes.append((test_id, box))
    for (a, first), (b, second) in itertools.pairwise(boxes):
        assert first["x"] + first["width"] <= second["x"] + 0.5, f"{a} overlaps {b}"
    cut = await page.evaluate(
        """(ids) => ids.filter((id) => {
             const label = document.querySelector(`[data-testid="${id}"] .control-label`);
             return label.scrollWidth > label.clientWidth + 1
                 || label.scrollHeight > label.clientHeight + 1; })""",
        list(CONTROLS),
    )
    assert cut == [], f"labels cut short: {cut}"
    width = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"page is {width[0]} px wide on a {width[1]} px phone"


async def test_data_saver_toggle_on_a_phone(
    tabs: Tabs, lophoc: LophocServer, playwright_driver: Playwright, artifacts: Path
) -> None:
    _, student, teacher_id, _ = await lesson_with_phone(
        tabs, lophoc, playwright_driver, "Địa lý 6A — Sông ngòi"
    )
    page = student.page
    view = tid(page, "student-view")
    toggle = tid(page, "toggle-data-saver")
    await expect(view).to_have_attribute("data-downlink", "ok")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(toggle).to_have_text(VIETNAMESE_LETTER)
    await expect(tid(page, "downlink-notice")).to_be_hidden()
    await expect(tid(page, "video-paused")).to_be_hidden()
    await expect_control_bar_fits(page)
    await page.screenshot(path=str(artifacts / "downlink-ok-360x640.png"))

    # Audio only: the page stops showing video at once, says so, and asks the server.
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(view).to_have_attribute("data-data-saver", "on")
    notice = tid(page, "downlink-notice")
    await expect_seen(notice)
    await expect(notice).to_have_text("Chỉ nghe tiếng — đang tiết kiệm dữ liệu")
    await expect(notice).to_have_attribute("data-kind", "data_saver")
    cover = tid(page, "video-paused")
    await expect_seen(cover)
    await expect(cover).to_have_attribute("data-reason", "data_saver")
    await expect_teacher_named(page)
    assert await teacher_video_tracks(page) == ["audio"]
    await expect_control_bar_fits(page)

    request = requests_of(student, "data_saver")[-1]
    assert request["on"] is True, request
    answer = await response_to(student, request)
    assert answer["type"] == "ok" and answer["data"] == {"on": True}, answer
    # Calm: no error told, still connected, the sound still comes, and no video any more.
    await expect(tid(page, "notice")).to_be_hidden()
    await expect(tid(page, "media-error")).to_be_hidden()
    await expect_connected(page)
    await wait_for_flows(
        page,
        [
            Flow(teacher_id, "video", moving=False),
            Flow(teacher_id, "audio", "bytesReceived"),
        ],
        label="data saver on",
    )
    await page.screenshot(path=str(artifacts / "downlink-data-saver-360x640.png"))

    # Remembered: a reload resumes with data saver still on, and tells the server again.
    await page.reload()
    await expect(view).to_be_visible()
    await expect_connected(page)
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await expect(tid(page, "video-paused")).to_have_attribute("data-reason", "data_saver")
    await page.wait_for_function(
        "() => window.lophoc.downlink && window.lophoc.downlink.state === 'audio_only'",
        timeout=TIMEOUT,
    )
    # Every join tells the server the choice: off at the first, on after the reload.
    assert [r["on"] for r in requests_of(student, "data_saver")] == [False, True, True]
    await enable_sound_if_offered(page)

    # Off again: the teacher's video comes back and plays.
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await expect(tid(page, "downlink-notice")).to_be_hidden()
    await expect(tid(page, "video-paused")).to_be_hidden(timeout=TIMEOUT)
    await video_has_size(page, TEACHER_VIDEO)
    await enable_sound_if_offered(page)
    await video_advancing(page, TEACHER_VIDEO)
    await wait_for_flows(page, [Flow(teacher_id, "video")], label="data saver off")
    assert await teacher_video_tracks(page) == ["audio", "video"]


async def test_stopped_video_is_covered_not_frozen(
    tabs: Tabs, lophoc: LophocServer, playwright_driver: Playwright, artifacts: Path
) -> None:
    teacher, student, _, student_id = await lesson_with_phone(
        tabs, lophoc, playwright_driver, "Sinh học 7B — Tế bào"
    )
    page = student.page
    cover = tid(page, "video-paused")

    # The teacher turns her camera off (`pause`): her initial and name, not her last frame.
    await tid(teacher.page, "toggle-camera").click()
    await expect(tid(teacher.page, "toggle-camera")).to_have_attribute("data-state", "off")
    await expect_seen(cover)
    await expect(cover).to_have_attribute("data-reason", "camera_off")
    await expect_teacher_named(page)
    await page.screenshot(path=str(artifacts / "downlink-camera-off-360x640.png"))
    await tid(teacher.page, "toggle-camera").click()
    await expect(cover).to_be_hidden(timeout=TIMEOUT)
    await video_advancing(page, TEACHER_VIDEO)

    # Her frames stop without a word (a stalled uplink): the page notices from the frames.
    assert await teacher.page.evaluate(_STOP_VIDEO_JS)
    await expect_seen(cover)
    await expect(cover).to_have_attribute("data-reason", "frozen")
    await expect(tid(page, "video-paused-text")).to_have_text("Hình đang dừng")
    await expect(tid(page, "teacher-video")).to_have_attribute("data-frames", "frozen")
    await expect(tid(page, "downlink-notice")).to_be_hidden()  # not the downlink's doing
    await page.screenshot(path=str(artifacts / "downlink-frozen-360x640.png"))
    assert await teacher.page.evaluate(_RESTART_VIDEO_JS)
    await expect(cover).to_be_hidden(timeout=TIMEOUT)
    await video_advancing(page, TEACHER_VIDEO)

    # The same for a student's tile in the console.
    tile = teacher.page.locator(f'[data-testid="tile"][data-participant="{student_id}"]')
    await expect(tile).to_have_class("tile has-picture", timeout=TIMEOUT)
    await expect(tile).to_have_attribute("data-frozen", "false")
    assert await page.evaluate(_STOP_VIDEO_JS)
    await expect(tile).to_have_attribute("data-frozen", "true", timeout=TIMEOUT)
    await expect(tile.locator(".tile-state")).to_have_text("Hình đang dừng")
    await expect_seen(tile.locator(".tile-avatar"))
    await teacher.page.screenshot(path=str(artifacts / "downlink-console-frozen-tile.png"))
    assert await page.evaluate(_RESTART_VIDEO_JS)
    await expect(tile).to_have_attribute("data-frozen", "false", timeout=TIMEOUT)

    # The participant's menu offers the connection's figures (or says the server has none).
    row = teacher.page.locator(f'[data-testid="participant"][data-id="{student_id}"]')
    await row.get_by_test_id("participant-menu").click()
    await row.get_by_test_id("action-connection").click()
    dialog = tid(teacher.page, "connection-dialog")
    await expect_seen(dialog)
    await expect(tid(teacher.page, "connection-name")).to_have_text("Nguyễn Thị Mai")
    [stats] = requests_of(teacher, "stats")
    assert stats["participant"] == student_id, stats
    answer = await response_to(teacher, stats)
    assert answer["type"] == "ok", answer
    await expect_seen(tid(teacher.page, "stats-estimate"))
    await expect(tid(teacher.page, "stats-state")).to_have_text(VIETNAMESE_LETTER)
    await teacher.page.screenshot(path=str(artifacts / "downlink-console-connection.png"))
    await tid(teacher.page, "connection-dialog-close").click()
    await expect(dialog).to_be_hidden()


async def test_server_says_audio_only_for_data_saver(
    tabs: Tabs, lophoc: LophocServer, playwright_driver: Playwright, artifacts: Path
) -> None:
    """The server honours the data saver: the page shows what it says (`downlink`), in
    Vietnamese and in English, and the teacher's list shows `link`."""
    teacher, student, _, student_id = await lesson_with_phone(
        tabs, lophoc, playwright_driver, "Lịch sử 8C — Nhà Trần"
    )
    page = student.page
    await tid(page, "toggle-data-saver").click()
    await expect(tid(page, "toggle-data-saver")).to_have_attribute("aria-pressed", "true")
    request = requests_of(student, "data_saver")[-1]
    assert request["on"] is True, request
    answer = await response_to(student, request)
    assert answer["type"] == "ok", answer

    view = tid(page, "student-view")
    await expect(view).to_have_attribute("data-downlink", "audio_only", timeout=TIMEOUT)
    await expect(view).to_have_attribute("data-downlink-reason", "data_saver")
    await expect_seen(tid(page, "downlink-notice"))
    await expect(tid(page, "downlink-notice")).to_have_text(
        "Chỉ nghe tiếng — đang tiết kiệm dữ liệu"
    )
    await page.screenshot(path=str(artifacts / "downlink-audio-only-server-360x640.png"))
    # The same in English: the notice is on screen and says it in the page's language.
    await tid(page, "lang-switch").select_option("en")
    await expect_seen(tid(page, "downlink-notice"))
    await expect(tid(page, "downlink-notice")).to_have_text("Audio only — saving data")
    await expect_control_bar_fits(page)
    # The cover follows the switch too: the chip's name and the cover's are one.
    await expect_teacher_named(page)
    await page.screenshot(path=str(artifacts / "downlink-audio-only-server-360x640-en.png"))
    await tid(page, "lang-switch").select_option("vi")

    row = teacher.page.locator(f'[data-testid="participant"][data-id="{student_id}"]')
    await expect(row).to_have_attribute("data-link", "audio_only", timeout=TIMEOUT)
    tag = row.get_by_test_id("participant-link")
    await expect_seen(tag)
    await expect(tag).to_have_text("Chỉ nghe tiếng")
    await tid(teacher.page, "participant-list").screenshot(
        path=str(artifacts / "downlink-console-participants.png")
    )

    await tid(page, "toggle-data-saver").click()
    await expect(view).to_have_attribute("data-downlink", "ok", timeout=TIMEOUT)
    await expect(tid(page, "downlink-notice")).to_be_hidden()
    await expect(row).to_have_attribute("data-link", "ok", timeout=TIMEOUT)
    await expect(tag).to_be_hidden()
