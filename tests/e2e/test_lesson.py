"""A live lesson in real browsers: the teacher console and students on phones, media checked
from inside the pages (``getStats()`` and the ``<video>`` elements)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, Playwright, expect

from tests.e2e.browser import (
    Flow,
    PcName,
    ice_report,
    video_advancing,
    video_has_size,
    wait_for_flows,
)
from tests.e2e.harness import LophocServer, Tab, Tabs
from tests.e2e.pages import (
    TIMEOUT,
    create_lesson,
    enable_sound_if_offered,
    join_lesson,
    participant_id,
    phone,
    tid,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TEACHER_VIDEO = '[data-testid="teacher-video"]'


def tile_video(participant: str) -> str:
    return f'[data-testid="tile"][data-participant="{participant}"] video'


async def expect_student_listed(teacher: Page, participant: str, name: str) -> None:
    row = teacher.locator(f'[data-testid="participant"][data-id="{participant}"]')
    await expect(row).to_have_count(1, timeout=TIMEOUT)
    await expect(row).to_contain_text(name)
    # Joined by code and password: a student, or a "guest" where the server keeps rosters.
    await expect(row).to_have_attribute("data-role", re.compile(r"^(student|guest)$"))
    await expect(row).to_have_attribute("data-state", "connected", timeout=TIMEOUT)


async def expect_watching_teacher(student: Tab, teacher_id: str) -> None:
    """The student's page plays the teacher's video and receives the teacher's sound."""
    page = student.page
    await video_has_size(page, TEACHER_VIDEO)
    await enable_sound_if_offered(page)
    await video_advancing(page, TEACHER_VIDEO)
    await wait_for_flows(
        page,
        [Flow(teacher_id, "video"), Flow(teacher_id, "audio", "bytesReceived")],
        label=student.label,
    )


async def expect_fits_phone(page: Page) -> None:
    """On a phone the teacher's video is on screen and the page does not scroll sideways."""
    await expect(page.locator(TEACHER_VIDEO)).to_be_in_viewport()
    overflow = await page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert overflow[0] <= overflow[1], f"page is {overflow[0]} px wide on a {overflow[1]} px phone"


async def test_lesson_in_browsers(
    tabs: Tabs, lophoc: LophocServer, playwright_driver: Playwright, artifacts: Path
) -> None:
    pixel5 = playwright_driver.devices["Pixel 5"]
    teacher = await tabs.open("teacher", locale="vi-VN")
    hoa = await tabs.open("phone-pixel5", locale="vi-VN", **phone(pixel5))
    duc = await tabs.open("phone-360x640", locale="vi-VN", **phone(pixel5, 360, 640))

    title = "Toán 7A — Phương trình bậc nhất một ẩn"
    lesson = await create_lesson(teacher, lophoc.url, title, "mật-khẩu-7A")
    teacher_id = await participant_id(teacher.page)
    hoa_id, duc_id = await asyncio.gather(
        join_lesson(hoa, lesson.link, "Nguyễn Thị Hoa", lesson.password),
        join_lesson(duc, lesson.link, "Trần Văn Đức", lesson.password),
    )
    assert len({teacher_id, hoa_id, duc_id}) == 3

    for student in (hoa, duc):
        await expect(tid(student.page, "lesson-title")).to_contain_text(title)
    await asyncio.gather(
        expect_watching_teacher(hoa, teacher_id), expect_watching_teacher(duc, teacher_id)
    )
    for student in (hoa, duc):
        await expect_fits_phone(student.page)

    await expect_student_listed(teacher.page, hoa_id, "Nguyễn Thị Hoa")
    await expect_student_listed(teacher.page, duc_id, "Trần Văn Đức")
    await wait_for_flows(
        teacher.page, [Flow(hoa_id, "video"), Flow(duc_id, "video")], label="teacher"
    )
    for participant in (hoa_id, duc_id):
        await video_has_size(teacher.page, tile_video(participant))

    await hoa.page.screenshot(path=str(artifacts / "lesson-student-pixel5.png"))
    await duc.page.screenshot(path=str(artifacts / "lesson-student-360x640.png"))
    await teacher.page.screenshot(path=str(artifacts / "lesson-teacher-console.png"))


def _loopback(address: object) -> bool:
    return isinstance(address, str) and ipaddress.ip_address(address) == ipaddress.ip_address(
        "127.0.0.1"
    )


async def test_media_stays_on_loopback(tabs: Tabs, lophoc: LophocServer) -> None:
    """The launch flags and the server's ICE settings work: every peer connection of both
    pages selected the candidate pair 127.0.0.1 ↔ 127.0.0.1, and the server offered nothing
    but 127.0.0.1."""
    teacher = await tabs.open("teacher")
    student = await tabs.open("student")
    lesson = await create_lesson(teacher, lophoc.url, "Tiếng Việt 3B", "mật-khẩu-3B")
    teacher_id = await participant_id(teacher.page)
    student_id = await join_lesson(student, lesson.link, "Lê Thị Mỹ Duyên", lesson.password)
    await wait_for_flows(student.page, [Flow(teacher_id, "video")], label="student")
    await wait_for_flows(teacher.page, [Flow(student_id, "video")], label="teacher")
    pcs: list[PcName] = ["publish", "subscribe"]
    for tab in (teacher, student):
        for which in pcs:
            report = await ice_report(tab.page, which)
            where = f"{tab.label} {which} PC: {report}"
            selected = report.get("selected")
            assert selected, where
            assert selected["state"] == "succeeded", where
            assert selected["local"]["address"] == "127.0.0.1", where
            assert selected["remote"]["address"] == "127.0.0.1", where
            assert selected["bytesSent"] > 0 or selected["bytesReceived"] > 0, where
            remote = report["remoteCandidates"]
            assert remote and all(_loopback(c["address"]) for c in remote), where


async def test_paging(tabs: Tabs, lophoc: LophocServer) -> None:
    """``?page_size=1``: one tile at a time, and only that student's video is received."""
    teacher = await tabs.open("teacher")
    students = [await tabs.open("student-a"), await tabs.open("student-b")]
    lesson = await create_lesson(teacher, lophoc.url, "Lịch sử 6A", "mật-khẩu-6A", page_size=1)
    ids = await asyncio.gather(
        join_lesson(students[0], lesson.link, "Vũ Hải Yến", lesson.password),
        join_lesson(students[1], lesson.link, "Hoàng Gia Bảo", lesson.password),
    )
    await expect_student_listed(teacher.page, ids[0], "Vũ Hải Yến")
    await expect_student_listed(teacher.page, ids[1], "Hoàng Gia Bảo")

    page = teacher.page
    tiles = tid(page, "student-grid").get_by_test_id("tile")
    await expect(tiles).to_have_count(1)
    await expect(tiles.first).to_have_attribute(
        "data-participant", re.compile(f"^({re.escape(ids[0])}|{re.escape(ids[1])})$")
    )
    shown = await tiles.first.get_attribute("data-participant")
    other = ids[1] if shown == ids[0] else ids[0]
    assert shown is not None
    await video_has_size(page, tile_video(shown))
    await wait_for_flows(
        page, [Flow(shown, "video"), Flow(other, "video", moving=False)], label="page 1"
    )
    first_page_label = await tid(page, "grid-page").inner_text()

    await tid(page, "grid-next").click()
    await expect(tiles).to_have_count(1)
    await expect(tiles.first).to_have_attribute("data-participant", other)
    await expect(tid(page, "grid-page")).not_to_have_text(first_page_label)
    await video_has_size(page, tile_video(other))
    await wait_for_flows(
        page, [Flow(other, "video"), Flow(shown, "video", moving=False)], label="page 2"
    )

    await tid(page, "grid-prev").click()
    await expect(tiles.first).to_have_attribute("data-participant", shown)
    await wait_for_flows(
        page, [Flow(shown, "video"), Flow(other, "video", moving=False)], label="page 1 again"
    )
