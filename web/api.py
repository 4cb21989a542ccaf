"""The records API: logins, teachers, classes, rosters, class lessons, join links, reports,
and the safety records (incident reports, the moderation audit log).

JSON in and out (a roster is imported from the school's file, CSV or ``.xlsx``, and exported
as CSV; report exports are Excel ``.xlsx`` and CSV, in the language of ``?lang=vi|en``: see
``classroom.exports``), errors as
``{"error": {"code", "message", ...}}`` with the ``classroom`` error codes.

**Who may do what.** Every endpoint but ``/api/login`` and ``/api/logout`` needs a session:
the ``lophoc_session`` cookie set at login (HttpOnly, SameSite=Strict, Secure over HTTPS) or
``Authorization: Bearer <token>``. Administrators manage teachers, classes and rosters and read
every report; teachers see only the classes they teach, import those classes' rosters,
schedule their lessons, hand out and revoke links and close reports. Incidents and the audit
log of a class lesson are read by its class's teachers and by administrators (the school's
leadership); those of an ad-hoc lesson, which belongs to no class, by administrators only.
Someone else's class or lesson answers ``404 not_found``, the same as none at all, so ids
cannot be probed. A request authenticated by cookie that changes
something must come from this site (``Origin``), on top of SameSite.

**Limits.** JSON bodies up to 16 KiB (as ``web.app``), roster files up to 1 MiB; both are cut off
while reading, before the whole body is in memory. Responses are ``Cache-Control: no-store``:
they carry personal data and links.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Final

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from classroom.accounts import SESSION_LIFETIME, SchoolClass, User, UserRole, may_teach
from classroom.errors import ClassroomError
from classroom.exports import (
    CSV_MEDIA_TYPE,
    LANGUAGES,
    XLSX_MEDIA_TYPE,
    ExportFormat,
    FileName,
    Language,
    class_file_name,
    class_sheets,
    content_disposition,
    csv_bytes,
    language_of,
    lesson_file_name,
    lesson_sheets,
    xlsx_bytes,
)
from classroom.lessons import MAX_LESSON_LENGTH, Lesson, LessonService
from classroom.links import JoinLink, LinkService, link_url
from classroom.records import Records
from classroom.reports import MAX_REPORT_RANGE, RosterLine
from classroom.rosters import MAX_ROSTER_BYTES, RosterEntry

log = logging.getLogger(__name__)

MAX_JSON_BODY: Final = 16 * 1024
MAX_CSV_BODY: Final = MAX_ROSTER_BYTES
SESSION_COOKIE: Final = "lophoc_session"

_STATUS: Final = {
    "bad_login": 401,
    "not_authenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "username_taken": 409,
    "cannot_disable_self": 409,
    "last_admin": 409,
    "class_exists": 409,
    "report_closed": 409,
    "lesson_not_over": 409,
    "lesson_ended": 409,
    "rate_limited": 429,
}
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class HttpError(Exception):
    """A refusal about the request itself (size, shape), not about the records."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _classroom_error(exc: ClassroomError) -> JSONResponse:
    response = _error(_STATUS.get(exc.code, 400), exc.code, exc.message, **exc.extra)
    if "retry_after" in exc.extra:
        response.headers["Retry-After"] = str(exc.extra["retry_after"])
    return response


# --- plumbing -----------------------------------------------------------------------------------


def _records(request: Request) -> Records:
    records: Records | None = getattr(request.app.state.services, "records", None)
    if records is None:
        raise RuntimeError("the records services are not configured")
    return records


def _lessons(request: Request) -> LessonService:
    lessons: LessonService = request.app.state.services.lessons
    return lessons


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is over ``limit`` (not after reading it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, "too_big", "The request body is too large.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "too_big", "The request body is too large.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await _read_body(request, MAX_JSON_BODY)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "malformed", "The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise HttpError(400, "malformed", "The request body must be a JSON object.")
    return data


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise HttpError(400, "malformed", "A required text field is missing or not text.")
    return value


def _session_token(request: Request) -> tuple[str | None, bool]:
    """The session token and whether it came from the cookie (which a browser sends by
    itself, so it needs the same-site check)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    return request.cookies.get(SESSION_COOKIE), True


def origin_allowed(connection: HTTPConnection) -> bool:
    """Whether a request (or WebSocket) may come from the page that sent it: a browser page
    from another site must not open a lesson socket, nor change records with a cookie.

    Browsers always send ``Origin``; clients that are not browsers send none and cannot be
    misused by a foreign page, so a missing header is allowed. The server's own origin (the
    ``Host`` it was reached by, same scheme) and the configured origins are allowed."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    settings = connection.app.state.services.settings
    if origin in settings.allowed_origins:
        return True
    scheme = "https" if connection.url.scheme in ("https", "wss") else "http"
    return origin == f"{scheme}://{connection.headers.get('host', '')}"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or bool(request.app.state.services.settings.tls)


def _base_url(request: Request) -> str:
    public: str | None = request.app.state.services.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


Handler = Callable[[Request, User], Awaitable[Response]]


def endpoint(
    *, role: UserRole | None = None
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Authenticate, check the role, run, and turn refusals into JSON errors."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                token, from_cookie = _session_token(request)
                user = await _records(request).accounts.authenticate(token)
                if (
                    from_cookie
                    and request.method not in _SAFE_METHODS
                    and not origin_allowed(request)
                ):
                    raise ClassroomError.forbidden()
                if role is not None and user.role != role:
                    raise ClassroomError.forbidden()
                response = await handler(request, user)
            except ClassroomError as exc:
                response = _classroom_error(exc)
            except HttpError as exc:
                response = _error(exc.status, exc.code, exc.message)
            response.headers["Cache-Control"] = "no-store"
            return response

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap


# --- JSON shapes --------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "created_at": _iso(user.created_at),
        "disabled_at": _iso(user.disabled_at) if user.disabled_at is not None else None,
    }


def _class_json(
    school_class: SchoolClass, teachers: dict[str, User], student_count: int
) -> dict[str, Any]:
    """A class, its teachers (disabled ones too, with their ``disabled_at``) and how many
    students its list has now (withdrawn ones not counted)."""
    return {
        "id": school_class.id,
        "name": school_class.name,
        "teachers": [
            _user_json(teachers[teacher_id])
            for teacher_id in school_class.teacher_ids
            if teacher_id in teachers
        ],
        "student_count": student_count,
    }


async def _classes_json(records: Records, classes: list[SchoolClass]) -> list[dict[str, Any]]:
    teachers = await _teachers_by_id(records)
    counts = await records.rosters.student_counts(c.id for c in classes)
    return [_class_json(c, teachers, counts[c.id]) for c in classes]


def _entry_json(entry: RosterEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "student_code": entry.student_code,
        "full_name": entry.full_name,
        "parent_contact": entry.parent_contact,
        "withdrawn_at": _iso(entry.withdrawn_at),
    }


def _lesson_json(request: Request, lesson: Lesson) -> dict[str, Any]:
    return {
        "id": lesson.id,
        "code": lesson.code,
        "title": lesson.title,
        "class_id": lesson.class_id,
        "teacher_id": lesson.teacher_id,
        "scheduled_start": _iso(lesson.scheduled_start),
        "scheduled_end": _iso(lesson.scheduled_end),
        "created_at": _iso(lesson.created_at),
        "ended_at": _iso(lesson.ended_at),
        "join_url": f"{_base_url(request)}/l/{lesson.code}",
    }


def _link_json(
    request: Request, links: LinkService, lesson: Lesson, link: JoinLink
) -> dict[str, Any]:
    usable = not link.revoked and not link.student_withdrawn
    return {
        "id": link.id,
        "roster_entry_id": link.roster_entry_id,
        "student_code": link.student_code,
        "full_name": link.full_name,
        "issued_at": _iso(link.issued_at),
        "expires_at": _iso(link.expires_at),
        "revoked_at": _iso(link.revoked_at),
        "student_withdrawn": link.student_withdrawn,
        "url": link_url(_base_url(request), lesson.code, links.token_for(link)) if usable else None,
    }


def _csv(body: bytes, filename: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )


async def _teachers_by_id(records: Records) -> dict[str, User]:
    return {user.id: user for user in await records.accounts.teachers()}


# --- lookups with authorisation -----------------------------------------------------------------


async def _visible_class(request: Request, user: User) -> SchoolClass:
    return await _records(request).accounts.visible_class(user, request.path_params["class_id"])


async def _taught_class(request: Request, user: User) -> SchoolClass:
    school_class = await _visible_class(request, user)
    if not may_teach(user, school_class):
        raise ClassroomError.forbidden()
    return school_class


async def _visible_lesson(request: Request, user: User) -> tuple[Lesson, SchoolClass]:
    lesson = await _lessons(request).get_lesson(request.path_params["lesson_id"])
    if lesson is None or lesson.class_id is None:
        raise ClassroomError.not_found()
    school_class = await _records(request).accounts.visible_class(user, lesson.class_id)
    return lesson, school_class


async def _taught_lesson(request: Request, user: User) -> Lesson:
    lesson, school_class = await _visible_lesson(request, user)
    if not may_teach(user, school_class):
        raise ClassroomError.forbidden()
    return lesson


def _date_param(request: Request, name: str) -> date | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ClassroomError.invalid_range(MAX_REPORT_RANGE.days) from None


def _schedule_time(value: object) -> datetime:
    max_hours = int(MAX_LESSON_LENGTH.total_seconds() // 3600)
    if not isinstance(value, str) or len(value) > 64:
        raise ClassroomError.invalid_schedule(max_hours)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ClassroomError.invalid_schedule(max_hours) from None
    if moment.tzinfo is None:
        raise ClassroomError.invalid_schedule(max_hours)
    return moment


# --- ad-hoc lessons ------------------------------------------------------------------------------


async def create_lesson(request: Request) -> Response:
    """``POST /api/lessons {"title", "password"}`` → the lesson, its code and the teacher token.

    No account needed: a teacher without a school account starts a lesson with a password."""
    try:
        data = await _json_body(request)
        title, password = data.get("title"), data.get("password")
        if not isinstance(title, str) or not isinstance(password, str):
            raise HttpError(400, "malformed", "Give a title and a password, both as text.")
        created = await _lessons(request).create_lesson(title, password)
    except ClassroomError as exc:
        response = _classroom_error(exc)
    except HttpError as exc:
        response = _error(exc.status, exc.code, exc.message)
    else:
        lesson = created.lesson
        response = JSONResponse(
            {
                "lesson": {"id": lesson.id, "code": lesson.code, "title": lesson.title},
                "teacher_token": created.teacher_token,
                "join_url": f"{_base_url(request)}/l/{lesson.code}",
            },
            status_code=201,
        )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- sessions -----------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    """``POST /api/login {"username", "password"}`` → the session token (also as a cookie)."""
    try:
        data = await _json_body(request)
        session = await _records(request).accounts.login(
            data.get("username"), data.get("password"), _client(request)
        )
    except ClassroomError as exc:
        response = _classroom_error(exc)
    except HttpError as exc:
        response = _error(exc.status, exc.code, exc.message)
    else:
        response = JSONResponse(
            {
                "token": session.token,
                "expires_at": _iso(session.expires_at),
                "user": _user_json(session.user),
            }
        )
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
            httponly=True,
            secure=_secure(request),
            samesite="strict",
        )
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: Request) -> Response:
    """``POST /api/logout`` → 204; the session ends (idempotent)."""
    token, _ = _session_token(request)
    await _records(request).accounts.logout(token)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=_secure(request), samesite="strict"
    )
    return response


@endpoint()
async def me(request: Request, user: User) -> Response:
    return JSONResponse({"user": _user_json(user)})


# --- administration -----------------------------------------------------------------------------


@endpoint(role="admin")
async def list_teachers(request: Request, user: User) -> Response:
    teachers = await _records(request).accounts.teachers()
    return JSONResponse({"teachers": [_user_json(teacher) for teacher in teachers]})


@endpoint(role="admin")
async def create_teacher(request: Request, user: User) -> Response:
    """``POST /api/teachers {"username", "full_name", "password"}``."""
    data = await _json_body(request)
    teacher = await _records(request).accounts.create_user(
        _text(data, "username"),
        _text(data, "full_name"),
        _text(data, "password") or "",
        "teacher",
    )
    return JSONResponse({"teacher": _user_json(teacher)}, status_code=201)


@endpoint(role="admin")
async def reset_password(request: Request, user: User) -> Response:
    """``POST /api/users/{username}/password {"password"}``: a new password; every open
    session of that account ends."""
    data = await _json_body(request)
    changed = await _records(request).accounts.reset_password(
        request.path_params["username"], _text(data, "password") or ""
    )
    return JSONResponse({"user": _user_json(changed)})


@endpoint(role="admin")
async def disable_user(request: Request, user: User) -> Response:
    """``POST /api/users/{username}/disable``: no more logins, its sessions end, its records
    stay (``cannot_disable_self``, ``last_admin``)."""
    changed = await _records(request).accounts.disable_user(
        request.path_params["username"], by=user
    )
    return JSONResponse({"user": _user_json(changed)})


@endpoint(role="admin")
async def enable_user(request: Request, user: User) -> Response:
    """``POST /api/users/{username}/enable``: a disabled account may log in again."""
    changed = await _records(request).accounts.enable_user(request.path_params["username"])
    return JSONResponse({"user": _user_json(changed)})


@endpoint()
async def list_classes(request: Request, user: User) -> Response:
    """Every class for an administrator, a teacher's own classes for a teacher; each with
    its teachers and ``student_count``."""
    records = _records(request)
    classes = await records.accounts.classes_for(user)
    return JSONResponse({"classes": await _classes_json(records, classes)})


@endpoint(role="admin")
async def create_class(request: Request, user: User) -> Response:
    """``POST /api/classes {"name", "teachers": [usernames]}``."""
    data = await _json_body(request)
    usernames = data.get("teachers", [])
    if not isinstance(usernames, list) or not all(isinstance(u, str) for u in usernames):
        raise HttpError(400, "malformed", "teachers must be a list of usernames.")
    if len(usernames) > 50:
        raise HttpError(400, "malformed", "A class has at most 50 teachers.")
    records = _records(request)
    school_class = await records.accounts.create_class(_text(data, "name"), usernames)
    [shown] = await _classes_json(records, [school_class])
    return JSONResponse({"class": shown}, status_code=201)


@endpoint(role="admin")
async def add_class_teacher(request: Request, user: User) -> Response:
    """``POST /api/classes/{class_id}/teachers {"username"}``."""
    data = await _json_body(request)
    records = _records(request)
    school_class = await records.accounts.assign_teacher(
        request.path_params["class_id"], _text(data, "username") or ""
    )
    [shown] = await _classes_json(records, [school_class])
    return JSONResponse({"class": shown})


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


@endpoint()
async def import_roster(request: Request, user: User) -> Response:
    """``PUT /api/classes/{class_id}/roster`` with the file as the body (CSV or ``.xlsx``,
    ≤ 1 MiB), by an administrator or one of the class's teachers.
    ``?withdraw_missing=true`` also withdraws students not in the file; ``?dry_run=true``
    imports nothing and answers ``{"preview": ...}``: how the file was read, every row with its
    planned change or its errors, and who is not in the file."""
    school_class = await _visible_class(request, user)
    if user.role != "admin" and not may_teach(user, school_class):
        raise ClassroomError.forbidden()
    body = await _read_body(request, MAX_CSV_BODY)
    withdraw = _flag(request, "withdraw_missing")
    rosters = _records(request).rosters
    if _flag(request, "dry_run"):
        preview = await rosters.preview(school_class.id, body, withdraw_missing=withdraw)
        return JSONResponse({"preview": preview})
    result = await rosters.import_csv(school_class.id, body, withdraw_missing=withdraw)
    return JSONResponse({"imported": result.to_json()})


@endpoint()
async def roster(request: Request, user: User) -> Response:
    school_class = await _visible_class(request, user)
    entries = await _records(request).rosters.entries(school_class.id)
    return JSONResponse({"students": [_entry_json(entry) for entry in entries]})


@endpoint()
async def roster_csv(request: Request, user: User) -> Response:
    school_class = await _visible_class(request, user)
    body = await _records(request).rosters.export_csv(school_class.id)
    return _csv(body, "roster.csv")


# --- class lessons and links --------------------------------------------------------------------


@endpoint(role="teacher")
async def create_class_lesson(request: Request, user: User) -> Response:
    """``POST /api/classes/{class_id}/lessons {"title", "scheduled_start", "scheduled_end",
    "password"?}`` (ISO 8601 with offset) → the lesson, its teacher token and every student's
    personal link."""
    school_class = await _taught_class(request, user)
    data = await _json_body(request)
    created = await _lessons(request).create_class_lesson(
        _text(data, "title") or "",
        class_id=school_class.id,
        teacher_id=user.id,
        scheduled_start=_schedule_time(data.get("scheduled_start")),
        scheduled_end=_schedule_time(data.get("scheduled_end")),
        password=_text(data, "password", required=False),
    )
    links = _records(request).links
    issued = await links.ensure_links(created.lesson)
    return JSONResponse(
        {
            "lesson": _lesson_json(request, created.lesson),
            "teacher_token": created.teacher_token,
            "links": [_link_json(request, links, created.lesson, link) for link in issued],
        },
        status_code=201,
    )


@endpoint()
async def class_lessons(request: Request, user: User) -> Response:
    school_class = await _visible_class(request, user)
    return await _lessons_response(request, [school_class.id])


@endpoint()
async def list_lessons(request: Request, user: User) -> Response:
    """``GET /api/lessons?from=YYYY-MM-DD&to=YYYY-MM-DD``: lessons of the classes you see."""
    classes = await _records(request).accounts.classes_for(user)
    return await _lessons_response(request, [c.id for c in classes])


async def _lessons_response(request: Request, class_ids: list[str]) -> Response:
    first, last = _date_param(request, "from"), _date_param(request, "to")
    zone = _records(request).reports.zone
    start = datetime.combine(first, time(0), zone) if first else None
    end = datetime.combine(last + timedelta(days=1), time(0), zone) if last else None
    lessons = await _lessons(request).class_lessons(class_ids, start, end)
    return JSONResponse({"lessons": [_lesson_json(request, lesson) for lesson in lessons]})


@endpoint()
async def get_lesson(request: Request, user: User) -> Response:
    lesson, _ = await _visible_lesson(request, user)
    return JSONResponse({"lesson": _lesson_json(request, lesson)})


@endpoint(role="teacher")
async def new_teacher_token(request: Request, user: User) -> Response:
    """``POST /api/lessons/{lesson_id}/teacher-token``: a fresh teacher token (the old one
    stops working), for a teacher joining from another device."""
    lesson = await _taught_lesson(request, user)
    token = await _lessons(request).new_teacher_token(lesson.id)
    if token is None:
        raise ClassroomError.not_found()
    return JSONResponse({"teacher_token": token})


@endpoint(role="teacher")
async def lesson_links(request: Request, user: User) -> Response:
    """Every personal link of the lesson (revoked ones without a URL)."""
    lesson = await _taught_lesson(request, user)
    links = _records(request).links
    issued = await links.ensure_links(lesson)
    return JSONResponse({"links": [_link_json(request, links, lesson, link) for link in issued]})


@endpoint(role="teacher")
async def revoke_link(request: Request, user: User) -> Response:
    lesson = await _taught_lesson(request, user)
    links = _records(request).links
    link = await links.revoke(lesson.id, request.path_params["link_id"], by=user.id)
    return JSONResponse({"link": _link_json(request, links, lesson, link)})


@endpoint(role="teacher")
async def reissue_link(request: Request, user: User) -> Response:
    """Revoke a link and give the same student a new one."""
    lesson = await _taught_lesson(request, user)
    links = _records(request).links
    link = await links.reissue(lesson.id, request.path_params["link_id"], by=user.id)
    return JSONResponse({"link": _link_json(request, links, lesson, link)}, status_code=201)


# --- reports ------------------------------------------------------------------------------------


@endpoint()
async def lesson_report(request: Request, user: User) -> Response:
    lesson, _ = await _visible_lesson(request, user)
    view = await _records(request).reports.view(lesson)
    return JSONResponse({"report": view.to_json()})


def _export_language(request: Request) -> Language:
    language = language_of(request.query_params.get("lang"), request.headers.get("accept-language"))
    if language is None:
        raise ClassroomError.invalid_language(LANGUAGES)
    return language


def _file(body: bytes, kind: ExportFormat, name: FileName, headers: dict[str, str]) -> Response:
    return Response(
        body,
        media_type=XLSX_MEDIA_TYPE if kind == "xlsx" else CSV_MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(name), **headers},
    )


async def _lesson_export(request: Request, user: User, kind: ExportFormat) -> Response:
    """The lesson's report as a file; a frozen one says its hash in ``X-Report-SHA256``."""
    language = _export_language(request)
    lesson, school_class = await _visible_lesson(request, user)
    reports = _records(request).reports
    view = await reports.view(lesson)
    data = view.to_json()
    headers = {}
    if view.frozen is not None:
        headers["X-Report-SHA256"] = view.frozen.content_hash
    sheets = lesson_sheets(data, class_name=school_class.name, zone=reports.zone, language=language)
    body = xlsx_bytes(sheets) if kind == "xlsx" else csv_bytes(sheets[0], language)
    name = lesson_file_name(
        data, class_name=school_class.name, zone=reports.zone, language=language, ext=kind
    )
    return _file(body, kind, name, headers)


@endpoint()
async def lesson_report_xlsx_endpoint(request: Request, user: User) -> Response:
    """``GET /api/lessons/{lesson_id}/report.xlsx?lang=vi|en``: attendance and about sheets."""
    return await _lesson_export(request, user, "xlsx")


@endpoint()
async def lesson_report_csv_endpoint(request: Request, user: User) -> Response:
    """``GET /api/lessons/{lesson_id}/report.csv?lang=vi|en``: the attendance table."""
    return await _lesson_export(request, user, "csv")


@endpoint(role="teacher")
async def close_report(request: Request, user: User) -> Response:
    """Freeze the report; ``409 lesson_not_over`` before the lesson is over,
    ``409 report_closed`` the second time."""
    lesson = await _taught_lesson(request, user)
    reports = _records(request).reports
    await reports.close(lesson, by=user.id)
    refreshed = await _lessons(request).get_lesson(lesson.id) or lesson
    view = await reports.view(refreshed)
    return JSONResponse({"report": view.to_json()})


@endpoint()
async def verify_report(request: Request, user: User) -> Response:
    lesson, _ = await _visible_lesson(request, user)
    verification = await _records(request).reports.verify(lesson)
    if verification is None:
        raise ClassroomError.not_found()
    return JSONResponse({"verification": verification.to_json()})


async def _class_report_data(request: Request, user: User) -> dict[str, Any]:
    school_class = await _visible_class(request, user)
    first, last = _date_param(request, "from"), _date_param(request, "to")
    if first is None or last is None:
        raise ClassroomError.invalid_range(MAX_REPORT_RANGE.days)
    records = _records(request)
    entries = await records.rosters.entries(school_class.id)
    roster_lines = [RosterLine(e.id, e.student_code, e.full_name) for e in entries]
    return await records.reports.class_report(
        school_class.id, school_class.name, roster_lines, first, last
    )


# --- safety: incidents and the audit log -------------------------------------------------------


async def _safety_lesson(request: Request, user: User, lesson_id: str) -> Lesson:
    """A lesson whose safety records ``user`` may read (``not_found`` otherwise)."""
    lesson = await _lessons(request).get_lesson(lesson_id)
    if lesson is None:
        raise ClassroomError.not_found()
    if lesson.class_id is None:
        if user.role != "admin":
            raise ClassroomError.not_found()
        return lesson
    await _records(request).accounts.visible_class(user, lesson.class_id)
    return lesson


def _lesson_brief(lesson: Lesson | None) -> dict[str, Any] | None:
    if lesson is None:
        return None
    return {
        "id": lesson.id,
        "code": lesson.code,
        "title": lesson.title,
        "class_id": lesson.class_id,
    }


@endpoint()
async def list_incidents(request: Request, user: User) -> Response:
    """``GET /api/incidents``: newest first; every lesson's for administrators, the lessons of
    their classes for teachers."""
    records = _records(request)
    lesson_ids: list[str] | None = None
    if user.role != "admin":
        classes = await records.accounts.classes_for(user)
        lessons = await _lessons(request).class_lessons([c.id for c in classes])
        lesson_ids = [lesson.id for lesson in lessons]
    incidents = await records.safety.incidents(lesson_ids)
    service = _lessons(request)
    briefs: dict[str, Lesson | None] = {}
    for incident in incidents:
        if incident.lesson_id not in briefs:
            briefs[incident.lesson_id] = await service.get_lesson(incident.lesson_id)
    return JSONResponse(
        {
            "incidents": [
                {**incident.summary(), "lesson": _lesson_brief(briefs[incident.lesson_id])}
                for incident in incidents
            ]
        }
    )


@endpoint()
async def get_incident(request: Request, user: User) -> Response:
    """``GET /api/incidents/{incident_id}``: the report with its context."""
    incident = await _records(request).safety.incident(request.path_params["incident_id"])
    if incident is None:
        raise ClassroomError.not_found()
    lesson = await _safety_lesson(request, user, incident.lesson_id)
    return JSONResponse({"incident": {**incident.to_json(), "lesson": _lesson_brief(lesson)}})


@endpoint()
async def moderation_log(request: Request, user: User) -> Response:
    """``GET /api/lessons/{lesson_id}/moderation``: the lesson's audit log, oldest first."""
    lesson = await _safety_lesson(request, user, request.path_params["lesson_id"])
    entries = await _records(request).safety.actions(lesson.id)
    return JSONResponse({"actions": [entry.to_json() for entry in entries]})


@endpoint()
async def class_report(request: Request, user: User) -> Response:
    """``GET /api/classes/{class_id}/report?from=YYYY-MM-DD&to=YYYY-MM-DD``."""
    return JSONResponse({"report": await _class_report_data(request, user)})


async def _class_export(request: Request, user: User, kind: ExportFormat) -> Response:
    language = _export_language(request)
    data = await _class_report_data(request, user)
    zone = _records(request).reports.zone
    sheets = class_sheets(data, zone=zone, language=language)
    body = xlsx_bytes(sheets) if kind == "xlsx" else csv_bytes(sheets[0], language)
    return _file(body, kind, class_file_name(data, language=language, ext=kind), {})


@endpoint()
async def class_report_xlsx_endpoint(request: Request, user: User) -> Response:
    """``GET /api/classes/{class_id}/report.xlsx?from=…&to=…&lang=vi|en``."""
    return await _class_export(request, user, "xlsx")


@endpoint()
async def class_report_csv_endpoint(request: Request, user: User) -> Response:
    """``GET /api/classes/{class_id}/report.csv?from=…&to=…&lang=vi|en``: per student."""
    return await _class_export(request, user, "csv")


routes: Final = [
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/teachers", list_teachers, methods=["GET"]),
    Route("/api/teachers", create_teacher, methods=["POST"]),
    Route("/api/users/{username}/password", reset_password, methods=["POST"]),
    Route("/api/users/{username}/disable", disable_user, methods=["POST"]),
    Route("/api/users/{username}/enable", enable_user, methods=["POST"]),
    Route("/api/classes", list_classes, methods=["GET"]),
    Route("/api/classes", create_class, methods=["POST"]),
    Route("/api/classes/{class_id}/teachers", add_class_teacher, methods=["POST"]),
    Route("/api/classes/{class_id}/roster", roster, methods=["GET"]),
    Route("/api/classes/{class_id}/roster", import_roster, methods=["PUT"]),
    Route("/api/classes/{class_id}/roster.csv", roster_csv, methods=["GET"]),
    Route("/api/classes/{class_id}/lessons", class_lessons, methods=["GET"]),
    Route("/api/classes/{class_id}/lessons", create_class_lesson, methods=["POST"]),
    Route("/api/classes/{class_id}/report", class_report, methods=["GET"]),
    Route("/api/classes/{class_id}/report.csv", class_report_csv_endpoint, methods=["GET"]),
    Route("/api/classes/{class_id}/report.xlsx", class_report_xlsx_endpoint, methods=["GET"]),
    Route("/api/lessons", list_lessons, methods=["GET"]),
    Route("/api/lessons", create_lesson, methods=["POST"]),
    Route("/api/incidents", list_incidents, methods=["GET"]),
    Route("/api/incidents/{incident_id}", get_incident, methods=["GET"]),
    Route("/api/lessons/{lesson_id}/moderation", moderation_log, methods=["GET"]),
    Route("/api/lessons/{lesson_id}", get_lesson, methods=["GET"]),
    Route("/api/lessons/{lesson_id}/teacher-token", new_teacher_token, methods=["POST"]),
    Route("/api/lessons/{lesson_id}/links", lesson_links, methods=["GET"]),
    Route("/api/lessons/{lesson_id}/links/{link_id}/revoke", revoke_link, methods=["POST"]),
    Route("/api/lessons/{lesson_id}/links/{link_id}/reissue", reissue_link, methods=["POST"]),
    Route("/api/lessons/{lesson_id}/report", lesson_report, methods=["GET"]),
    Route("/api/lessons/{lesson_id}/report.csv", lesson_report_csv_endpoint, methods=["GET"]),
    Route("/api/lessons/{lesson_id}/report.xlsx", lesson_report_xlsx_endpoint, methods=["GET"]),
    Route("/api/lessons/{lesson_id}/report/close", close_report, methods=["POST"]),
    Route("/api/lessons/{lesson_id}/report/verify", verify_report, methods=["GET"]),
]
