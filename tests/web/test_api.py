"""The records HTTP API through the real app (Starlette's TestClient, SQLite in a temp dir):
logins, roles, rosters, class lessons, personal links and reports."""

from __future__ import annotations

import asyncio
import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import update
from starlette.exceptions import StarletteDeprecationWarning

from classroom.admin import admin_records
from classroom.attendance import Attendee
from classroom.errors import ClassroomError
from classroom.passwords import PasswordHasher
from classroom.rosters import BOM, MAX_ROSTER_BYTES
from classroom.storage import open_database
from classroom.tables import user_sessions
from media.ice import IceSettings
from tests.classroom.support import FAST_ARGON2, ROSTER_CSV
from web import api
from web.app import create_app
from web.config import Settings

with warnings.catch_warnings():
    # Starlette prefers the httpx2 fork for its test client; the project pins httpx.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

ADMIN_PASSWORD = "mật khẩu quản trị 2025"
TEACHER_PASSWORD = "mật khẩu cô Lan 2025"
FOREIGN_ORIGIN = "https://evil.example"


@dataclass
class Api:
    client: TestClient
    tmp_path: Path

    def login(self, username: str, password: str) -> dict[str, Any]:
        response = self.client.post("/api/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def as_user(self, username: str, password: str = TEACHER_PASSWORD) -> dict[str, str]:
        """Bearer headers for a user (the client's cookie jar is left alone)."""
        token = self.login(username, password)["token"]
        self.client.cookies.clear()
        return {"Authorization": f"Bearer {token}"}

    def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a coroutine function on the app's event loop."""
        portal = self.client.portal
        assert portal is not None
        return portal.call(lambda: function(*args, **kwargs))

    @property
    def services(self) -> Any:
        return self.client.app.state.services  # type: ignore[attr-defined]


async def seed(url: str) -> None:
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user("admin", "Đỗ Văn Minh", ADMIN_PASSWORD, "admin")
        for username, name in (("lan", "Nguyễn Thị Lan"), ("hung", "Phạm Văn Hùng")):
            await records.accounts.create_user(username, name, TEACHER_PASSWORD, "teacher")


@pytest.fixture
def api_client(tmp_path: Path) -> Iterator[Api]:
    asyncio.run(seed(f"sqlite+aiosqlite:///{tmp_path}/lophoc.sqlite3"))
    settings = Settings(tls=False, data_dir=tmp_path, ice=IceSettings.loopback())
    with TestClient(create_app(settings)) as client:
        yield Api(client, tmp_path)


@pytest.fixture
def admin(api_client: Api) -> dict[str, str]:
    return api_client.as_user("admin", ADMIN_PASSWORD)


@pytest.fixture
def lan(api_client: Api) -> dict[str, str]:
    return api_client.as_user("lan")


@pytest.fixture
def hung(api_client: Api) -> dict[str, str]:
    return api_client.as_user("hung")


@pytest.fixture
def class_5a(api_client: Api, admin: dict[str, str]) -> str:
    response = api_client.client.post(
        "/api/classes", json={"name": "5A", "teachers": ["lan"]}, headers=admin
    )
    assert response.status_code == 201, response.text
    class_id: str = response.json()["class"]["id"]
    response = api_client.client.put(
        f"/api/classes/{class_id}/roster", content=BOM + ROSTER_CSV, headers=admin
    )
    assert response.status_code == 200, response.text
    return class_id


def schedule(start_in_minutes: float, length: float = 45) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(minutes=start_in_minutes)
    return {
        "scheduled_start": start.isoformat(),
        "scheduled_end": (start + timedelta(minutes=length)).isoformat(),
    }


def create_lesson(
    api_client: Api, headers: dict[str, str], class_id: str, start_in_minutes: float = 10
) -> dict[str, Any]:
    response = api_client.client.post(
        f"/api/classes/{class_id}/lessons",
        json={"title": "Toán 5A", **schedule(start_in_minutes)},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_the_json_body_limit_is_the_apps() -> None:
    assert api.MAX_JSON_BODY == 16 * 1024
    assert api.MAX_CSV_BODY == MAX_ROSTER_BYTES == 1024 * 1024


# --- logging in --------------------------------------------------------------------------------


def test_login_sets_a_strict_http_only_cookie_and_returns_the_token(api_client: Api) -> None:
    response = api_client.client.post(
        "/api/login", json={"username": "lan", "password": TEACHER_PASSWORD}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["user"]["username"] == "lan" and data["user"]["role"] == "teacher"
    assert "password" not in response.text and TEACHER_PASSWORD not in response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"lophoc_session={data['token']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP in this test
    assert response.headers["cache-control"] == "no-store"
    # The cookie alone is a session.
    me = api_client.client.get("/api/me")
    assert me.status_code == 200 and me.json()["user"]["full_name"] == "Nguyễn Thị Lan"


def test_over_https_the_cookie_is_secure(tmp_path: Path) -> None:
    asyncio.run(seed(f"sqlite+aiosqlite:///{tmp_path}/lophoc.sqlite3"))
    settings = Settings(tls=False, data_dir=tmp_path, ice=IceSettings.loopback())
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        response = client.post("/api/login", json={"username": "lan", "password": TEACHER_PASSWORD})
        assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_and_unknown_user_look_the_same(api_client: Api) -> None:
    wrong = api_client.client.post(
        "/api/login", json={"username": "lan", "password": "sai-mat-khau"}
    )
    unknown = api_client.client.post(
        "/api/login", json={"username": "ai-do", "password": TEACHER_PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"error": {"code": "bad_login", "message": "Wrong username or password."}}
    )


def test_login_is_rate_limited_with_retry_after(api_client: Api) -> None:
    for _ in range(5):
        response = api_client.client.post(
            "/api/login", json={"username": "lan", "password": "x" * 8}
        )
        assert response.status_code == 401
    limited = api_client.client.post(
        "/api/login", json={"username": "lan", "password": TEACHER_PASSWORD}
    )
    assert limited.status_code == 429
    assert error_code(limited) == "rate_limited"
    assert int(limited.headers["retry-after"]) == limited.json()["error"]["retry_after"] >= 1
    # Another teacher is not affected.
    assert (
        api_client.client.post(
            "/api/login", json={"username": "hung", "password": TEACHER_PASSWORD}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "malformed"),
        (b"[1, 2]", 400, "malformed"),
        (b'{"username": "lan", "password": "' + b"x" * 20000 + b'"}', 413, "too_big"),
    ],
)
def test_bad_login_bodies(api_client: Api, body: bytes, status: int, code: str) -> None:
    response = api_client.client.post("/api/login", content=body)
    assert response.status_code == status
    assert error_code(response) == code


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "malformed"),
        (b'{"title": "Ad hoc"}', 400, "malformed"),
        (b'{"title": "Ad hoc", "password": "' + b"x" * 20000 + b'"}', 413, "too_big"),
    ],
)
def test_bad_ad_hoc_lesson_bodies(api_client: Api, body: bytes, status: int, code: str) -> None:
    """Creating a lesson without an account reads its body as every other endpoint does."""
    response = api_client.client.post("/api/lessons", content=body)
    assert (response.status_code, error_code(response)) == (status, code)
    assert response.headers["cache-control"] == "no-store"


def test_logout_ends_the_session(api_client: Api) -> None:
    token = api_client.login("lan", TEACHER_PASSWORD)["token"]
    assert api_client.client.get("/api/me").status_code == 200
    response = api_client.client.post("/api/logout")
    assert response.status_code == 204
    assert (
        'lophoc_session=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )
    bearer = {"Authorization": f"Bearer {token}"}
    assert api_client.client.get("/api/me", headers=bearer).status_code == 401
    assert api_client.client.post("/api/logout").status_code == 204  # idempotent


def test_no_or_bad_or_expired_sessions_are_401(api_client: Api) -> None:
    assert error_code(api_client.client.get("/api/me")) == "not_authenticated"
    bad = {"Authorization": "Bearer nope"}
    assert api_client.client.get("/api/classes", headers=bad).status_code == 401
    headers = api_client.as_user("lan")

    async def expire() -> None:
        async with await open_database(
            f"sqlite+aiosqlite:///{api_client.tmp_path}/lophoc.sqlite3"
        ) as db:
            async with db.engine.begin() as connection:
                await connection.execute(
                    update(user_sessions).values(
                        expires_at=datetime.now(UTC) - timedelta(seconds=1)
                    )
                )

    assert api_client.client.get("/api/me", headers=headers).status_code == 200
    api_client.call(expire)
    response = api_client.client.get("/api/me", headers=headers)
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_cookie_sessions_refuse_changes_from_other_sites(api_client: Api) -> None:
    api_client.login("admin", ADMIN_PASSWORD)
    foreign = api_client.client.post(
        "/api/classes", json={"name": "5A"}, headers={"Origin": FOREIGN_ORIGIN}
    )
    assert foreign.status_code == 403 and error_code(foreign) == "forbidden"
    same = api_client.client.post(
        "/api/classes", json={"name": "5A"}, headers={"Origin": "http://testserver"}
    )
    assert same.status_code == 201
    # Reading is fine, and a bearer token is not sent by browsers on their own.
    assert (
        api_client.client.get("/api/classes", headers={"Origin": FOREIGN_ORIGIN}).status_code == 200
    )


# --- administration ------------------------------------------------------------------------------


def test_admins_manage_teachers_and_teachers_cannot(
    api_client: Api, admin: dict[str, str], lan: dict[str, str]
) -> None:
    client = api_client.client
    created = client.post(
        "/api/teachers",
        json={"username": "mai", "full_name": "Trần Thị Mai", "password": TEACHER_PASSWORD},
        headers=admin,
    )
    assert created.status_code == 201
    assert created.json()["teacher"]["full_name"] == "Trần Thị Mai"
    again = client.post(
        "/api/teachers",
        json={"username": "MAI", "full_name": "X", "password": TEACHER_PASSWORD},
        headers=admin,
    )
    assert (again.status_code, error_code(again)) == (409, "username_taken")
    weak = client.post(
        "/api/teachers",
        json={"username": "tuan", "full_name": "Tuấn", "password": "123"},
        headers=admin,
    )
    assert (weak.status_code, error_code(weak)) == (400, "weak_password")
    missing = client.post("/api/teachers", json={"username": "tuan"}, headers=admin)
    assert (missing.status_code, error_code(missing)) == (400, "malformed")
    listed = client.get("/api/teachers", headers=admin).json()["teachers"]
    assert [t["username"] for t in listed] == ["hung", "lan", "mai"]
    assert client.get("/api/teachers", headers=lan).status_code == 403
    denied = client.post(
        "/api/teachers",
        json={"username": "x1x", "full_name": "X", "password": TEACHER_PASSWORD},
        headers=lan,
    )
    assert (denied.status_code, error_code(denied)) == (403, "forbidden")


def test_admins_reset_disable_and_enable_accounts(
    api_client: Api, admin: dict[str, str], lan: dict[str, str]
) -> None:
    client = api_client.client
    new_password = "mật khẩu mới của Lan"
    refused = client.post("/api/users/lan/disable", headers=lan)
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    reset = client.post("/api/users/lan/password", json={"password": new_password}, headers=admin)
    assert reset.status_code == 200 and reset.json()["user"]["username"] == "lan"
    # Lan's session ended with the reset; her new password opens a new one.
    assert client.get("/api/me", headers=lan).status_code == 401
    relogged = client.post("/api/login", json={"username": "lan", "password": new_password})
    assert relogged.status_code == 200
    lan = {"Authorization": f"Bearer {relogged.json()['token']}"}
    weak = client.post("/api/users/lan/password", json={"password": "123"}, headers=admin)
    assert (weak.status_code, error_code(weak)) == (400, "weak_password")

    disabled = client.post("/api/users/lan/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["user"]["disabled_at"] is not None
    assert client.get("/api/me", headers=lan).status_code == 401
    again = client.post("/api/login", json={"username": "lan", "password": new_password})
    assert (again.status_code, error_code(again)) == (401, "bad_login")
    listed = client.get("/api/teachers", headers=admin).json()["teachers"]
    assert [t["disabled_at"] is not None for t in listed if t["username"] == "lan"] == [True]
    enabled = client.post("/api/users/lan/enable", headers=admin)
    assert enabled.status_code == 200 and enabled.json()["user"]["disabled_at"] is None
    assert (
        client.post("/api/login", json={"username": "lan", "password": new_password}).status_code
        == 200
    )

    myself = client.post("/api/users/admin/disable", headers=admin)
    assert (myself.status_code, error_code(myself)) == (409, "cannot_disable_self")
    ghost = client.post("/api/users/ghost/enable", headers=admin)
    assert (ghost.status_code, error_code(ghost)) == (404, "not_found")


def test_classes_and_who_sees_them(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], hung: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    five_b = client.post("/api/classes", json={"name": "5B", "teachers": ["hung"]}, headers=admin)
    assert five_b.status_code == 201
    assert [t["username"] for t in five_b.json()["class"]["teachers"]] == ["hung"]
    assert client.post("/api/classes", json={"name": "5A"}, headers=admin).status_code == 409
    assert (
        client.post(
            "/api/classes", json={"name": "5C", "teachers": ["nobody"]}, headers=admin
        ).status_code
        == 404
    )
    assert client.post("/api/classes", json={"name": "5D"}, headers=lan).status_code == 403

    def names(headers: dict[str, str]) -> list[str]:
        return [c["name"] for c in client.get("/api/classes", headers=headers).json()["classes"]]

    assert names(admin) == ["5A", "5B"]
    assert names(lan) == ["5A"]
    assert names(hung) == ["5B"]
    added = client.post(
        f"/api/classes/{class_5a}/teachers", json={"username": "hung"}, headers=admin
    )
    assert added.status_code == 200
    assert names(hung) == ["5A", "5B"]


def test_classes_say_their_teachers_and_how_many_students_they_have(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], class_5a: str
) -> None:
    """What the administration page lists: the count follows imports and withdrawals, a
    disabled teacher stays on the class with her ``disabled_at``."""
    client = api_client.client
    empty = client.post("/api/classes", json={"name": "5B", "teachers": ["hung"]}, headers=admin)
    assert empty.status_code == 201 and empty.json()["class"]["student_count"] == 0

    def shown(headers: dict[str, str]) -> dict[str, tuple[int, list[tuple[str, bool]]]]:
        classes = client.get("/api/classes", headers=headers).json()["classes"]
        return {
            c["name"]: (
                c["student_count"],
                sorted((t["username"], t["disabled_at"] is not None) for t in c["teachers"]),
            )
            for c in classes
        }

    assert shown(admin) == {"5A": (3, [("lan", False)]), "5B": (0, [("hung", False)])}
    assert shown(lan) == {"5A": (3, [("lan", False)])}
    # Withdrawing one student (a file without HS003, with withdraw_missing) counts two.
    two = ROSTER_CSV.split(b"HS003")[0]
    withdrawn = client.put(
        f"/api/classes/{class_5a}/roster?withdraw_missing=true", content=two, headers=admin
    )
    assert withdrawn.json()["imported"]["withdrawn"] == 1
    added = client.post(
        f"/api/classes/{class_5a}/teachers", json={"username": "hung"}, headers=admin
    )
    assert added.status_code == 200 and added.json()["class"]["student_count"] == 2
    assert client.post("/api/users/hung/disable", headers=admin).status_code == 200
    assert shown(admin) == {
        "5A": (2, [("hung", True), ("lan", False)]),
        "5B": (0, [("hung", True)]),
    }


def test_roster_import_and_export_round_trip_over_http(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], hung: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    students = client.get(f"/api/classes/{class_5a}/roster", headers=lan).json()["students"]
    assert [(s["student_code"], s["full_name"]) for s in students] == [
        ("HS001", "Nguyễn Văn An"),
        ("HS002", "Trần Thị Bích Ngọc"),
        ("HS003", "Lê Hoàng Đức"),
    ]
    exported = client.get(f"/api/classes/{class_5a}/roster.csv", headers=lan)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.content.startswith(BOM)
    reimport = client.put(
        f"/api/classes/{class_5a}/roster", content=exported.content, headers=admin
    )
    assert reimport.json()["imported"] == {"added": 0, "updated": 0, "unchanged": 3, "withdrawn": 0}
    # Someone else's class does not exist for them; the class's own teacher may import.
    assert client.get(f"/api/classes/{class_5a}/roster", headers=hung).status_code == 404
    assert (
        client.put(f"/api/classes/{class_5a}/roster", content=ROSTER_CSV, headers=hung).status_code
        == 404
    )
    by_teacher = client.put(f"/api/classes/{class_5a}/roster", content=ROSTER_CSV, headers=lan)
    assert by_teacher.status_code == 200, by_teacher.text


def test_a_bad_roster_upload_reports_every_line_and_imports_nothing(
    api_client: Api, admin: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    bad = ROSTER_CSV.replace(b"HS002,Tr", b"HS001,Tr") + b"HS004,,\r\nHS005,A,B,C\r\n"
    response = client.put(f"/api/classes/{class_5a}/roster", content=bad, headers=admin)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "bad_roster",
        "The roster file has errors; nothing was imported.",
    )
    assert [(e["line"], e["reason"], e.get("column"), e.get("value")) for e in error["errors"]] == [
        (3, "duplicate_code", "student_code", "HS001"),
        (5, "bad_name", "full_name", ""),
        (6, "wrong_column_count", None, None),
    ]
    assert error["errors"][0]["messages"] == {
        "en": "This student code is already on line 2.",
        "vi": "Mã học sinh này đã có ở dòng 2.",
    }
    assert len(client.get(f"/api/classes/{class_5a}/roster", headers=admin).json()["students"]) == 3
    too_big = client.put(
        f"/api/classes/{class_5a}/roster", content=b"x" * (MAX_ROSTER_BYTES + 1), headers=admin
    )
    assert (too_big.status_code, error_code(too_big)) == (413, "too_big")


ROSTER_FILES = Path(__file__).parents[1] / "classroom" / "rosters"


def test_the_dry_run_previews_a_workbook_and_imports_nothing(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    workbook = (ROSTER_FILES / "class-7a.xlsx").read_bytes()
    url = f"/api/classes/{class_5a}/roster"
    response = client.put(
        url, params={"dry_run": "true", "withdraw_missing": "true"}, content=workbook, headers=lan
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    preview = response.json()["preview"]
    assert preview["ok"] is True and preview["withdraw_missing"] is True
    assert preview["file"]["format"] == "xlsx" and preview["file"]["sheet"] == "Lớp 7A"
    assert [(r["line"], r["student_code"], r["status"]) for r in preview["rows"]] == [
        (5, "1001", "added"),
        (6, "1002", "added"),
        (7, "1003", "added"),
        (8, "1004", "added"),
    ]
    assert [m["student_code"] for m in preview["missing"]] == ["HS001", "HS002", "HS003"]
    assert preview["summary"] == {
        "added": 4,
        "updated": 0,
        "unchanged": 0,
        "withdrawn": 3,
        "kept": 0,
        "rows": 4,
        "errors": 0,
    }
    codes = [s["student_code"] for s in client.get(url, headers=lan).json()["students"]]
    assert codes == ["HS001", "HS002", "HS003"]
    # Then the import itself, with the same answer.
    done = client.put(url, params={"withdraw_missing": "1"}, content=workbook, headers=lan)
    assert done.json()["imported"] == {"added": 4, "updated": 0, "unchanged": 0, "withdrawn": 3}


def test_the_dry_run_of_a_bad_file_answers_its_rows_and_problems(
    api_client: Api, admin: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    url = f"/api/classes/{class_5a}/roster"
    data = (ROSTER_FILES / "windows-1252-lost-letters.csv").read_bytes()
    preview = client.put(url, params={"dry_run": "1"}, content=data, headers=admin).json()[
        "preview"
    ]
    assert preview["ok"] is False and preview["file"]["encoding"] == "Windows-1252"
    assert [r["status"] for r in preview["rows"]] == ["error"] * 3
    assert {e["reason"] for e in preview["errors"]} == {"letters_replaced"}
    assert preview["summary"]["kept"] == 3
    refused = client.put(url, content=data, headers=admin)
    assert refused.status_code == 400 and error_code(refused) == "bad_roster"
    # Bytes that are no UTF-8 in a value come back as U+FFFD, and the answer is still JSON.
    mixed = ROSTER_CSV + "HS004,Nguyễn Văn Bình,\r\n".encode() + b"HS005,Tr\xe2n,\r\n"
    answer = client.put(url, params={"dry_run": "1"}, content=mixed, headers=admin)
    assert answer.status_code == 200
    assert [(e["line"], e["reason"]) for e in answer.json()["preview"]["errors"]] == [
        (6, "not_utf8")
    ]
    too_big = client.put(
        url, params={"dry_run": "1"}, content=b"x" * (MAX_ROSTER_BYTES + 1), headers=admin
    )
    assert (too_big.status_code, error_code(too_big)) == (413, "too_big")


# --- class lessons and links --------------------------------------------------------------------


def test_a_teacher_schedules_a_lesson_and_gets_every_students_link(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], hung: dict[str, str], class_5a: str
) -> None:
    created = create_lesson(api_client, lan, class_5a)
    lesson = created["lesson"]
    assert lesson["class_id"] == class_5a and lesson["title"] == "Toán 5A"
    assert created["teacher_token"]
    links = created["links"]
    assert [link["student_code"] for link in links] == ["HS001", "HS002", "HS003"]
    for link in links:
        assert link["url"].startswith(f"http://testserver/l/{lesson['code']}#k=")
    token = links[0]["url"].split("#k=", 1)[1]
    admission = api_client.call(
        api_client.services.lessons.admit_with_link, token, "10.0.0.1", code=lesson["code"]
    )
    assert (admission.name, admission.student_code, admission.guest) == (
        "Nguyễn Văn An",
        "HS001",
        False,
    )
    # Only the class's teachers schedule its lessons.
    assert (
        api_client.client.post(
            f"/api/classes/{class_5a}/lessons", json={"title": "x", **schedule(10)}, headers=admin
        ).status_code
        == 403
    )
    assert (
        api_client.client.post(
            f"/api/classes/{class_5a}/lessons", json={"title": "x", **schedule(10)}, headers=hung
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "times",
    [
        {"scheduled_start": "2025-09-08T07:30:00", "scheduled_end": "2025-09-08T08:15:00"},
        {
            "scheduled_start": "2025-09-08T08:30:00+07:00",
            "scheduled_end": "2025-09-08T08:15:00+07:00",
        },
        {"scheduled_start": "tomorrow", "scheduled_end": "2025-09-08T08:15:00+07:00"},
        {"scheduled_start": 5},
    ],
)
def test_bad_schedules_are_400(
    api_client: Api, lan: dict[str, str], class_5a: str, times: dict[str, object]
) -> None:
    response = api_client.client.post(
        f"/api/classes/{class_5a}/lessons", json={"title": "Toán", **times}, headers=lan
    )
    assert (response.status_code, error_code(response)) == (400, "invalid_schedule")


def test_lessons_are_listed_for_those_who_may_see_them(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], hung: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    lesson = create_lesson(api_client, lan, class_5a)["lesson"]
    ad_hoc = client.post("/api/lessons", json={"title": "Ad hoc", "password": "mat-khau-123"})
    assert ad_hoc.status_code == 201

    def ids(headers: dict[str, str], path: str = "/api/lessons") -> list[str]:
        return [item["id"] for item in client.get(path, headers=headers).json()["lessons"]]

    assert ids(lan) == [lesson["id"]]
    assert ids(admin) == [lesson["id"]]
    assert ids(hung) == []
    assert ids(lan, f"/api/classes/{class_5a}/lessons") == [lesson["id"]]
    today = datetime.now(UTC).date()
    assert (
        ids(lan, f"/api/lessons?from={today + timedelta(days=2)}&to={today + timedelta(days=3)}")
        == []
    )
    assert (
        client.get(f"/api/lessons/{lesson['id']}", headers=lan).json()["lesson"]["code"]
        == lesson["code"]
    )
    assert client.get(f"/api/lessons/{lesson['id']}", headers=hung).status_code == 404
    assert (
        client.get(f"/api/lessons/{ad_hoc.json()['lesson']['id']}", headers=admin).status_code
        == 404
    )
    assert client.get("/api/lessons?from=yesterday", headers=lan).status_code == 400


def test_revoking_and_reissuing_a_link(
    api_client: Api, lan: dict[str, str], hung: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    created = create_lesson(api_client, lan, class_5a)
    lesson_id, code = created["lesson"]["id"], created["lesson"]["code"]
    leaked = created["links"][1]
    leaked_token = leaked["url"].split("#k=", 1)[1]
    other_token = created["links"][0]["url"].split("#k=", 1)[1]
    assert (
        client.post(
            f"/api/lessons/{lesson_id}/links/{leaked['id']}/revoke", headers=hung
        ).status_code
        == 404
    )
    revoked = client.post(f"/api/lessons/{lesson_id}/links/{leaked['id']}/revoke", headers=lan)
    assert revoked.status_code == 200
    assert revoked.json()["link"]["revoked_at"] and revoked.json()["link"]["url"] is None
    admit = api_client.services.lessons.admit_with_link
    with pytest.raises(ClassroomError) as refused:
        api_client.call(admit, leaked_token, "10.0.0.1", code=code)
    assert refused.value.code == "link_revoked"
    assert api_client.call(admit, other_token, "10.0.0.1", code=code).student_code == "HS001"
    fresh = client.post(f"/api/lessons/{lesson_id}/links/{leaked['id']}/reissue", headers=lan)
    assert fresh.status_code == 201
    fresh_token = fresh.json()["link"]["url"].split("#k=", 1)[1]
    assert api_client.call(admit, fresh_token, "10.0.0.1", code=code).student_code == "HS002"
    listed = client.get(f"/api/lessons/{lesson_id}/links", headers=lan).json()["links"]
    assert [(link["student_code"], link["url"] is None) for link in listed] == [
        ("HS001", False),
        ("HS002", True),
        ("HS002", False),
        ("HS003", False),
    ]
    unknown = client.post(f"/api/lessons/{lesson_id}/links/{'A' * 22}/revoke", headers=lan)
    assert unknown.status_code == 404


def test_a_new_teacher_token_for_another_device(
    api_client: Api, lan: dict[str, str], hung: dict[str, str], class_5a: str
) -> None:
    created = create_lesson(api_client, lan, class_5a)
    lesson_id = created["lesson"]["id"]
    response = api_client.client.post(f"/api/lessons/{lesson_id}/teacher-token", headers=lan)
    assert response.status_code == 200
    token = response.json()["teacher_token"]
    assert api_client.call(api_client.services.lessons.admit_teacher, token).role == "teacher"
    assert (
        api_client.client.post(f"/api/lessons/{lesson_id}/teacher-token", headers=hung).status_code
        == 404
    )


# --- reports -----------------------------------------------------------------------------------


def test_lesson_report_close_verify_and_csv(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    created = create_lesson(api_client, lan, class_5a, start_in_minutes=-50)
    lesson_id = created["lesson"]["id"]
    an = created["links"][0]
    attendance = api_client.services.records.attendance
    api_client.call(
        attendance.joined,
        lesson_id,
        "p_an",
        Attendee("student", an["full_name"], an["roster_entry_id"]),
    )
    api_client.call(
        attendance.joined, lesson_id, "p_khach", Attendee("student", "Khách Dự Giờ", guest=True)
    )

    live = client.get(f"/api/lessons/{lesson_id}/report", headers=lan).json()["report"]
    assert live["frozen"] is None
    assert [s["student_code"] for s in live["students"]] == ["HS001", "HS002", "HS003"]
    assert live["students"][0]["still_present"] is True
    assert [g["name"] for g in live["guests"]] == ["Khách Dự Giờ"]
    assert client.get(f"/api/lessons/{lesson_id}/report/verify", headers=lan).status_code == 404

    closed = client.post(f"/api/lessons/{lesson_id}/report/close", headers=lan)
    assert closed.status_code == 200, closed.text
    frozen = closed.json()["report"]
    assert len(frozen["frozen"]["content_hash"]) == 64
    assert frozen["lesson"]["ended_at"] is not None
    again = client.post(f"/api/lessons/{lesson_id}/report/close", headers=lan)
    assert (again.status_code, error_code(again)) == (409, "report_closed")
    assert client.post(f"/api/lessons/{lesson_id}/report/close", headers=admin).status_code == 403

    verified = client.get(f"/api/lessons/{lesson_id}/report/verify", headers=admin)
    assert verified.json()["verification"] == {
        "ok": True,
        "content_hash_ok": True,
        "events_match": True,
    }

    # CSV: Vietnamese by default, for Excel (";" as the list separator, BOM, local times).
    exported = client.get(f"/api/lessons/{lesson_id}/report.csv", headers=lan)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["x-report-sha256"] == frozen["frozen"]["content_hash"]
    assert exported.content.startswith(BOM)
    text = exported.content[len(BOM) :].decode()
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert rows[0][:4] == ["Loại", "Mã HS", "Họ và tên", "Trạng thái"]
    assert [row[:3] for row in rows[1:]] == [
        ["Học sinh", "HS001", "Nguyễn Văn An"],
        ["Học sinh", "HS002", "Trần Thị Bích Ngọc"],
        ["Học sinh", "HS003", "Lê Hoàng Đức"],
        ["Khách", "", "Khách Dự Giờ"],
    ]
    assert rows[2][3] == "Vắng"
    joined_at = datetime.fromisoformat(frozen["students"][0]["first_join"])
    local = joined_at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    assert rows[1][4] == local.strftime("%d/%m/%Y %H:%M")  # the school's time zone
    disposition = exported.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="diem-danh_5A_')
    assert "filename*=UTF-8''%C4%90i%E1%BB%83m%20danh%205A%20-%20" in disposition
    assert disposition.endswith(".csv")

    english = client.get(f"/api/lessons/{lesson_id}/report.csv?lang=en", headers=lan)
    rows = list(csv.reader(io.StringIO(english.content[len(BOM) :].decode()), delimiter=","))
    assert rows[0][:4] == ["Type", "Student code", "Full name", "Status"]
    assert rows[2][3] == "Absent"
    assert 'filename="attendance_5A_' in english.headers["content-disposition"]
    asked = client.get(
        f"/api/lessons/{lesson_id}/report.csv", headers={**lan, "Accept-Language": "en-GB,vi;q=0.5"}
    )
    assert asked.content.decode("utf-8-sig").startswith("Type,Student code,")

    # The workbook, read back: typed cells in the school's time zone.
    workbook = client.get(f"/api/lessons/{lesson_id}/report.xlsx", headers=admin)
    assert workbook.status_code == 200
    assert workbook.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert workbook.headers["x-report-sha256"] == frozen["frozen"]["content_hash"]
    assert workbook.headers["content-disposition"].endswith(".xlsx")
    book = load_workbook(io.BytesIO(workbook.content))
    sheet = book["Điểm danh"]
    status = {"present": "Có mặt", "absent": "Vắng"}[frozen["students"][0]["status"]]
    assert sheet["C2"].value == "Nguyễn Văn An" and sheet["D2"].value == status
    assert sheet["E2"].value == local.replace(second=0, microsecond=0, tzinfo=None)
    assert sheet["E2"].number_format == "dd/mm/yyyy hh:mm"
    assert isinstance(sheet["G2"].value, int) and sheet["H2"].number_format == "0.0%"
    about = {row[0].value: row[1].value for row in book["Thông tin"].iter_rows(min_row=2)}
    assert about["Mã kiểm tra (SHA-256)"] == frozen["frozen"]["content_hash"]

    for path in ("report.csv", "report.xlsx"):
        refused = client.get(f"/api/lessons/{lesson_id}/{path}?lang=fr", headers=lan)
        assert (refused.status_code, error_code(refused)) == (400, "invalid_language")
        assert refused.json()["error"]["languages"] == ["vi", "en"]


def test_a_report_cannot_be_closed_before_the_lesson_is_over(
    api_client: Api, lan: dict[str, str], class_5a: str
) -> None:
    lesson_id = create_lesson(api_client, lan, class_5a)["lesson"]["id"]
    response = api_client.client.post(f"/api/lessons/{lesson_id}/report/close", headers=lan)
    assert (response.status_code, error_code(response)) == (409, "lesson_not_over")


def test_class_report_over_a_date_range(
    api_client: Api, admin: dict[str, str], lan: dict[str, str], hung: dict[str, str], class_5a: str
) -> None:
    client = api_client.client
    create_lesson(api_client, lan, class_5a)
    today = datetime.now(UTC).date()
    query = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
    report = client.get(f"/api/classes/{class_5a}/report?{query}", headers=admin)
    assert report.status_code == 200
    data = report.json()["report"]
    assert data["class"]["name"] == "5A" and len(data["lessons"]) == 1
    assert [(s["student_code"], s["lessons"], s["attended"]) for s in data["students"]] == [
        ("HS001", 1, 0),
        ("HS002", 1, 0),
        ("HS003", 1, 0),
    ]
    exported = client.get(f"/api/classes/{class_5a}/report.csv?{query}", headers=lan)
    assert exported.content.startswith(BOM) and "Lê Hoàng Đức".encode() in exported.content
    rows = list(csv.reader(io.StringIO(exported.content[len(BOM) :].decode()), delimiter=";"))
    assert rows[0][:3] == ["Mã HS", "Họ và tên", "Số buổi"]
    assert rows[1] == ["HS001", "Nguyễn Văn An", "1", "0", "0", "0", "0", "1", "0", "0%"]
    first, last = today - timedelta(days=1), today + timedelta(days=1)
    assert exported.headers["content-disposition"].startswith(
        f"attachment; filename=\"chuyen-can_5A_{first}_{last}.csv\"; filename*=UTF-8''"
    )
    workbook = client.get(f"/api/classes/{class_5a}/report.xlsx?{query}&lang=en", headers={**lan})
    assert workbook.status_code == 200
    book = load_workbook(io.BytesIO(workbook.content))
    assert book.sheetnames == ["Students", "Lessons", "About"]
    assert book["Students"]["J2"].value == 0 and book["Students"]["J2"].number_format == "0.0%"
    assert book["Lessons"]["A2"].value == data["lessons"][0]["title"]
    refused = client.get(f"/api/classes/{class_5a}/report.xlsx?from=x&to=y", headers=lan)
    assert (refused.status_code, error_code(refused)) == (400, "invalid_range")
    assert client.get(f"/api/classes/{class_5a}/report?{query}", headers=hung).status_code == 404
    for bad in (
        "",
        "from=2025-09-01",
        "from=2025-13-01&to=2025-12-01",
        "from=2025-09-08&to=2025-09-01",
        "from=2020-01-01&to=2025-01-01",
    ):
        response = client.get(f"/api/classes/{class_5a}/report?{bad}", headers=admin)
        assert (response.status_code, error_code(response)) == (400, "invalid_range"), bad
