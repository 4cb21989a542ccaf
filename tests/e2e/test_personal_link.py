"""A student opens a personal join link: no name, no password, the roster's name; the token
leaves the address bar; a revoked link gets its message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import expect

from classroom.admin import admin_records
from classroom.passwords import PasswordHasher
from tests.classroom.support import FAST_ARGON2, ROSTER_CSV
from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.pages import TIMEOUT, api_login, handle, tid

ADMIN_PASSWORD = "mật khẩu quản trị 2026"
TEACHER_PASSWORD = "mật khẩu cô Hoà 2026"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


async def class_links(lophoc: LophocServer) -> dict[str, str]:
    """A class 7B with the test roster and a lesson now, made as a school would: accounts by
    the admin command, the rest through the HTTP API. Returns its links by student code."""
    url = f"sqlite+aiosqlite:///{(lophoc.data_dir / 'lophoc.sqlite3').resolve()}"
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user("admin", "Quản trị", ADMIN_PASSWORD, "admin")
        await records.accounts.create_user("cohoa", "Lê Thị Hoà", TEACHER_PASSWORD, "teacher")
    async with httpx.AsyncClient(base_url=lophoc.url) as http:
        admin = await api_login(http, "admin", ADMIN_PASSWORD)
        made = await http.post(
            "/api/classes", json={"name": "7B", "teachers": ["cohoa"]}, headers=admin
        )
        assert made.status_code == 201, made.text
        class_id = made.json()["class"]["id"]
        roster = await http.put(
            f"/api/classes/{class_id}/roster", content=ROSTER_CSV, headers=admin
        )
        assert roster.status_code == 200, roster.text
        teacher = await api_login(http, "cohoa", TEACHER_PASSWORD)
        start = datetime.now(UTC) - timedelta(minutes=1)
        created = await http.post(
            f"/api/classes/{class_id}/lessons",
            json={
                "title": "Lịch sử 7B",
                "scheduled_start": start.isoformat(),
                "scheduled_end": (start + timedelta(minutes=45)).isoformat(),
            },
            headers=teacher,
        )
        assert created.status_code == 201, created.text
        lesson_id = created.json()["lesson"]["id"]
        listed = await http.get(f"/api/lessons/{lesson_id}/links", headers=teacher)
        assert listed.status_code == 200, listed.text
        links = {link["student_code"]: link for link in listed.json()["links"]}
        revoked = await http.post(
            f"/api/lessons/{lesson_id}/links/{links['HS003']['id']}/revoke", headers=teacher
        )
        assert revoked.status_code == 200, revoked.text
    return {code: link["url"] for code, link in links.items()}


async def test_a_personal_link_joins_without_name_or_password(
    tabs: Tabs, lophoc: LophocServer
) -> None:
    links = await class_links(lophoc)
    assert "#k=" in links["HS001"]
    student = await tabs.open("student-link", locale="vi-VN")
    page = student.page
    await page.goto(links["HS001"])
    await expect(tid(page, "join-form")).to_be_visible()
    await expect(tid(page, "join-name")).to_be_hidden()
    await expect(tid(page, "join-password")).to_be_hidden()
    await expect(tid(page, "join-link-hint")).to_be_visible()
    assert "k=" not in page.url  # wiped from the address bar
    await tid(page, "join-submit").click()
    # The link was accepted; no teacher has started the lesson yet, and nobody is let in
    # while no teacher or moderator is present (docs/protocol.md, "Waiting room").
    await expect(tid(page, "waiting-view")).to_be_visible(timeout=TIMEOUT)
    await expect(tid(page, "waiting-lesson-title")).to_have_text("Lịch sử 7B")
    await expect(tid(page, "student-view")).to_be_hidden()
    await page.wait_for_function("() => window.lophoc.state === 'waiting'", timeout=TIMEOUT)
    debug = await handle(page)
    assert debug["role"] == "student"

    revoked = await tabs.open("student-revoked", locale="vi-VN")
    await revoked.page.goto(links["HS003"])
    await tid(revoked.page, "join-submit").click()
    error = tid(revoked.page, "join-error")
    await expect(error).to_be_visible(timeout=TIMEOUT)
    await expect(error).to_have_attribute("data-code", "link_revoked")
    await expect(tid(revoked.page, "student-view")).to_be_hidden()
