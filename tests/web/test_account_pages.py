"""The teacher's account pages (``/login``, ``/lessons``, ``/lessons/<id>/report``,
``/classes/<id>/report``): served under the CSP, their ``data-testid`` contract, a message for
every error the records API can answer, the hand-over to ``/teach``, the pure rules of
``js/records.js`` (run under Node.js), and the API calls exactly as the pages make them (session
cookie, the page's own ``Origin``, times as ``Date.toISOString()`` writes them).

The real-browser journey through these pages is ``tests/e2e/test_report_page.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from classroom import errors as classroom_errors
from classroom.admin import admin_records
from classroom.passwords import PasswordHasher
from classroom.rosters import BOM
from media.ice import IceSettings
from tests.classroom.support import FAST_ARGON2, ROSTER_CSV
from tests.unavailable import unavailable
from tests.web.test_static_client import ACCOUNT_PAGES, STATIC, load_catalogue, parse
from web.app import create_app
from web.config import Settings

with warnings.catch_warnings():
    # Starlette prefers the httpx2 fork for its test client; the project pins httpx.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

PAGES = ACCOUNT_PAGES
LANGUAGES = ("vi", "en")
ORIGIN = {"Origin": "http://testserver"}
TEACHER_PASSWORD = "mật khẩu cô Thu 2026"


@pytest.fixture(scope="module")
def catalogues() -> dict[str, dict[str, str]]:
    return {language: load_catalogue(language) for language in LANGUAGES}


# -- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_has_nothing_inline_and_its_assets_exist(name: str) -> None:
    page = parse(STATIC / name)
    assert page.inline_scripts == [] and page.style_blocks == 0
    for tag, attrs in page.tags:
        assert "style" not in attrs, f"<{tag} style=…>"
        assert [a for a in attrs if a.startswith("on")] == [], tag
        assert not (attrs.get("href") or "").lower().startswith("javascript:")
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert len(scripts) == 1 and scripts[0].get("type") == "module"
    sheets = [attrs["href"] for tag, attrs in page.tags if tag == "link" and attrs.get("href")]
    assert "/static/css/lophoc.css" in sheets and "/static/css/records.css" in sheets
    for url in [scripts[0]["src"], *sheets]:
        assert url is not None and (STATIC / url.removeprefix("/static/")).is_file(), url


TESTIDS = {
    "login.html": {"login-form", "login-username", "login-password", "login-submit", "login-error"},
    "lessons.html": {
        "account-bar",
        "user-name",
        "logout",
        "lessons-from",
        "page-error",
        "page-notice",
        "class-list",
        "classes-empty",
        "lesson-dialog",
        "lesson-form",
        "lesson-form-title",
        "lesson-form-date",
        "lesson-form-start",
        "lesson-form-end",
        "lesson-form-password",
        "lesson-form-submit",
        "lesson-form-cancel",
        "lesson-form-error",
        "links-dialog",
        "links-list",
        "links-error",
        "links-close",
        "lesson-form-when",
        "lesson-form-now",
    },
    "report.html": {
        "logout",
        "report-view",
        "report-title",
        "report-state",
        "report-threshold",
        "report-summary",
        "report-csv",
        "report-xlsx",
        "report-window-basis",
        "report-close",
        "report-verify",
        "report-frozen",
        "report-hash",
        "report-closed-at",
        "verify-result",
        "report-error",
        "report-action-error",
        "students-body",
        "guests-body",
        "guests-empty",
    },
    "roster.html": {
        "logout",
        "roster-title",
        "roster-count",
        "roster-page-error",
        "roster-notice",
        "roster-form",
        "roster-file",
        "roster-withdraw",
        "roster-check",
        "roster-export",
        "roster-preview",
        "roster-read-as",
        "roster-summary",
        "roster-errors",
        "roster-error-list",
        "roster-confirm",
        "roster-rows",
        "roster-missing",
    },
    "class-report.html": {
        "logout",
        "class-report-form",
        "class-report-from",
        "class-report-to",
        "class-report-submit",
        "class-report-csv",
        "class-report-xlsx",
        "class-report-body",
        "class-report-error",
    },
}


@pytest.mark.parametrize("name", sorted(TESTIDS))
def test_testid_contract(name: str) -> None:
    ids = list(parse(STATIC / name).attribute_values("data-testid"))
    assert sorted(TESTIDS[name] - set(ids)) == []
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_the_landing_page_links_to_the_login() -> None:
    links = [a for t, a in parse(STATIC / "index.html").tags if t == "a"]
    assert any(a.get("href") == "/login" and a.get("data-testid") == "login-link" for a in links)


# test_static_client.py checks that these pages are served with the CSP.


# -- messages ----------------------------------------------------------------------------------

#: Keys the pages build at run time from a state or a code.
DYNAMIC_KEYS = (
    [f"lesson_state.{s}" for s in ("upcoming", "live", "over", "ended")]
    + [f"link_state.{s}" for s in ("active", "revoked", "expired", "withdrawn")]
    + [f"status.{s}" for s in ("present", "late", "left_early", "absent")]
    + [f"report.state_{s}" for s in ("live", "frozen")]
    + [f"report.verify_{s}" for s in ("ok", "hash_bad", "events_bad")]
    + [f"roster.status_{s}" for s in ("added", "updated", "unchanged", "error")]
    + [f"roster.change_{c}" for c in ("full_name", "parent_contact", "readmitted")]
    + [
        f"roster.summary_{s}"
        for s in ("added", "updated", "unchanged", "withdrawn", "kept", "error")
    ]
    + [f"roster.delimiter_{d}" for d in ("comma", "semicolon", "tab")]
)


def test_keys_built_at_run_time_exist(catalogues: dict[str, dict[str, str]]) -> None:
    for language, entries in catalogues.items():
        assert [key for key in DYNAMIC_KEYS if key not in entries] == [], language


def records_api_codes() -> set[str]:
    """Every code ``web/api.py`` can answer with, and the pages' own (no answer, empty form)."""
    classroom = {
        value
        for name, value in vars(classroom_errors).items()
        if name.isupper() and isinstance(value, str)
    }
    return classroom | {"malformed", "too_big", "internal", "connection_lost", "login_missing"}


def test_every_records_api_error_has_a_message(catalogues: dict[str, dict[str, str]]) -> None:
    """The pages look up ``api_error.<code>`` first, then the lesson pages' ``error.<code>``."""
    for language, entries in catalogues.items():
        missing = sorted(
            code
            for code in records_api_codes()
            if f"api_error.{code}" not in entries and f"error.{code}" not in entries
        )
        assert missing == [], f"records API errors without a message in {language}.js"
    # Codes whose lesson-page message means something else get their own.
    for code in ("not_found", "forbidden", "not_authenticated", "bad_login"):
        assert all(f"api_error.{code}" in entries for entries in catalogues.values()), code


def test_the_login_messages(catalogues: dict[str, dict[str, str]]) -> None:
    vi = catalogues["vi"]
    assert vi["api_error.bad_login"] == "Sai tên đăng nhập hoặc mật khẩu."
    assert "{retry_after} giây" in vi["error.rate_limited"]
    for entries in catalogues.values():
        assert "{late}" in entries["report.thresholds"]


# -- the hand-over to /teach -------------------------------------------------------------------


def test_start_teaching_stores_the_lesson_as_teach_js_reads_it() -> None:
    """``/teach`` (teach.js) resumes the lesson stored under ``lophoc.teacher.last`` →
    ``lophoc.teacher.<code>`` if it has a string ``teacher_token``, ``lesson.code`` and
    ``join_url``. lessons.js writes exactly that; this breaks if either side changes."""
    teach = (STATIC / "js" / "teach.js").read_text("utf-8")
    assert 'const LAST_LESSON_KEY = "lophoc.teacher.last";' in teach
    assert "const lessonKey = (code) => `lophoc.teacher.${code}`;" in teach
    for check in (
        'typeof stored.teacher_token === "string"',
        'typeof stored.lesson?.code === "string"',
        'typeof stored.join_url === "string"',
    ):
        assert check in teach, check
    lessons = (STATIC / "js" / "lessons.js").read_text("utf-8")
    assert 'sessionStore.set("lophoc.teacher.last", lesson.code);' in lessons
    stored = re.search(
        r"sessionStore\.setJson\(`lophoc\.teacher\.\$\{lesson\.code\}`, \{(?P<body>.*?)\}\);",
        lessons,
        re.S,
    )
    assert stored, "lessons.js no longer stores the lesson for /teach"
    body = stored["body"]
    assert "lesson: { id: lesson.id, code: lesson.code, title: lesson.title }" in body
    assert "teacher_token: token" in body and "join_url: lesson.join_url" in body


# -- js/records.js under Node.js -----------------------------------------------------------------

_RECORDS_SCRIPT = """
import * as r from %s;
const now = new Date("2025-09-08T01:00:00Z");
const lesson = (start, end, ended = null) =>
  ({scheduled_start: start, scheduled_end: end, ended_at: ended});
const out = {
  states: [
    r.lessonState(lesson("2025-09-08T02:00:00Z", "2025-09-08T02:45:00Z"), now),
    r.lessonState(lesson("2025-09-08T00:30:00Z", "2025-09-08T01:15:00Z"), now),
    r.lessonState(lesson("2025-09-08T00:00:00Z", "2025-09-08T00:45:00Z"), now),
    r.lessonState(lesson("2025-09-08T00:30:00Z", "2025-09-08T01:15:00Z", "x"), now),
  ],
  links: r.linksByStudent([
    {id: "a1", roster_entry_id: "a", student_code: "HS002", url: null,
     issued_at: "2025-09-08T00:00:00Z"},
    {id: "a2", roster_entry_id: "a", student_code: "HS002", url: "u2",
     issued_at: "2025-09-08T00:05:00Z"},
    {id: "b1", roster_entry_id: "b", student_code: "HS001", url: "u1",
     issued_at: "2025-09-08T00:00:00Z"},
    {id: "c1", roster_entry_id: "c", student_code: "HS003", url: null,
     issued_at: "2025-09-08T00:00:00Z"},
    {id: "c2", roster_entry_id: "c", student_code: "HS003", url: null,
     issued_at: "2025-09-08T00:09:00Z"},
  ]).map((link) => link.id),
  linkStatus: [
    r.linkStatus({expires_at: "2025-09-08T02:00:00Z"}, {ended_at: null}, now),
    r.linkStatus({expires_at: "2025-09-08T00:59:00Z"}, {ended_at: null}, now),
    r.linkStatus({expires_at: "2025-09-08T02:00:00Z"}, {ended_at: "x"}, now),
    r.linkStatus({revoked_at: "x"}, {ended_at: null}, now),
    r.linkStatus({student_withdrawn: true, revoked_at: "x"}, {ended_at: null}, now),
  ],
  schedule: (() => {
    const s = r.scheduleFrom("2025-09-08", "07:30", "08:15");
    return s && [s.start.toISOString(), s.end.toISOString()];
  })(),
  badSchedules: [
    r.scheduleFrom("2025-09-08", "08:15", "07:30"),
    r.scheduleFrom("2025-09-08", "08:15", "08:15"),
    r.scheduleFrom("", "07:30", "08:15"),
    r.scheduleFrom("2025-09-08", "7h30", "08:15"),
  ],
  range: r.defaultRange(new Date(2025, 8, 8, 12, 0), 30),
  minutes: [r.minutesOf(300), r.minutesOf(0), r.minutesOf(89)],
  slots: [
    r.slotWhen(new Date("2025-09-08T01:15:00Z"), new Date("2025-09-08T01:03:40Z")),
    r.slotWhen(new Date("2025-09-08T01:03:00Z"), new Date("2025-09-08T01:03:59Z")),
    r.slotWhen(new Date("2025-09-08T01:00:00Z"), new Date("2025-09-08T01:03:10Z")),
    r.slotWhen(new Date("2025-09-09T00:30:00Z"), new Date("2025-09-08T01:03:00Z")),
    r.slotWhen(new Date("2025-09-08T17:15:00Z"), new Date("2025-09-08T16:50:00Z")),
  ],
};
console.log(JSON.stringify(out));
"""


def test_records_rules_under_node() -> None:
    if shutil.which("node") is None:
        unavailable("Node.js is not installed: the client's rules are not run")
    module = (STATIC / "js" / "records.js").resolve().as_uri()
    result = subprocess.run(
        ["node", "--input-type=module"],
        input=_RECORDS_SCRIPT % json.dumps(module),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TZ": "Asia/Ho_Chi_Minh"},
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["states"] == ["upcoming", "live", "over", "ended"]
    # One line per student, by student code; the usable link wins over a newer revoked one.
    assert out["links"] == ["b1", "a2", "c2"]
    assert out["linkStatus"] == ["active", "expired", "expired", "revoked", "withdrawn"]
    # The form's day and times are read in the browser's time zone (here Hà Nội, UTC+7).
    assert out["schedule"] == ["2025-09-08T00:30:00.000Z", "2025-09-08T01:15:00.000Z"]
    # Where a new lesson's start stands, to the minute, in Hà Nội's days (17:15Z is the 9th).
    assert out["slots"] == [
        {"when": "future", "minutes": 12},
        {"when": "now", "minutes": 0},
        {"when": "past", "minutes": 3},
        {"when": "later", "minutes": 1407},
        {"when": "later", "minutes": 25},
    ]
    assert out["badSchedules"] == [None, None, None, None]
    assert out["range"] == {"from": "2025-08-09", "to": "2025-09-08"}
    assert out["minutes"] == [5, 0, 1]


# -- the API as the pages call it ---------------------------------------------------------------


async def _seed(url: str) -> None:
    async with admin_records(url, hasher=PasswordHasher(FAST_ARGON2)) as records:
        await records.accounts.create_user("cothu", "Nguyễn Thị Thu", TEACHER_PASSWORD, "teacher")
        school_class = await records.accounts.create_class("7A", ["cothu"])
        await records.rosters.import_csv(school_class.id, ROSTER_CSV)


@pytest.fixture
def teacher(tmp_path: Path) -> Iterator[TestClient]:
    """A client logged in as a teacher by cookie only, as the login page leaves the browser."""
    asyncio.run(_seed(f"sqlite+aiosqlite:///{tmp_path}/lophoc.sqlite3"))
    settings = Settings(tls=False, data_dir=tmp_path, ice=IceSettings.loopback())
    with TestClient(create_app(settings)) as test_client:
        response = test_client.post(
            "/api/login",
            json={"username": "cothu", "password": TEACHER_PASSWORD},
            headers=ORIGIN,
        )
        assert response.status_code == 200, response.text
        assert "lophoc_session" in test_client.cookies
        yield test_client


def _js_time(moment: datetime) -> str:
    """``Date.prototype.toISOString()``: UTC, milliseconds, ``Z``."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _schedule(start: datetime, minutes: int = 45) -> dict[str, str]:
    return {
        "scheduled_start": _js_time(start),
        "scheduled_end": _js_time(start + timedelta(minutes=minutes)),
    }


def test_the_pages_calls_work_with_the_cookie_and_their_own_origin(teacher: TestClient) -> None:
    me = teacher.get("/api/me").json()["user"]
    assert me["role"] == "teacher" and me["full_name"] == "Nguyễn Thị Thu"
    class_id = teacher.get("/api/classes").json()["classes"][0]["id"]

    # The lesson form: JS times, an optional password left out.
    created = teacher.post(
        f"/api/classes/{class_id}/lessons",
        json={"title": "Toán 7A", **_schedule(datetime.now(UTC) - timedelta(minutes=1))},
        headers=ORIGIN,
    )
    assert created.status_code == 201, created.text
    lesson: dict[str, Any] = created.json()["lesson"]
    assert lesson["scheduled_start"].endswith("Z") and lesson["join_url"].endswith(lesson["code"])
    listed = teacher.get("/api/lessons", params={"from": "2000-01-01"}).json()["lessons"]
    assert [item["id"] for item in listed] == [lesson["id"]]

    # Links: listed, revoked, reissued.
    links = teacher.get(f"/api/lessons/{lesson['id']}/links").json()["links"]
    assert [link["full_name"] for link in links] == [
        "Nguyễn Văn An",
        "Trần Thị Bích Ngọc",
        "Lê Hoàng Đức",
    ]
    link_id = links[2]["id"]
    base = f"/api/lessons/{lesson['id']}"
    assert teacher.post(f"{base}/links/{link_id}/revoke", headers=ORIGIN).status_code == 200
    assert teacher.post(f"{base}/links/{link_id}/reissue", headers=ORIGIN).status_code == 201

    # "Start teaching": a teacher token for /teach.
    token = teacher.post(f"{base}/teacher-token", headers=ORIGIN)
    assert token.status_code == 200 and token.json()["teacher_token"]

    # The report: live, not closable before the lesson is over, its CSV by cookie.
    report = teacher.get(f"{base}/report").json()["report"]
    assert report["frozen"] is None and report["summary"]["absent"] == 3
    assert report["policy"]["late_after_seconds"] == 300
    refused = teacher.post(f"{base}/report/close", headers=ORIGIN)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "lesson_not_over"
    csv = teacher.get(f"{base}/report.csv")
    assert csv.status_code == 200 and csv.content.startswith(BOM)
    assert "Nguyễn Văn An".encode() in csv.content
    today = datetime.now(UTC).date()
    class_report = teacher.get(
        f"/api/classes/{class_id}/report",
        params={"from": str(today - timedelta(days=30)), "to": str(today + timedelta(days=1))},
    )
    assert class_report.status_code == 200
    assert [row["lessons"] for row in class_report.json()["report"]["students"]] == [1, 1, 1]

    # Another site cannot make the browser do any of it with the cookie.
    foreign = {"Origin": "https://evil.example"}
    for path in (f"{base}/teacher-token", f"{base}/links/{link_id}/revoke", f"{base}/report/close"):
        response = teacher.post(path, headers=foreign)
        assert response.status_code == 403, path

    # Logging out ends the cookie's session.
    assert teacher.post("/api/logout", headers=ORIGIN).status_code == 204
    assert teacher.get("/api/me").status_code == 401


def test_a_lesson_is_scheduled_only_with_an_end_after_its_start(teacher: TestClient) -> None:
    class_id = teacher.get("/api/classes").json()["classes"][0]["id"]
    start = datetime.now(UTC) + timedelta(days=1)
    backwards = {
        "scheduled_start": _js_time(start),
        "scheduled_end": _js_time(start - timedelta(minutes=5)),
    }
    response = teacher.post(
        f"/api/classes/{class_id}/lessons",
        json={"title": "Toán", **backwards},
        headers=ORIGIN,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_schedule"
    weak = teacher.post(
        f"/api/classes/{class_id}/lessons",
        json={"title": "Toán", "password": "123", **_schedule(start)},
        headers=ORIGIN,
    )
    assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
