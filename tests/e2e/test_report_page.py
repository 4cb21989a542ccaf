"""The teacher's account pages in a real browser: log in, see the class's lessons, schedule
one, hand out personal links, start teaching from the lessons page, then read, close, verify
and download the lesson's attendance report (and the class's report over a date range).

The school is set up as a school would: accounts by the admin command (``admin_records``),
the class, roster and today's lesson through the HTTP API. One rostered student joins
through their personal link in a second browser context; the others stay away.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from openpyxl import load_workbook
from playwright.async_api import Dialog, Page, expect

from classroom.admin import admin_records
from classroom.exports import BOM
from classroom.passwords import PasswordHasher
from tests.classroom.support import FAST_ARGON2, ROSTER_CSV
from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.pages import TIMEOUT, accept_dialogs, api_login, expect_connected, tid

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ADMIN_PASSWORD = "mật khẩu quản trị 2026"
TEACHER = ("cothu", "Nguyễn Thị Thu", "mật khẩu cô Thu 2026")
OTHER_TEACHER = ("comai", "Trần Thị Mai", "mật khẩu cô Mai 2026")
LESSON_TITLE = "Toán 7A — Phân số"
ZONE = "Asia/Ho_Chi_Minh"


@dataclass(frozen=True)
class School:
    class_id: str
    lesson_id: str
    lesson_code: str
    teacher_headers: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def school(lophoc: LophocServer) -> School:
    """Class 7A taught by cô Thu, the test roster, and a lesson that started a minute ago."""
    url = f"sqlite+aiosqlite:///{(lophoc.data_dir / 'lophoc.sqlite3').resolve()}"
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user("admin", "Quản trị", ADMIN_PASSWORD, "admin")
        for username, name, password in (TEACHER, OTHER_TEACHER):
            await records.accounts.create_user(username, name, password, "teacher")
    async with httpx.AsyncClient(base_url=lophoc.url) as http:
        admin = await api_login(http, "admin", ADMIN_PASSWORD)
        made = await http.post(
            "/api/classes", json={"name": "7A", "teachers": [TEACHER[0]]}, headers=admin
        )
        assert made.status_code == 201, made.text
        class_id = made.json()["class"]["id"]
        roster = await http.put(
            f"/api/classes/{class_id}/roster", content=ROSTER_CSV, headers=admin
        )
        assert roster.status_code == 200, roster.text
        teacher = await api_login(http, TEACHER[0], TEACHER[2])
        start = datetime.now(UTC) - timedelta(minutes=1)
        created = await http.post(
            f"/api/classes/{class_id}/lessons",
            json={
                "title": LESSON_TITLE,
                "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(minutes=45)).isoformat(),
            },
            headers=teacher,
        )
        assert created.status_code == 201, created.text
        lesson = created.json()["lesson"]
    return School(class_id, lesson["id"], lesson["code"], teacher)


async def wait_until_present(lophoc: LophocServer, school: School, code: str) -> None:
    """Until the live report counts at least two seconds of ``code`` in the lesson (a join and
    an immediate end would round to nothing: absent). Waits on the server's own figure."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT / 1000
    async with httpx.AsyncClient(base_url=lophoc.url, headers=school.teacher_headers) as http:
        while True:
            response = await http.get(f"/api/lessons/{school.lesson_id}/report")
            assert response.status_code == 200, response.text
            line = next(
                s for s in response.json()["report"]["students"] if s["student_code"] == code
            )
            if line["still_present"] and line["seconds_present"] >= 2:
                return
            assert asyncio.get_running_loop().time() < deadline, line
            await asyncio.sleep(0.2)


async def log_in(page: Page, username: str, password: str) -> None:
    await tid(page, "login-username").fill(username)
    await tid(page, "login-password").fill(password)
    await tid(page, "login-submit").click()


async def test_teacher_logs_in_hands_out_links_teaches_and_freezes_the_report(
    tabs: Tabs, lophoc: LophocServer, school: School, artifacts: Path
) -> None:
    teacher = await tabs.open(
        "teacher",
        timezone_id=ZONE,
        permissions=["clipboard-read", "clipboard-write"],
    )
    await accept_dialogs(teacher)
    page = teacher.page

    # Not logged in: the lessons page sends the teacher to log in, then back.
    await page.goto(f"{lophoc.url}/lessons")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Flessons$"))
    await log_in(page, TEACHER[0], TEACHER[2])
    await expect(page).to_have_url(f"{lophoc.url}/lessons")
    await expect(tid(page, "user-name")).to_have_text(TEACHER[1])

    card = page.locator(f'[data-testid="class-card"][data-class-id="{school.class_id}"]')
    await expect(card.get_by_test_id("class-name")).to_have_text("7A")
    row = card.locator(f'[data-testid="lesson-row"][data-lesson-id="{school.lesson_id}"]')
    await expect(row.get_by_test_id("lesson-title")).to_have_text(LESSON_TITLE)
    await expect(row).to_have_attribute("data-state", "live")
    await expect(row.get_by_test_id("lesson-state")).to_have_text("Đang trong giờ học")

    # Schedule tomorrow's lesson through the form.
    await card.get_by_test_id("class-new-lesson").click()
    await expect(tid(page, "lesson-dialog")).to_be_visible()
    tomorrow = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=1)).date()
    await tid(page, "lesson-form-title").fill("Sinh học 7A")
    await tid(page, "lesson-form-date").fill(tomorrow.isoformat())
    await tid(page, "lesson-form-start").fill("07:30")
    await tid(page, "lesson-form-end").fill("08:15")
    await tid(page, "lesson-form-submit").click()
    await expect(tid(page, "lesson-dialog")).to_be_hidden()
    await expect(tid(page, "page-notice")).to_contain_text("Sinh học 7A")
    scheduled = card.locator('[data-testid="lesson-row"]', has_text="Sinh học 7A")
    await expect(scheduled).to_have_attribute("data-state", "upcoming")
    await expect(scheduled.get_by_test_id("lesson-when")).to_contain_text("07:30")
    await expect(scheduled.get_by_test_id("lesson-when")).to_contain_text("08:15")
    await page.screenshot(path=str(artifacts / "lessons-page.png"), full_page=True)

    # Every student's personal link; one is cancelled and issued anew.
    await row.get_by_test_id("lesson-links").click()
    dialog = tid(page, "links-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_test_id("link-row")).to_have_count(3)
    an = dialog.locator('[data-testid="link-row"][data-code="HS001"]')
    await expect(an.get_by_test_id("link-name")).to_have_text("Nguyễn Văn An")
    an_link = await an.get_by_test_id("link-url").input_value()
    assert an_link.startswith(f"{lophoc.url}/l/{school.lesson_code}#k="), an_link
    await an.get_by_test_id("link-copy").click()
    await expect(an.get_by_test_id("link-copy")).to_have_attribute("data-copied", "true")
    assert await page.evaluate("() => navigator.clipboard.readText()") == an_link
    duc = dialog.locator('[data-testid="link-row"][data-code="HS003"]')
    old_link = await duc.get_by_test_id("link-url").input_value()
    await duc.get_by_test_id("link-revoke").click()
    await expect(duc).to_have_attribute("data-state", "revoked")
    await expect(duc.get_by_test_id("link-url")).to_have_count(0)
    await duc.get_by_test_id("link-reissue").click()
    await expect(duc).to_have_attribute("data-state", "active")
    new_link = await duc.get_by_test_id("link-url").input_value()
    assert "#k=" in new_link and new_link != old_link
    await page.screenshot(path=str(artifacts / "lesson-links-dialog.png"))
    await tid(page, "links-close").click()
    await expect(dialog).to_be_hidden()

    # "Start teaching" hands the lesson to the /teach console.
    await row.get_by_test_id("lesson-start").click()
    await expect(page).to_have_url(f"{lophoc.url}/teach")
    await expect(tid(page, "resume-card")).to_be_visible()
    await expect(tid(page, "resume-title")).to_have_text(LESSON_TITLE)
    await tid(page, "resume-lesson").click()
    await expect(tid(page, "teacher-view")).to_be_visible()
    await expect_connected(page)

    # Nguyễn Văn An joins with the personal link; the two others stay away.
    student = await tabs.open("student-an")
    await student.page.goto(an_link)
    await tid(student.page, "join-submit").click()
    await expect(tid(student.page, "student-view")).to_be_visible(timeout=TIMEOUT)
    await expect_connected(student.page)
    await expect(tid(page, "participant-list")).to_contain_text("Nguyễn Văn An")
    await wait_until_present(lophoc, school, "HS001")

    # The live report, from another tab: An is in the lesson; it cannot be closed yet.
    live = await teacher.context.new_page()
    await live.goto(f"{lophoc.url}/lessons/{school.lesson_id}/report")
    await expect(tid(live, "report-state")).to_have_attribute("data-state", "live")
    in_lesson = live.locator('[data-testid="student-row"][data-code="HS001"]')
    await expect(in_lesson).to_have_attribute("data-status", "present")
    await expect(in_lesson).to_contain_text("Đang trong lớp")

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    live.on("dialog", accept)
    await tid(live, "report-close").click()
    await expect(tid(live, "report-action-error")).to_have_attribute("data-code", "lesson_not_over")
    await live.close()

    await tid(page, "end-lesson").click()  # confirmed by accept_dialogs
    await expect(tid(page, "closed-view")).to_be_visible()

    # Back on the lessons page the lesson has ended; its report.
    await page.goto(f"{lophoc.url}/lessons")
    await expect(row).to_have_attribute("data-state", "ended")
    await expect(row.get_by_test_id("lesson-start")).to_be_disabled()
    await row.get_by_test_id("lesson-report").click()
    await expect(page).to_have_url(f"{lophoc.url}/lessons/{school.lesson_id}/report")
    await expect(tid(page, "report-view")).to_be_visible()
    await expect(tid(page, "report-title")).to_have_text(LESSON_TITLE)
    await expect(tid(page, "report-class")).to_have_text("7A")
    await expect(tid(page, "report-state")).to_have_attribute("data-state", "live")
    await expect(tid(page, "report-threshold")).to_contain_text("hơn 5 phút")

    present = page.locator('[data-testid="student-row"][data-code="HS001"]')
    await expect(present).to_have_attribute("data-status", "present")
    await expect(present.get_by_test_id("student-name")).to_have_text("Nguyễn Văn An")
    await expect(present.get_by_test_id("student-status")).to_have_text("Có mặt")
    absent = page.locator('[data-testid="student-row"][data-code="HS002"]')
    await expect(absent).to_have_attribute("data-status", "absent")
    await expect(absent.get_by_test_id("student-status")).to_have_text("Vắng")
    await expect(page.get_by_test_id("student-row")).to_have_count(3)
    await expect(tid(page, "summary-present")).to_contain_text("1")
    await expect(tid(page, "summary-absent")).to_contain_text("2")
    await expect(tid(page, "guests-empty")).to_be_visible()

    # Close and freeze, then verify.
    await tid(page, "report-close").click()  # confirmed by accept_dialogs
    await expect(tid(page, "report-state")).to_have_attribute("data-state", "frozen")
    await expect(tid(page, "report-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    await expect(tid(page, "report-closed-at")).not_to_be_empty()
    await expect(tid(page, "report-close")).to_be_hidden()
    content_hash = await tid(page, "report-hash").text_content()
    assert content_hash is not None
    await tid(page, "report-verify").click()
    await expect(tid(page, "verify-result")).to_have_attribute("data-ok", "true")
    await page.screenshot(path=str(artifacts / "report-page.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(present.get_by_test_id("student-status")).to_be_visible()
    await page.screenshot(path=str(artifacts / "report-page-phone.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 800})

    # The downloads, in the page's language: Excel's workbook first, then CSV for Excel in
    # Vietnamese (";" between values, BOM, the frozen report's hash).
    async with page.expect_download() as downloading:
        await tid(page, "report-xlsx").click()
    download = await downloading.value
    body = await asyncio.to_thread(Path(await download.path()).read_bytes)
    book = load_workbook(io.BytesIO(body))
    sheet = book["Điểm danh"]
    assert [sheet.cell(row=2, column=c).value for c in (2, 3, 4)] == [
        "HS001",
        "Nguyễn Văn An",
        "Có mặt",
    ]
    assert sheet.cell(row=3, column=4).value == "Vắng"
    assert isinstance(sheet.cell(row=2, column=5).value, datetime)
    about = {row[0].value: row[1].value for row in book["Thông tin"].iter_rows(min_row=2)}
    assert about["Mã kiểm tra (SHA-256)"] == content_hash
    day = datetime.now(ZoneInfo(ZONE)).date().isoformat()
    assert download.suggested_filename == f"Điểm danh 7A - {LESSON_TITLE} - {day}.xlsx"

    async with page.expect_download() as downloading:
        await tid(page, "report-csv").click()
    download = await downloading.value
    body = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert body.startswith(BOM)
    text = body[len(BOM) :].decode("utf-8")
    assert "Nguyễn Văn An" in text and "Trần Thị Bích Ngọc" in text
    assert re.search(r"^Học sinh;HS001;Nguyễn Văn An;Có mặt;", text, re.M), text
    assert re.search(r"^Học sinh;HS002;Trần Thị Bích Ngọc;Vắng;", text, re.M), text
    assert download.suggested_filename.endswith(".csv")

    # In English, the same downloads come in English.
    await tid(page, "lang-switch").select_option("en")
    async with page.expect_download() as downloading:
        await tid(page, "report-csv").click()
    download = await downloading.value
    body = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert re.search(r"^Student,HS001,Nguyễn Văn An,Present,", body.decode("utf-8-sig"), re.M)
    assert download.suggested_filename == f"Attendance 7A - {LESSON_TITLE} - {day}.csv"
    await tid(page, "lang-switch").select_option("vi")
    dialogs = " | ".join(teacher.dialogs)
    assert "Chốt báo cáo?" in dialogs and "Kết thúc buổi học" in dialogs, dialogs

    # The class over the last month: one lesson so far, attended by An only.
    await tid(page, "back-to-lessons").click()
    await card.get_by_test_id("class-report-link").click()
    await expect(page).to_have_url(f"{lophoc.url}/classes/{school.class_id}/report")
    await expect(tid(page, "class-report-title")).to_have_text("Báo cáo chuyên cần lớp 7A")
    class_row = page.locator('[data-testid="class-student-row"][data-code="HS001"]')
    await expect(class_row).to_have_attribute("data-attended", "1")
    await expect(
        page.locator('[data-testid="class-student-row"][data-code="HS002"]')
    ).to_have_attribute("data-attended", "0")
    await expect(tid(page, "class-report-lessons")).to_contain_text("1 buổi học")
    await expect(tid(page, "class-report-csv")).to_be_visible()
    async with page.expect_download() as downloading:
        await tid(page, "class-report-xlsx").click()
    download = await downloading.value
    body = await asyncio.to_thread(Path(await download.path()).read_bytes)
    students = load_workbook(io.BytesIO(body))["Học sinh"]
    assert [students.cell(row=2, column=c).value for c in (1, 4)] == ["HS001", 1]
    assert download.suggested_filename.startswith("Chuyên cần 7A - ")

    # Logging out ends the session: the lessons page asks for a login again.
    await tid(page, "logout").click()
    await expect(page).to_have_url(f"{lophoc.url}/login")
    await page.goto(f"{lophoc.url}/lessons")
    await expect(page).to_have_url(re.compile(r"/login\?next="))


async def test_login_page_says_wrong_password_and_how_long_to_wait(
    tabs: Tabs, lophoc: LophocServer, school: School
) -> None:
    tab = await tabs.open("login")
    page = tab.page
    await page.goto(f"{lophoc.url}/login")
    await expect(tid(page, "login-form")).to_be_visible()
    error = tid(page, "login-error")

    await tid(page, "login-submit").click()
    await expect(error).to_have_attribute("data-code", "login_missing")

    await log_in(page, OTHER_TEACHER[0], "sai mật khẩu rồi")
    await expect(error).to_have_attribute("data-code", "bad_login")
    await expect(error).to_have_text("Sai tên đăng nhập hoặc mật khẩu.")
    await expect(tid(page, "login-password")).to_have_value("")
    assert page.url == f"{lophoc.url}/login"

    # Four more failures, then even the right password waits (and the page says how long).
    for attempt in range(4):
        await log_in(page, OTHER_TEACHER[0], f"sai lần {attempt}")
        await expect(error).to_have_attribute("data-code", "bad_login")
        await expect(tid(page, "login-submit")).to_be_enabled()
    await log_in(page, OTHER_TEACHER[0], OTHER_TEACHER[2])
    await expect(error).to_have_attribute("data-code", "rate_limited")
    await expect(error).to_have_text(re.compile(r"thử lại sau \d+ giây\.$"))

    # In English too.
    await tid(page, "lang-switch").select_option("en")
    await expect(error).to_have_text(re.compile(r"\b\d+ seconds"))
