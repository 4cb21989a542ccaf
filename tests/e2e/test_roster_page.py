"""The student list page in a real browser: a teacher chooses the school's file, sees every
problem on the row it is on (at 1280 px and on a 360 px phone), then a good file's changes,
and confirms. Screenshots of each state are kept as artefacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import FilePayload, Page, expect

from classroom.admin import admin_records
from classroom.passwords import PasswordHasher
from tests.classroom.support import FAST_ARGON2, ROSTER_CSV
from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.pages import api_login, expect_seen, tid

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROSTER_FILES = Path(__file__).parents[1] / "classroom" / "rosters"
ADMIN_PASSWORD = "mật khẩu quản trị 2026"
TEACHER = ("cothu", "Nguyễn Thị Thu", "mật khẩu cô Thu 2026")


@dataclass(frozen=True)
class School:
    class_id: str
    teacher_headers: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def school(lophoc: LophocServer) -> School:
    """Class 7A taught by cô Thu, with the three students of the test roster."""
    url = f"sqlite+aiosqlite:///{(lophoc.data_dir / 'lophoc.sqlite3').resolve()}"
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user("admin", "Quản trị", ADMIN_PASSWORD, "admin")
        await records.accounts.create_user(TEACHER[0], TEACHER[1], TEACHER[2], "teacher")
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
    return School(class_id, teacher)


async def no_sideways_scroll(page: Page) -> None:
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"


async def top_screenshot(page: Page, path: Path) -> None:
    """The whole page from its top (scrolled down, the sticky top bar lands mid-picture)."""
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(path), full_page=True)


async def seen(page: Page, test_id: str, **filters: str) -> None:
    locator = tid(page, test_id)
    for name, value in filters.items():
        locator = page.locator(f'[data-testid="{test_id}"][data-{name}="{value}"]')
    await locator.scroll_into_view_if_needed()
    await expect_seen(locator)


async def test_a_teacher_checks_a_file_sees_its_problems_then_imports_a_good_one(
    tabs: Tabs, lophoc: LophocServer, school: School, artifacts: Path
) -> None:
    tab = await tabs.open("teacher")
    page = tab.page
    roster_url = f"{lophoc.url}/classes/{school.class_id}/roster"

    # From the lessons page, after logging in.
    await page.goto(f"{lophoc.url}/login?next=/lessons")
    await tid(page, "login-username").fill(TEACHER[0])
    await tid(page, "login-password").fill(TEACHER[2])
    await tid(page, "login-submit").click()
    await expect(page).to_have_url(f"{lophoc.url}/lessons")
    await tid(page, "class-roster-link").click()
    await expect(page).to_have_url(roster_url)
    await expect(tid(page, "roster-title")).to_have_text("Danh sách học sinh lớp 7A")
    await expect(tid(page, "roster-count")).to_have_text("Lớp hiện có 3 học sinh.")
    await expect(tid(page, "roster-preview")).to_be_hidden()

    # A file that cannot be read at all: said so, no table, nothing to confirm.
    old_excel: FilePayload = {
        "name": "lop7a.xls",
        "mimeType": "application/vnd.ms-excel",
        "buffer": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024,
    }
    await tid(page, "roster-file").set_input_files(old_excel)
    unreadable = page.locator('[data-testid="roster-error"][data-reason="xls_not_supported"]')
    await expect(unreadable).to_contain_text("Cả tệp")
    await expect(unreadable).to_contain_text("Excel 97-2003")
    await expect(tid(page, "roster-table")).to_be_hidden()
    await expect(tid(page, "roster-missing")).to_be_hidden()
    await expect(tid(page, "roster-confirm")).to_be_disabled()
    await seen(page, "roster-error")

    # Over the size limit: refused before it is sent.
    too_big: FilePayload = {
        "name": "big.csv",
        "mimeType": "text/csv",
        "buffer": b"x" * (1024 * 1024 + 1),
    }
    await tid(page, "roster-file").set_input_files(too_big)
    await expect(tid(page, "roster-page-error")).to_have_attribute("data-code", "too_big")
    await expect(tid(page, "roster-page-error")).to_contain_text("lớn hơn 1 MiB")
    await expect(tid(page, "roster-preview")).to_be_hidden()

    # A workbook with three problems: listed, and shown on their rows; nothing to confirm.
    await tid(page, "roster-file").set_input_files(ROSTER_FILES / "class-7b-errors.xlsx")
    await expect(tid(page, "roster-preview")).to_be_visible()
    await expect(tid(page, "roster-read-as")).to_contain_text("Tệp Excel · trang “7B”")
    await expect(tid(page, "roster-error")).to_have_count(3)
    await expect(tid(page, "roster-errors")).to_contain_text("Tệp có 3 lỗi")
    lost = page.locator('[data-testid="roster-error"][data-reason="letters_replaced"]')
    await expect(lost).to_contain_text("Trang “7B” · Dòng 3 · Cột “Họ” · Ô B3")
    await expect(lost.get_by_test_id("roster-error-value")).to_have_text("“Nguy?n Th? Bình”")
    await expect(lost).to_contain_text("đã bị thay bằng “?”")
    row = page.locator('[data-testid="roster-row"][data-line="3"]')
    await expect(row).to_have_attribute("data-status", "error")
    await expect(row.get_by_test_id("row-status")).to_have_text("Lỗi")
    await expect(row.get_by_test_id("row-error")).to_contain_text("Họ: Một số chữ")
    await expect(page.locator('[data-testid="roster-row"][data-status="error"]')).to_have_count(3)
    await expect(tid(page, "roster-confirm")).to_be_disabled()
    await expect(tid(page, "roster-confirm-text")).to_have_text(
        "Sửa hết lỗi trong tệp thì mới nhập được."
    )
    await seen(page, "roster-errors")
    for line in ("3", "4", "5"):
        await seen(page, "roster-row", line=line)
    await no_sideways_scroll(page)
    await top_screenshot(page, artifacts / "roster-errors-1280.png")

    # The same on a phone: each row a card, the problem rows wholly on screen.
    await page.set_viewport_size({"width": 360, "height": 740})
    await no_sideways_scroll(page)
    await seen(page, "roster-error-list")
    for line in ("3", "4", "5"):
        await seen(page, "roster-row", line=line)
    await page.locator('[data-testid="roster-row"][data-line="3"]').scroll_into_view_if_needed()
    await page.screenshot(path=str(artifacts / "roster-errors-360.png"))
    await top_screenshot(page, artifacts / "roster-errors-360-full.png")

    # In English the server's English explanation is shown.
    await tid(page, "lang-switch").select_option("en")
    await expect(lost).to_contain_text("Sheet “7B” · Line 3 · Column “Họ” · Cell B3")
    await expect(lost).to_contain_text("were replaced by “?”")
    await expect(row.get_by_test_id("row-status")).to_have_text("Problem")
    await tid(page, "lang-switch").select_option("vi")

    # A good file (Excel's ; CSV with a BOM): what would change, then the import.
    await page.set_viewport_size({"width": 1280, "height": 800})
    await tid(page, "roster-file").set_input_files(ROSTER_FILES / "excel-semicolon-utf8-bom.csv")
    await expect(tid(page, "roster-errors")).to_be_hidden()
    await expect(tid(page, "roster-read-as")).to_contain_text(
        "Tệp CSV · UTF-8 · phân cách bằng dấu chấm phẩy"
    )
    await expect(tid(page, "roster-row")).to_have_count(6)
    an = page.locator('[data-testid="roster-row"][data-code="HS001"]')
    await expect(an).to_have_attribute("data-status", "updated")
    await expect(an).to_contain_text("Đổi liên hệ, trước đây: +84 912 345 678")
    new = page.locator('[data-testid="roster-row"][data-status="added"]')
    await expect(new).to_have_count(3)
    await expect(tid(page, "summary-added")).to_contain_text("3")
    await expect(tid(page, "summary-kept")).to_contain_text("0")
    confirm = tid(page, "roster-confirm")
    await expect(confirm).to_be_enabled()
    await expect(tid(page, "roster-confirm-text")).to_have_text(
        "Sẽ thêm 3, cập nhật 1, giữ nguyên 2 và cho thôi học 0 học sinh."
    )
    await seen(page, "roster-confirm")
    await top_screenshot(page, artifacts / "roster-preview-1280.png")
    await page.set_viewport_size({"width": 360, "height": 740})
    await no_sideways_scroll(page)
    await seen(page, "roster-confirm")
    await seen(page, "roster-row", code="HS001")
    await top_screenshot(page, artifacts / "roster-preview-360-full.png")

    # Nothing was imported by checking; confirming imports, and the page says so.
    async with httpx.AsyncClient(base_url=lophoc.url, headers=school.teacher_headers) as http:
        before = (await http.get(f"/api/classes/{school.class_id}/roster")).json()["students"]
        assert len(before) == 3
        await confirm.click()
        await expect(tid(page, "roster-notice")).to_have_text(
            "Đã nhập danh sách: thêm 3, cập nhật 1, không đổi 2, cho thôi học 0."
        )
        await seen(page, "roster-notice")
        await expect(tid(page, "roster-count")).to_have_text("Lớp hiện có 6 học sinh.")
        await expect(tid(page, "roster-preview")).to_be_hidden()
        after = (await http.get(f"/api/classes/{school.class_id}/roster")).json()["students"]
    assert [s["student_code"] for s in after] == [f"HS00{n}" for n in range(1, 7)]
    assert after[0]["parent_contact"] == "0912 345 678"
    await top_screenshot(page, artifacts / "roster-imported-360.png")
