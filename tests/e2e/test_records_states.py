"""Every state badge of the records pages is seen, where it belongs, on a phone and a laptop.

The report's "Trạng thái" column, the report's own state, each lesson's state on the lessons
page and each personal link's state in the links dialog: for every value each can take, the
badge must be drawn, inside its table cell (or its row), wholly on screen once scrolled to,
and not covered by anything (bounding boxes and ``elementFromPoint``), at 360 px and 1280 px.

The school is set up through the HTTP API, except the attendance of a lesson held three hours
ago: its events are appended to the server's own database through the attendance recorder
(what the signaling layer calls), with their real times, since no test can wait for hours.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Dialog, Locator, Page, expect

from classroom.admin import admin_records
from classroom.attendance import Attendee
from classroom.passwords import PasswordHasher
from classroom.ratelimit import MemoryFailureLimiter
from classroom.records import open_records
from classroom.storage import open_database
from tests.classroom.support import FAST_ARGON2
from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.pages import api_login, expect_seen, tid

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ADMIN_PASSWORD = "mật khẩu quản trị 2026"
TEACHER = ("cohoa", "Phạm Thị Hoà", "mật khẩu cô Hoà 2026")
ZONE = "Asia/Ho_Chi_Minh"
ROSTER = (
    "student_code,full_name,parent_contact\r\n"
    "HS001,Nguyễn Văn An,\r\n"
    "HS002,Trần Thị Bích Ngọc,\r\n"
    "HS003,Lê Hoàng Đức,\r\n"
    "HS004,Võ Thị Minh Khuê Nguyên Hạnh,\r\n"
    "HS005,Đặng Quốc Bảo,\r\n"
)
WIDTHS = (360, 1280)

STUDENT_STATES = {
    "HS001": ("present", "Có mặt"),
    "HS002": ("late", "Đi muộn"),
    "HS003": ("left_early", "Về sớm"),
    "HS004": ("absent", "Vắng"),
}
LESSON_STATES = {
    "upcoming": "Sắp diễn ra",
    "live": "Đang trong giờ học",
    "over": "Đã hết giờ",
    "ended": "Đã kết thúc",
}
LINK_STATES = {
    "active": "Đang dùng được",
    "revoked": "Đã huỷ",
    "expired": "Đã hết hạn",
    "withdrawn": "Đã rời lớp",
}


@dataclass(frozen=True)
class School:
    class_id: str
    held: str
    """Held three hours ago, attendance recorded, report closed: ended."""
    over: str
    """Scheduled two hours ago and never ended."""
    live: str
    upcoming: str


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def _lesson(
    http: httpx.AsyncClient, headers: dict[str, str], class_id: str, title: str, start: datetime
) -> str:
    made = await http.post(
        f"/api/classes/{class_id}/lessons",
        json={
            "title": title,
            "scheduled_start": start.isoformat(),
            "scheduled_end": (start + timedelta(minutes=45)).isoformat(),
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    lesson_id: str = made.json()["lesson"]["id"]
    return lesson_id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def school(lophoc: LophocServer) -> AsyncIterator[School]:
    url = f"sqlite+aiosqlite:///{(lophoc.data_dir / 'lophoc.sqlite3').resolve()}"
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user("admin", "Quản trị", ADMIN_PASSWORD, "admin")
        await records.accounts.create_user(*TEACHER, "teacher")
    now = _minute(datetime.now(UTC))
    held_start = now - timedelta(hours=3)
    async with httpx.AsyncClient(base_url=lophoc.url) as http:
        admin = await api_login(http, "admin", ADMIN_PASSWORD)
        made = await http.post(
            "/api/classes", json={"name": "8B", "teachers": [TEACHER[0]]}, headers=admin
        )
        assert made.status_code == 201, made.text
        class_id = made.json()["class"]["id"]
        imported = await http.put(
            f"/api/classes/{class_id}/roster", content=ROSTER.encode(), headers=admin
        )
        assert imported.status_code == 200, imported.text
        teacher = await api_login(http, TEACHER[0], TEACHER[2])
        held = await _lesson(http, teacher, class_id, "Ngữ văn 8B — Tức nước vỡ bờ", held_start)
        over = await _lesson(http, teacher, class_id, "Địa lí 8B", now - timedelta(hours=2))
        live = await _lesson(http, teacher, class_id, "Toán 8B", now - timedelta(minutes=10))
        upcoming = await _lesson(http, teacher, class_id, "Vật lí 8B", now + timedelta(days=1))

        # The held lesson's links and attendance, at the times they happened.
        clock = [held_start - timedelta(days=1)]
        async with await open_database(url) as database:
            records = await open_records(
                database,
                MemoryFailureLimiter(),
                link_key_file=lophoc.data_dir / "link.key",  # the server's own key
                create_link_key=False,
                node_id="e2e-history",
                clock=lambda: clock[0],
            )
            for lesson_id in (held, over):
                record = await database.lessons.by_id(lesson_id)
                assert record is not None
                await records.links.ensure_links(record.lesson)
            entries = {e.student_code: e for e in await records.rosters.entries(class_id)}
            log = records.attendance

            async def at(minutes: float, kind: str, who: str) -> None:
                clock[0] = held_start + timedelta(minutes=minutes)
                if who == "teacher":
                    attendee, pid = Attendee("teacher", "Teacher"), "teacher-1"
                else:
                    entry = entries[who]
                    attendee = Attendee("student", entry.full_name, entry.id)
                    pid = f"p-{who}"
                await getattr(log, kind)(held, pid, attendee)

            await at(-10, "joined", "teacher")  # started ten minutes early
            await at(0.5, "joined", "HS001")
            await at(1, "joined", "HS003")
            await at(12, "joined", "HS002")
            await at(20, "left", "HS003")
            await at(45, "left", "HS001")
            await at(45, "left", "HS002")
            await at(45, "left", "teacher")

        closed = await http.post(f"/api/lessons/{held}/report/close", headers=teacher)
        assert closed.status_code == 200, closed.text

        # Links of the live lesson: one revoked; one student leaves the class.
        links = await http.get(f"/api/lessons/{live}/links", headers=teacher)
        assert links.status_code == 200, links.text
        by_code = {link["student_code"]: link for link in links.json()["links"]}
        revoked = await http.post(
            f"/api/lessons/{live}/links/{by_code['HS002']['id']}/revoke", headers=teacher
        )
        assert revoked.status_code == 200, revoked.text
        without_bao = "\r\n".join(ROSTER.split("\r\n")[:-2]) + "\r\n"
        reimported = await http.put(
            f"/api/classes/{class_id}/roster?withdraw_missing=true",
            content=without_bao.encode(),
            headers=admin,
        )
        assert reimported.status_code == 200, reimported.text
    yield School(class_id, held, over, live, upcoming)


# The badge's box lies inside its container's box (its table cell, its row), and the
# container's inside the page's width: nothing is pulled out of place.
_INSIDE_JS = """
(el, selector) => {
  const box = el.getBoundingClientRect();
  const holder = el.parentElement && el.parentElement.closest(selector);
  if (!holder) return `no ${selector} around it`;
  const outer = holder.getBoundingClientRect();
  const fits = box.left >= outer.left - 0.5 && box.right <= outer.right + 0.5
    && box.top >= outer.top - 0.5 && box.bottom <= outer.bottom + 0.5;
  if (!fits) {
    return `outside its ${selector}: ${Math.round(box.left)},${Math.round(box.top)} `
      + `${Math.round(box.width)}x${Math.round(box.height)} vs ${Math.round(outer.left)},`
      + `${Math.round(outer.top)} ${Math.round(outer.width)}x${Math.round(outer.height)}`;
  }
  const style = getComputedStyle(el);
  if (style.position === 'absolute' || style.position === 'fixed') {
    return `positioned ${style.position}`;
  }
  if (style.color === style.backgroundColor) return 'text the colour of its background';
  return '';
}
"""


async def expect_badge(badge: Locator, text: str, container: str) -> None:
    """The badge says ``text`` and is seen inside the ``container`` around it."""
    await expect(badge).to_have_text(text)
    await badge.scroll_into_view_if_needed()
    await expect_seen(badge)
    problem = await badge.evaluate(_INSIDE_JS, container)
    assert not problem, f"{text}: {problem}"


def live_start(card: Locator, school: School) -> Locator:
    row = card.locator(f'[data-testid="lesson-row"][data-lesson-id="{school.live}"]')
    return row.get_by_test_id("lesson-start")


async def page_at(tabs: Tabs, lophoc: LophocServer, width: int) -> Page:
    tab = await tabs.open(
        f"teacher-{width}", timezone_id=ZONE, viewport={"width": width, "height": 780}
    )
    page = tab.page
    await page.goto(f"{lophoc.url}/login?next=%2Flessons")
    await tid(page, "login-username").fill(TEACHER[0])
    await tid(page, "login-password").fill(TEACHER[2])
    await tid(page, "login-submit").click()
    await expect(page).to_have_url(f"{lophoc.url}/lessons")
    return page


@pytest.mark.parametrize("width", WIDTHS)
async def test_every_state_badge_is_seen_in_its_place(
    tabs: Tabs, lophoc: LophocServer, school: School, artifacts: Path, width: int
) -> None:
    page = await page_at(tabs, lophoc, width)
    # No horizontal scrolling of the page itself at this width.
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= width

    # The lessons page: one lesson in each state.
    card = page.locator(f'[data-testid="class-card"][data-class-id="{school.class_id}"]')
    await expect(card.get_by_test_id("lesson-row")).to_have_count(4)
    states = {
        school.upcoming: "upcoming",
        school.live: "live",
        school.over: "over",
        school.held: "ended",
    }
    for lesson_id, state in states.items():
        row = card.locator(f'[data-testid="lesson-row"][data-lesson-id="{lesson_id}"]')
        await expect(row).to_have_attribute("data-state", state)
        await expect_badge(row.get_by_test_id("lesson-state"), LESSON_STATES[state], "li")
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(artifacts / f"records-lessons-{width}.png"), full_page=True)

    # Starting before the schedule is a visible choice, asked for, not a silent one.
    upcoming = card.locator(f'[data-testid="lesson-row"][data-lesson-id="{school.upcoming}"]')
    early = upcoming.get_by_test_id("lesson-start")
    await expect(early).to_have_text("Bắt đầu sớm")
    await expect(early).to_have_attribute("data-early", "true")
    await early.scroll_into_view_if_needed()
    await expect_seen(early)
    asked: list[str] = []

    async def decline(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", decline)
    await early.click()
    for _ in range(50):
        if asked:
            break
        await asyncio.sleep(0.1)
    assert "theo lịch bắt đầu lúc" in asked[0] and "Chuyên cần sẽ được tính" in asked[0], asked
    assert re.search(r"còn (23|24) giờ \d+ phút nữa", asked[0]), asked  # a day ahead
    assert page.url == f"{lophoc.url}/lessons"  # declined: still here
    await expect(live_start(card, school)).to_have_text("Bắt đầu dạy")

    # The new-lesson form says when its default slot starts, and offers "now".
    await card.get_by_test_id("class-new-lesson").click()
    when = tid(page, "lesson-form-when")
    # The next quarter hour: in a few minutes today (or, just before midnight, tomorrow).
    soon = r"^Buổi học bắt đầu (sau \d+ phút nữa, lúc \d\d:\d\d|lúc \d\d:\d\d, .+)\.$"
    await expect(when).to_have_text(re.compile(soon))
    await expect_seen(when)
    await tid(page, "lesson-form-now").click()
    await expect(when).to_have_text("Buổi học bắt đầu ngay bây giờ.")
    await expect(when).to_have_attribute("data-when", "now")
    await page.screenshot(path=str(artifacts / f"records-lesson-form-{width}.png"))
    await tid(page, "lesson-form-cancel").click()

    # The links dialog of the live lesson: active, revoked, withdrawn.
    live_row = card.locator(f'[data-testid="lesson-row"][data-lesson-id="{school.live}"]')
    await live_row.get_by_test_id("lesson-links").click()
    dialog = tid(page, "links-dialog")
    await expect(dialog).to_be_visible()
    expected = {"HS001": "active", "HS002": "revoked", "HS005": "withdrawn"}
    for code, state in expected.items():
        row = dialog.locator(f'[data-testid="link-row"][data-code="{code}"]')
        await expect(row).to_have_attribute("data-state", state)
        await expect_badge(row.get_by_test_id("link-status"), LINK_STATES[state], "li")
    await page.screenshot(path=str(artifacts / f"records-links-{width}.png"))
    await tid(page, "links-close").click()
    await expect(dialog).to_be_hidden()

    # The held lesson's links have expired with it.
    held_row = card.locator(f'[data-testid="lesson-row"][data-lesson-id="{school.held}"]')
    await held_row.get_by_test_id("lesson-links").click()
    await expect(dialog).to_be_visible()
    first = dialog.locator('[data-testid="link-row"][data-code="HS001"]')
    await expect(first).to_have_attribute("data-state", "expired")
    await expect_badge(first.get_by_test_id("link-status"), LINK_STATES["expired"], "li")
    await tid(page, "links-close").click()

    # The held lesson's frozen report: every status in its table cell.
    await page.goto(f"{lophoc.url}/lessons/{school.held}/report")
    await expect(tid(page, "report-view")).to_be_visible()
    await expect_badge(tid(page, "report-state"), "Đã chốt", ".report-title-row")
    # Taught from ten minutes before the schedule: counted as taught, and it says so.
    basis = tid(page, "report-window-basis")
    await expect(basis).to_have_attribute("data-basis", "taught")
    await expect(basis).to_contain_text("Tính theo giờ dạy thực tế")
    await expect_seen(basis)
    for code, (status, text) in STUDENT_STATES.items():
        row = page.locator(f'[data-testid="student-row"][data-code="{code}"]')
        await expect(row).to_have_attribute("data-status", status)
        await expect_badge(row.get_by_test_id("student-status"), text, "td")
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(artifacts / f"records-report-{width}.png"), full_page=True)

    # A live report's state, and the statuses in English.
    await page.goto(f"{lophoc.url}/lessons/{school.live}/report")
    await expect(tid(page, "report-view")).to_be_visible()
    await expect_badge(tid(page, "report-state"), "Chưa chốt", ".report-title-row")
    await expect(tid(page, "report-window-basis")).to_have_attribute("data-basis", "scheduled")
    await page.goto(f"{lophoc.url}/lessons/{school.held}/report")
    await tid(page, "lang-switch").select_option("en")
    english = {"HS001": "Present", "HS002": "Late", "HS003": "Left early", "HS004": "Absent"}
    for code, text in english.items():
        row = page.locator(f'[data-testid="student-row"][data-code="{code}"]')
        await expect_badge(row.get_by_test_id("student-status"), text, "td")
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(artifacts / f"records-report-en-{width}.png"), full_page=True)
