"""LessonService: creating lessons and letting people in (brute force, enumeration, entropy,
password storage).

Runs over {SQLite, PostgreSQL} × {memory, Redis} limiters; the limiters' clock is fake, so
"rapid" failures and expired windows are exact.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from pathlib import Path

import argon2
import pytest
from sqlalchemy import select

from classroom import lessons as lessons_module
from classroom.errors import ClassroomError
from classroom.lessons import CreatedLesson, LessonService
from classroom.ratelimit import MemoryFailureLimiter
from classroom.storage import Database, lessons, open_database
from tests.classroom.support import FAST_ARGON2, NAME, PASSWORD, FakeClock, RecordingHasher

ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"


async def refusal(call: object) -> ClassroomError:
    """The ClassroomError an awaited call raises."""
    with pytest.raises(ClassroomError) as refused:
        await call  # type: ignore[misc]
    return refused.value


@pytest.fixture
async def created(service: LessonService) -> CreatedLesson:
    return await service.create_lesson("  Toán lớp 5A  ", PASSWORD)


async def stored_row(database: Database, lesson_id: str) -> dict[str, object]:
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(lessons).where(lessons.c.id == lesson_id))).one()
    return dict(row._mapping)


# --- creating ---------------------------------------------------------------------------------


async def test_a_new_lesson_has_a_code_a_token_and_a_clean_title(
    service: LessonService, created: CreatedLesson
) -> None:
    lesson = created.lesson
    assert re.fullmatch(r"[0-9]{9}", lesson.code)
    assert uuid.UUID(lesson.id).version == 4
    assert lesson.title == "Toán lớp 5A"
    assert lesson.created_at.utcoffset() is not None
    assert lesson.ended_at is None
    assert len(created.teacher_token) >= 43  # token_urlsafe(32): 256 random bits
    assert created.teacher_token not in repr(created)
    assert await service.get_lesson(lesson.id) == lesson


async def test_passwords_and_tokens_are_never_stored_in_clear(
    database: Database, created: CreatedLesson
) -> None:
    row = await stored_row(database, created.lesson.id)
    for value in row.values():
        assert PASSWORD not in str(value)
        assert created.teacher_token not in str(value)
    password_hash = str(row["password_hash"])
    assert password_hash.startswith("$argon2id$")
    parameters = argon2.extract_parameters(password_hash)
    assert (parameters.memory_cost, parameters.time_cost) == (
        FAST_ARGON2.memory_kib,
        FAST_ARGON2.time_cost,
    )
    expected = hashlib.sha256(created.teacher_token.encode()).hexdigest()
    assert row["teacher_token_hash"] == expected


def read_everything(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.iterdir()))


async def test_the_sqlite_file_holds_no_secret_anywhere(tmp_path: Path) -> None:
    """Not just the row: the database file and its write-ahead log, byte for byte."""
    async with await open_database(f"sqlite+aiosqlite:///{tmp_path}/l.sqlite3") as db:
        service = LessonService(db.lessons, MemoryFailureLimiter(), hasher=RecordingHasher())
        created = await service.create_lesson("Lịch sử", PASSWORD)
        raw = await asyncio.to_thread(read_everything, tmp_path)
    assert created.lesson.title.encode() in raw  # the check can see stored text at all
    assert PASSWORD.encode() not in raw
    assert created.teacher_token.encode() not in raw


async def test_the_default_service_hashes_with_production_parameters(database: Database) -> None:
    service = LessonService(database.lessons, MemoryFailureLimiter())
    created = await service.create_lesson("Vật lý", PASSWORD)
    row = await stored_row(database, created.lesson.id)
    parameters = argon2.extract_parameters(str(row["password_hash"]))
    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= 19 * 1024
    assert parameters.time_cost >= 2


@pytest.mark.parametrize("password", ["", "1234567", "x" * 257])
async def test_weak_passwords_are_refused_and_nothing_is_stored(
    service: LessonService, database: Database, password: str
) -> None:
    error = await refusal(service.create_lesson("Toán", password))
    assert error.code == "weak_password"
    async with database.engine.connect() as connection:
        assert (await connection.execute(select(lessons))).first() is None


@pytest.mark.parametrize(
    "title", ["", "   ", "a" * 201, "Toán\n5A", "Toán\x00", "\x1b[31mred", "Toán\ud800"]
)
async def test_bad_titles_are_refused(service: LessonService, title: str) -> None:
    assert (await refusal(service.create_lesson(title, PASSWORD))).code == "invalid_title"


async def test_a_taken_code_is_drawn_again(
    service: LessonService, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = iter(["111111111", "111111111", "111111111", "222222222"])
    monkeypatch.setattr(lessons_module, "_new_code", lambda: next(codes))
    first = await service.create_lesson("Một", PASSWORD)
    second = await service.create_lesson("Hai", PASSWORD)
    assert (first.lesson.code, second.lesson.code) == ("111111111", "222222222")


# --- guests -----------------------------------------------------------------------------------


async def test_a_guest_with_the_right_password_is_admitted_as_a_student(
    service: LessonService, created: CreatedLesson
) -> None:
    spaced = " ".join(re.findall("...", created.lesson.code))  # as shown: "123 456 789"
    admission = await service.admit_guest(spaced, PASSWORD, "  Nguyễn   Văn\u00a0An ", ADDRESS)
    assert admission.lesson == created.lesson
    assert admission.role == "student"
    assert admission.name == NAME


async def test_a_wrong_password_is_bad_password(
    service: LessonService, created: CreatedLesson
) -> None:
    error = await refusal(service.admit_guest(created.lesson.code, "wrong!!!", NAME, ADDRESS))
    assert (error.code, error.message) == ("bad_password", "Wrong lesson code or password.")


async def test_unknown_ended_and_wrong_look_the_same_and_cost_the_same(
    service: LessonService, created: CreatedLesson, hasher: RecordingHasher
) -> None:
    ended = await service.create_lesson("Đã kết thúc", PASSWORD)
    await service.end_lesson(ended.lesson.id)
    unknown_code = "000000000" if created.lesson.code != "000000000" else "000000001"
    attempts = [
        (created.lesson.code, "wrong password"),
        (unknown_code, PASSWORD),
        ("not a code", PASSWORD),
        (ended.lesson.code, PASSWORD),
    ]
    errors = []
    for n, (code, password) in enumerate(attempts):
        hasher.verified.clear()
        errors.append(await refusal(service.admit_guest(code, password, NAME, f"192.0.2.{n}")))
        assert len(hasher.verified) == 1  # exactly one Argon2 verification, whatever failed
    assert {(e.code, e.message, tuple(e.extra.items())) for e in errors} == {
        ("bad_password", "Wrong lesson code or password.", ())
    }


async def test_the_sixth_rapid_failure_is_rate_limited_even_with_the_right_password(
    service: LessonService, created: CreatedLesson, clock: FakeClock, hasher: RecordingHasher
) -> None:
    code = created.lesson.code
    for _ in range(5):
        error = await refusal(service.admit_guest(code, "wrong password", NAME, ADDRESS))
        assert error.code == "bad_password"
    hasher.verified.clear()
    for password in ("wrong password", PASSWORD):
        error = await refusal(service.admit_guest(code, password, NAME, ADDRESS))
        assert error.code == "rate_limited"
        assert error.extra == {"retry_after": 60}
    assert hasher.verified == []  # refused before any password was even looked at
    clock.advance(30)
    error = await refusal(service.admit_guest(code, PASSWORD, NAME, ADDRESS))
    assert error.extra == {"retry_after": 30}
    clock.advance(30)
    assert (await service.admit_guest(code, PASSWORD, NAME, ADDRESS)).role == "student"


async def test_another_address_is_not_limited_by_the_first(
    service: LessonService, created: CreatedLesson
) -> None:
    code = created.lesson.code
    for _ in range(5):
        await refusal(service.admit_guest(code, "wrong password", NAME, ADDRESS))
    assert (await refusal(service.admit_guest(code, PASSWORD, NAME, ADDRESS))).code == (
        "rate_limited"
    )
    assert (await service.admit_guest(code, PASSWORD, NAME, OTHER_ADDRESS)).name == NAME


async def test_the_lesson_wide_hourly_cap_stops_many_addresses(
    service: LessonService, created: CreatedLesson, clock: FakeClock
) -> None:
    code = created.lesson.code
    for host in range(6):  # 6 addresses × 5 failures: each under its own limit
        for _ in range(5):
            error = await refusal(
                service.admit_guest(code, "wrong password", NAME, f"10.0.0.{host}")
            )
            assert error.code == "bad_password"
        clock.advance(1)
    error = await refusal(service.admit_guest(code, PASSWORD, NAME, "10.0.1.1"))
    assert error.code == "rate_limited"
    assert error.extra == {"retry_after": 3600 - 6}
    # The teacher is never locked out by others' failures.
    assert (await service.admit_teacher(created.teacher_token)).role == "teacher"
    clock.advance(3600)
    assert (await service.admit_guest(code, PASSWORD, NAME, "10.0.1.1")).role == "student"


async def test_one_address_walking_codes_is_stopped(
    service: LessonService, created: CreatedLesson
) -> None:
    """20 failures from one address across 4 codes (5 each, under every per-code limit) lock
    that address out of every lesson, including one it has the password for."""
    codes = [f"{n:09d}" for n in range(1, 6)]
    guesses = [code for code in codes if code != created.lesson.code][:4]
    for code in guesses:
        for _ in range(5):
            error = await refusal(service.admit_guest(code, PASSWORD, NAME, ADDRESS))
            assert error.code == "bad_password"
    error = await refusal(service.admit_guest(created.lesson.code, PASSWORD, NAME, ADDRESS))
    assert error.code == "rate_limited"
    assert error.extra == {"retry_after": 60}
    assert (await service.admit_guest(created.lesson.code, PASSWORD, NAME, OTHER_ADDRESS)).name


async def test_successes_and_bad_names_are_not_failures(
    service: LessonService, created: CreatedLesson
) -> None:
    code = created.lesson.code
    for _ in range(4):
        await refusal(service.admit_guest(code, "wrong password", NAME, ADDRESS))
    for _ in range(10):
        await service.admit_guest(code, PASSWORD, NAME, ADDRESS)
        assert (await refusal(service.admit_guest(code, PASSWORD, "", ADDRESS))).code == (
            "invalid_name"
        )
    assert (await refusal(service.admit_guest(code, "wrong", NAME, ADDRESS))).code == (
        "bad_password"
    )
    assert (await refusal(service.admit_guest(code, PASSWORD, NAME, ADDRESS))).code == (
        "rate_limited"
    )


async def test_a_burst_of_parallel_guesses_gets_five_tries(
    service: LessonService, created: CreatedLesson
) -> None:
    attempts = [
        service.admit_guest(created.lesson.code, f"guess {n:04d}", NAME, ADDRESS) for n in range(20)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    codes = sorted(outcome.code for outcome in outcomes if isinstance(outcome, ClassroomError))
    assert codes == ["bad_password"] * 5 + ["rate_limited"] * 15


async def test_a_whole_class_joining_at_once_all_get_in(
    service: LessonService, created: CreatedLesson
) -> None:
    """Forty right passwords in the same instant, from forty homes: no charge in flight may
    push the lesson's failure window (30 per hour) over, so nobody is refused."""
    attempts = [
        service.admit_guest(created.lesson.code, PASSWORD, f"Học sinh {n}", f"203.0.113.{n}")
        for n in range(40)
    ]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert refused == []
    assert len(service._turns) == 0  # no lock left behind


async def test_an_ended_lesson_refuses_guests(
    service: LessonService, created: CreatedLesson
) -> None:
    await service.end_lesson(created.lesson.id)
    error = await refusal(service.admit_guest(created.lesson.code, PASSWORD, NAME, ADDRESS))
    assert error.code == "bad_password"


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "An\nNguyễn", "An\u202eneyugN", None])
async def test_bad_names_are_invalid_name(
    service: LessonService, created: CreatedLesson, name: str
) -> None:
    error = await refusal(service.admit_guest(created.lesson.code, PASSWORD, name, ADDRESS))
    assert error.code == "invalid_name"


async def test_no_secret_reaches_the_logs_or_the_errors(
    service: LessonService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await service.create_lesson("Tiếng Anh", PASSWORD)
    errors = [
        await refusal(service.create_lesson("Tiếng Anh", "kort")),
        await refusal(service.admit_guest(created.lesson.code, PASSWORD + "?", NAME, ADDRESS)),
        await refusal(service.admit_teacher(created.teacher_token + "x")),
    ]
    await service.admit_guest(created.lesson.code, PASSWORD, NAME, ADDRESS)
    await service.admit_teacher(created.teacher_token)
    for _ in range(5):
        errors.append(
            await refusal(service.admit_guest(created.lesson.code, "kort", NAME, ADDRESS))
        )
    assert caplog.records  # the flow did log something
    seen = caplog.text + "".join(f"{e}{e!r}{e.extra}" for e in errors)
    for secret in (PASSWORD, created.teacher_token, "kort"):
        assert secret not in seen


# --- teachers ---------------------------------------------------------------------------------


async def test_the_teacher_token_admits_the_teacher(
    service: LessonService, created: CreatedLesson
) -> None:
    admission = await service.admit_teacher(created.teacher_token)
    assert (admission.lesson, admission.role) == (created.lesson, "teacher")


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
        lambda token: token + "=",
        lambda token: token.upper(),
        lambda token: "",
        lambda token: "x" * 100_000,
        lambda token: hashlib.sha256(token.encode()).hexdigest(),  # the stored value itself
        lambda token: None,
    ],
    ids=["one-char", "padded", "upper", "empty", "huge", "the-hash", "none"],
)
async def test_a_forged_token_is_bad_token(
    service: LessonService, created: CreatedLesson, forge
) -> None:
    error = await refusal(service.admit_teacher(forge(created.teacher_token)))
    assert error.code == "bad_token"


async def test_an_ended_lesson_refuses_its_teacher_too(
    service: LessonService, created: CreatedLesson
) -> None:
    await service.end_lesson(created.lesson.id)
    assert (await refusal(service.admit_teacher(created.teacher_token))).code == "bad_token"


# --- ending -----------------------------------------------------------------------------------


async def test_ending_is_idempotent_and_unknown_lessons_are_none(
    service: LessonService, created: CreatedLesson
) -> None:
    ended = await service.end_lesson(created.lesson.id)
    assert ended is not None and ended.ended
    assert await service.end_lesson(created.lesson.id) == ended
    assert await service.get_lesson(created.lesson.id) == ended
    for unknown in (str(uuid.uuid4()), "not-an-id", "", "\x00"):
        assert await service.end_lesson(unknown) is None
        assert await service.get_lesson(unknown) is None
