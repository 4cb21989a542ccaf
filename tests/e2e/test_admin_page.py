"""The administration page in a real browser, in Vietnamese, on a 1280 px laptop and on a
360 px phone: an administrator logs in and lands on it, creates a teacher (after the page
refuses a bad username, a short password and a username in use, each with its message),
resets her password (typed twice; her open session ends), disables and enables her account
(each after a confirmation that says what happens), creates a class with her, adds another
teacher to it and opens its student list. A teacher who opens the page is told it is not hers
and sent to /lessons. Every state badge and message is checked to be seen (on screen, covered
by nothing), and screenshots of each state are kept as artefacts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, expect

from classroom.admin import admin_records
from classroom.passwords import PasswordHasher
from tests.classroom.support import FAST_ARGON2, ROSTER_CSV
from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.pages import api_login, expect_seen, tid

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ADMIN = ("hieutruong", "Đỗ Văn Minh", "mật khẩu quản trị 2026")
TEACHER = ("cothu", "Nguyễn Thị Thu", "mật khẩu cô Thu 2026")


@dataclass(frozen=True)
class School:
    class_id: str
    """Class 7A, taught by cô Thu, three students."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def school(lophoc: LophocServer) -> School:
    url = f"sqlite+aiosqlite:///{(lophoc.data_dir / 'lophoc.sqlite3').resolve()}"
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user(*ADMIN, "admin")
        await records.accounts.create_user(*TEACHER, "teacher")
        seven_a = await records.accounts.create_class("7A", [TEACHER[0]])
        await records.rosters.import_csv(seven_a.id, ROSTER_CSV)
    return School(seven_a.id)


async def seen(locator: Locator) -> None:
    await locator.scroll_into_view_if_needed()
    await expect_seen(locator)


async def no_sideways_scroll(page: Page) -> None:
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px"


async def top_screenshot(page: Page, path: Path) -> None:
    await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=str(path), full_page=True)


def row(page: Page, test_id: str, **data: str) -> Locator:
    selector = "".join(f'[data-{name}="{value}"]' for name, value in data.items())
    return page.locator(f'[data-testid="{test_id}"]{selector}')


async def login(page: Page, base: str, username: str, password: str) -> None:
    await tid(page, "login-username").fill(username)
    await tid(page, "login-password").fill(password)
    await tid(page, "login-submit").click()


async def expect_error(page: Page, test_id: str, code: str, text: str) -> None:
    box = tid(page, test_id)
    await expect(box).to_have_attribute("data-code", code)
    await expect(box).to_have_text(text)
    await expect_seen(box)


@pytest.mark.parametrize("width", [1280, 360])
async def test_an_administrator_manages_teachers_and_classes(
    tabs: Tabs, lophoc: LophocServer, school: School, artifacts: Path, width: int
) -> None:
    base = lophoc.url
    size = {"width": width, "height": 800 if width > 600 else 740}
    tab = await tabs.open("admin", viewport=size)
    page = tab.page
    shot = f"admin-{width}"
    # Each width makes its own teacher and class.
    new = (f"ha.phan{width}", f"Phan Thị Hà {width}", "mật khẩu cô Hà lúc đầu")
    class_name = "8C" if width > 600 else "9D"

    # Not logged in: the login page, which brings the administrator to /admin.
    await page.goto(f"{base}/admin")
    await expect(page).to_have_url(f"{base}/login?next=%2Fadmin")
    await login(page, base, ADMIN[0], ADMIN[2])
    await expect(page).to_have_url(f"{base}/admin")
    await expect(tid(page, "admin-view")).to_be_visible()
    await expect(page.locator(".admin-view h1")).to_have_text("Quản trị nhà trường")
    thu = row(page, "teacher-row", username=TEACHER[0])
    await expect(thu.get_by_test_id("teacher-name")).to_have_text(TEACHER[1])
    await expect(thu.get_by_test_id("teacher-status")).to_have_text("Đang hoạt động")
    await seen(thu.get_by_test_id("teacher-status"))
    seven_a = row(page, "class-row", name="7A")
    await expect(seven_a.get_by_test_id("class-students")).to_have_text("3")
    await expect(seven_a.get_by_test_id("class-teachers")).to_have_text(TEACHER[1])
    await no_sideways_scroll(page)
    await top_screenshot(page, artifacts / f"{shot}-start.png")

    # Creating a teacher: each mistake said on the form, in Vietnamese.
    await tid(page, "teacher-form-name").fill(new[1])
    await tid(page, "teacher-form-username").fill("Cô Hà")
    await tid(page, "teacher-form-password").fill(new[2])
    await tid(page, "teacher-form-submit").click()
    await expect_error(
        page,
        "teacher-form-error",
        "invalid_username",
        "Tên đăng nhập dài 3–32 ký tự: chữ thường không dấu, chữ số, dấu chấm, gạch ngang, "
        "gạch dưới, bắt đầu bằng một chữ cái.",
    )
    await expect(tid(page, "teacher-form-username")).to_have_attribute("aria-invalid", "true")
    await tid(page, "teacher-form-username").fill(new[0])
    await tid(page, "teacher-form-password").fill("1234567")
    await tid(page, "teacher-form-submit").click()
    await expect_error(
        page, "teacher-form-error", "weak_password", "Mật khẩu phải dài từ 8 đến 256 ký tự."
    )
    # A username in use is the server's refusal.
    await tid(page, "teacher-form-username").fill(TEACHER[0].upper())
    await tid(page, "teacher-form-password").fill(new[2])
    await tid(page, "teacher-form-submit").click()
    await expect_error(
        page, "teacher-form-error", "username_taken", "Tên đăng nhập này đã có người dùng."
    )
    await page.screenshot(path=str(artifacts / f"{shot}-teacher-error.png"))
    await tid(page, "teacher-form-username").fill(new[0])
    await tid(page, "teacher-form-show-password").check()
    await expect(tid(page, "teacher-form-password")).to_have_attribute("type", "text")
    await tid(page, "teacher-form-submit").click()
    notice = tid(page, "teachers-notice")
    await expect(notice).to_have_text(
        f"Đã tạo tài khoản cho {new[1]}, tên đăng nhập “{new[0]}”. Hãy báo tên đăng nhập và "
        "mật khẩu cho giáo viên: giáo viên đăng nhập tại trang Đăng nhập."
    )
    await expect_seen(notice)  # the page brings it on screen
    await expect(tid(page, "teacher-form-error")).to_be_hidden()
    await expect(tid(page, "teacher-form-name")).to_have_value("")
    ha = row(page, "teacher-row", username=new[0])
    await expect(ha.get_by_test_id("teacher-status")).to_have_text("Đang hoạt động")
    await seen(ha.get_by_test_id("teacher-status"))
    await no_sideways_scroll(page)
    await page.screenshot(path=str(artifacts / f"{shot}-teacher-created.png"))

    async with httpx.AsyncClient(base_url=base) as http:
        # She logs in somewhere; the reset will end that session.
        ha_session = await api_login(http, new[0], new[2])
        assert (await http.get("/api/me", headers=ha_session)).status_code == 200

        # Resetting her password: the dialog says her sessions end; typed twice.
        await ha.get_by_test_id("teacher-reset").click()
        dialog = tid(page, "password-dialog")
        await expect(dialog).to_be_visible()
        await expect(tid(page, "password-for")).to_have_text(
            f"Cho {new[1]} (tên đăng nhập “{new[0]}”)."
        )
        sessions = tid(page, "password-sessions")
        await expect(sessions).to_have_text(
            "Mọi phiên đăng nhập đang mở của giáo viên này sẽ kết thúc ngay, trên mọi máy: "
            "giáo viên phải đăng nhập lại bằng mật khẩu mới."
        )
        await seen(sessions)
        await tid(page, "password-new").fill("mật khẩu mới của Hà")
        await tid(page, "password-again").fill("mật khẩu mới của Ha")
        await tid(page, "password-submit").click()
        await expect_error(
            page,
            "password-error",
            "password_mismatch",
            "Hai lần nhập mật khẩu mới không giống nhau.",
        )
        await page.screenshot(path=str(artifacts / f"{shot}-reset-dialog.png"))
        await tid(page, "password-again").fill("mật khẩu mới của Hà")
        await tid(page, "password-submit").click()
        await expect(dialog).to_be_hidden()
        await expect(notice).to_have_text(
            f"Đã đặt mật khẩu mới cho {new[1]}. Các phiên đăng nhập cũ đã kết thúc; hãy báo "
            "mật khẩu mới cho giáo viên."
        )
        await expect_seen(notice)
        assert (await http.get("/api/me", headers=ha_session)).status_code == 401
        ha_session = await api_login(http, new[0], "mật khẩu mới của Hà")

        # Disabling: the confirmation says what happens; cancelling changes nothing.
        await ha.get_by_test_id("teacher-disable").click()
        account = tid(page, "account-dialog")
        await expect(tid(page, "account-heading")).to_have_text(f"Khoá tài khoản của {new[1]}?")
        await expect(tid(page, "account-consequence")).to_have_text(
            [
                "Giáo viên sẽ không đăng nhập được nữa.",
                "Các phiên đăng nhập đang mở kết thúc ngay, trên mọi máy.",
                "Lớp, buổi học, danh sách học sinh và báo cáo chuyên cần vẫn được giữ nguyên.",
                "Bạn có thể mở khoá lại bất cứ lúc nào.",
            ]
        )
        await seen(tid(page, "account-confirm"))
        await page.screenshot(path=str(artifacts / f"{shot}-disable-dialog.png"))
        await tid(page, "account-cancel").click()
        await expect(account).to_be_hidden()
        await expect(ha).to_have_attribute("data-state", "active")
        await ha.get_by_test_id("teacher-disable").click()
        await tid(page, "account-confirm").click()
        await expect(account).to_be_hidden()
        await expect(ha).to_have_attribute("data-state", "disabled")
        badge = ha.get_by_test_id("teacher-status")
        await expect(badge).to_have_text("Đã khoá")
        await expect(notice).to_have_text(
            f"Đã khoá tài khoản của {new[1]}: không đăng nhập được nữa, các phiên đang mở "
            "đã kết thúc."
        )
        await expect_seen(notice)
        await seen(badge)
        await page.screenshot(path=str(artifacts / f"{shot}-disabled.png"))
        assert (await http.get("/api/me", headers=ha_session)).status_code == 401
        refused = await http.post(
            "/api/login", json={"username": new[0], "password": "mật khẩu mới của Hà"}
        )
        assert refused.status_code == 401

        # A disabled teacher is not offered for a new class.
        boxes = page.locator('[data-testid="class-form-teacher"]')
        await expect(boxes).to_have_count(1 if width > 600 else 2)  # cô Thu (and the 1280 one)
        await expect(
            page.locator(f'[data-testid="class-form-teacher"][value="{new[0]}"]')
        ).to_have_count(0)

        # Enabling again, after its own confirmation.
        await ha.get_by_test_id("teacher-enable").click()
        await expect(tid(page, "account-heading")).to_have_text(f"Mở khoá tài khoản của {new[1]}?")
        await expect(tid(page, "account-consequence").first).to_have_text(
            "Giáo viên đăng nhập lại được bằng mật khẩu của mình (nếu quên, hãy đặt lại mật khẩu)."
        )
        await tid(page, "account-confirm").click()
        await expect(ha).to_have_attribute("data-state", "active")
        await expect(badge).to_have_text("Đang hoạt động")
        await seen(badge)
        relogged = await http.post(
            "/api/login", json={"username": new[0], "password": "mật khẩu mới của Hà"}
        )
        assert relogged.status_code == 200

    # Classes: a name in use is refused; a new class with her as its teacher.
    await tid(page, "class-form-name").fill("7A")
    await tid(page, "class-form-submit").click()
    await expect_error(page, "class-form-error", "class_exists", "Đã có một lớp mang tên này.")
    await tid(page, "class-form-name").fill(class_name)
    await page.locator(f'[data-testid="class-form-teacher"][value="{new[0]}"]').check()
    await tid(page, "class-form-submit").click()
    class_notice = tid(page, "classes-notice")
    await expect(class_notice).to_have_text(
        f"Đã tạo lớp {class_name}. Giáo viên của lớp có thể nhập danh sách học sinh."
    )
    await expect_seen(class_notice)
    made = row(page, "class-row", name=class_name)
    await expect(made.get_by_test_id("class-teachers")).to_have_text(new[1])
    await expect(made.get_by_test_id("class-students")).to_have_text("0")
    await seen(made)

    # Adding cô Thu to it: only teachers not yet on the class are offered.
    await made.get_by_test_id("class-add-teacher").click()
    await expect(tid(page, "class-teacher-heading")).to_have_text(
        f"Thêm giáo viên vào lớp {class_name}"
    )
    await expect(tid(page, "class-teacher-current")).to_have_text(f"Đang dạy lớp: {new[1]}.")
    options = tid(page, "class-teacher-select").locator("option")
    assert new[0] not in await options.evaluate_all("(all) => all.map((o) => o.value)")
    await tid(page, "class-teacher-select").select_option(TEACHER[0])
    await seen(tid(page, "class-teacher-submit"))
    await page.screenshot(path=str(artifacts / f"{shot}-add-teacher-dialog.png"))
    await tid(page, "class-teacher-submit").click()
    await expect(tid(page, "class-teacher-dialog")).to_be_hidden()
    await expect(class_notice).to_have_text(f"Đã thêm {TEACHER[1]} vào lớp {class_name}.")
    await expect_seen(class_notice)
    await expect(made.get_by_test_id("class-teacher")).to_have_count(2)
    await expect(made.get_by_test_id("class-teachers")).to_contain_text(TEACHER[1])
    await seen(made)
    await no_sideways_scroll(page)
    await top_screenshot(page, artifacts / f"{shot}-classes.png")

    # In English, the same page.
    await tid(page, "lang-switch").select_option("en")
    await expect(ha.get_by_test_id("teacher-status")).to_have_text("Active")
    await expect(page.locator(".admin-view h1")).to_have_text("School administration")
    await tid(page, "lang-switch").select_option("vi")

    # The class's student list, then /lessons (which links back here).
    class_id = await made.get_attribute("data-class-id")
    await made.get_by_test_id("class-roster-link").click()
    await expect(page).to_have_url(f"{base}/classes/{class_id}/roster")
    await expect(tid(page, "roster-title")).to_have_text(f"Danh sách học sinh lớp {class_name}")
    await page.goto(f"{base}/lessons")
    link = tid(page, "admin-link")
    await expect(link).to_have_text("Quản trị nhà trường")
    await seen(link)
    await link.click()
    await expect(page).to_have_url(f"{base}/admin")
    await expect(tid(page, "admin-view")).to_be_visible()


async def test_a_teacher_is_told_the_page_is_not_hers_and_sent_to_her_lessons(
    tabs: Tabs, lophoc: LophocServer, school: School, artifacts: Path
) -> None:
    tab = await tabs.open("teacher", viewport={"width": 360, "height": 740})
    page = tab.page
    await page.goto(f"{lophoc.url}/login")
    await login(page, lophoc.url, TEACHER[0], TEACHER[2])
    await expect(page).to_have_url(f"{lophoc.url}/lessons")  # a teacher lands on her lessons
    await expect(tid(page, "admin-link")).to_be_hidden()
    await page.goto(f"{lophoc.url}/admin")
    denied = tid(page, "admin-denied")
    await expect(denied).to_contain_text("Trang này chỉ dành cho quản trị viên")
    await expect(denied).to_contain_text("Đang chuyển đến trang Lớp và buổi học của bạn")
    await expect_seen(denied)
    await expect(tid(page, "admin-view")).to_be_hidden()
    await page.screenshot(path=str(artifacts / "admin-denied-360.png"))
    await expect(page).to_have_url(f"{lophoc.url}/lessons", timeout=10_000)
    await expect(tid(page, "class-name").first).to_have_text("7A")
