"""Class lessons: scheduled, owned by a class and a teacher, joined by personal link; the old
ways in (teacher token, guest password) keep working and say who is a guest."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from classroom.errors import ClassroomError
from classroom.lessons import TEACHER_NAME, Admission, LessonService
from classroom.links import LINK_GRACE
from classroom.ratelimit import MemoryFailureLimiter
from classroom.records import Records
from classroom.storage import Database
from classroom.tables import lessons, metadata
from tests.classroom.support import (
    HANOI,
    LESSON_END,
    LESSON_START,
    NAME,
    PASSWORD,
    FakeClock,
    FakeNow,
    School,
    make_school,
)

ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "198.51.100.23"


async def refusal(call: object) -> ClassroomError:
    with pytest.raises(ClassroomError) as refused:
        await call  # type: ignore[misc]
    return refused.value


async def table_rows(database: Database) -> dict[str, list[tuple[object, ...]]]:
    snapshot = {}
    async with database.engine.connect() as connection:
        for name, table in sorted(metadata.tables.items()):
            rows = await connection.execute(select(table))
            snapshot[name] = sorted(map(tuple, rows), key=repr)
    return snapshot


# --- scheduling ---------------------------------------------------------------------------------


async def test_a_class_lesson_has_its_class_teacher_and_schedule(
    school: School, database: Database
) -> None:
    lesson = school.lesson
    assert lesson.class_id == school.school_class.id
    assert lesson.teacher_id == school.teacher.id
    assert (lesson.scheduled_start, lesson.scheduled_end) == (LESSON_START, LESSON_END)
    stored = await school.lessons.get_lesson(lesson.id)
    assert stored == lesson
    assert stored is not None and stored.scheduled_start is not None
    assert stored.scheduled_start.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (LESSON_START, LESSON_START),  # no length
        (LESSON_END, LESSON_START),  # backwards
        (LESSON_START, LESSON_START + timedelta(hours=4, seconds=1)),  # too long
        (LESSON_START.replace(tzinfo=None), LESSON_END),  # naive
        ("2025-09-08T07:30:00+07:00", LESSON_END),  # not a datetime
    ],
)
async def test_bad_schedules_are_refused_and_nothing_is_stored(
    school: School, database: Database, start: object, end: object
) -> None:
    before = await table_rows(database)
    error = await refusal(
        school.lessons.create_class_lesson(
            "Toán",
            class_id=school.school_class.id,
            teacher_id=school.teacher.id,
            scheduled_start=start,  # type: ignore[arg-type]
            scheduled_end=end,  # type: ignore[arg-type]
        )
    )
    assert error.code == "invalid_schedule"
    assert await table_rows(database) == before


async def test_schedules_in_any_zone_are_stored_in_utc(school: School) -> None:
    created = await school.lessons.create_class_lesson(
        "Tiếng Việt",
        class_id=school.school_class.id,
        teacher_id=school.teacher.id,
        scheduled_start=datetime(2025, 9, 8, 9, 0, 0, 123456, tzinfo=HANOI),
        scheduled_end=datetime(2025, 9, 8, 9, 40, tzinfo=HANOI),
    )
    assert created.lesson.scheduled_start == datetime(2025, 9, 8, 9, 0, tzinfo=HANOI)
    assert created.lesson.scheduled_start.tzinfo is not None
    assert created.lesson.scheduled_start.utcoffset() == timedelta(0)


async def test_lessons_of_a_class_are_listed_by_start(school: School) -> None:
    later = await school.lessons.create_class_lesson(
        "Tiếng Việt",
        class_id=school.school_class.id,
        teacher_id=school.teacher.id,
        scheduled_start=LESSON_START + timedelta(days=1),
        scheduled_end=LESSON_END + timedelta(days=1),
    )
    listed = await school.lessons.class_lessons([school.school_class.id])
    assert [lesson.id for lesson in listed] == [school.lesson.id, later.lesson.id]
    only_first = await school.lessons.class_lessons(
        [school.school_class.id], LESSON_START, LESSON_START + timedelta(hours=1)
    )
    assert [lesson.id for lesson in only_first] == [school.lesson.id]
    assert await school.lessons.class_lessons(["not-an-id"]) == []
    assert await school.lessons.class_lessons([str(uuid.uuid4())]) == []


async def test_a_new_teacher_token_replaces_the_old_one(school: School) -> None:
    token = await school.lessons.new_teacher_token(school.lesson.id)
    assert token is not None and token != school.teacher_token
    assert (await school.lessons.admit_teacher(token)).role == "teacher"
    assert (await refusal(school.lessons.admit_teacher(school.teacher_token))).code == "bad_token"
    assert await school.lessons.new_teacher_token(str(uuid.uuid4())) is None
    assert await school.lessons.new_teacher_token("x") is None


# --- admission by personal link -----------------------------------------------------------------


async def test_a_student_is_admitted_by_link_under_the_roster_name(school: School) -> None:
    admission = await school.lessons.admit_with_link(
        school.token("HS001"), ADDRESS, code=school.lesson.code
    )
    assert admission == Admission(
        lesson=school.lesson,
        role="student",
        name="Nguyễn Văn An",
        roster_entry_id=school.links["HS001"].roster_entry_id,
        student_code="HS001",
        guest=False,
        link_id=school.links["HS001"].id,
    )
    spaced = f"{school.lesson.code[:3]} {school.lesson.code[3:6]}-{school.lesson.code[6:]}"
    assert (await school.lessons.admit_with_link(school.token("HS002"), ADDRESS, code=spaced)).name
    assert (await school.lessons.admit_with_link(school.token("HS003"), ADDRESS)).guest is False


async def refused_link_join(
    school: School, database: Database, token: object, **kwargs: object
) -> str:
    """The code of a refused link join, checking that nothing at all was written."""
    before = await table_rows(database)
    error = await refusal(school.lessons.admit_with_link(token, ADDRESS, **kwargs))  # type: ignore[arg-type]
    assert await table_rows(database) == before
    return error.code


async def test_expired_revoked_other_lesson_and_forged_links_each_get_their_code(
    school: School, database: Database, now: FakeNow
) -> None:
    other = await school.lessons.create_lesson("Lớp khác", PASSWORD)
    await school.records.links.revoke(school.lesson.id, school.links["HS002"].id)
    forged = school.token("HS001")[:-2] + (
        "AA" if not school.token("HS001").endswith("AA") else "BB"
    )

    assert await refused_link_join(school, database, forged) == "bad_link"
    assert await refused_link_join(school, database, "garbage") == "bad_link"
    assert await refused_link_join(school, database, None) == "bad_link"
    assert await refused_link_join(school, database, school.token("HS002")) == "link_revoked"
    assert (
        await refused_link_join(school, database, school.token("HS001"), code=other.lesson.code)
        == "wrong_lesson"
    )
    assert (
        await refused_link_join(school, database, school.token("HS001"), code="000000000")
        == "wrong_lesson"
    )
    now.set(LESSON_END + LINK_GRACE)
    assert await refused_link_join(school, database, school.token("HS001")) == "link_expired"


async def test_a_link_to_an_ended_lesson_is_refused(school: School, database: Database) -> None:
    await school.lessons.end_lesson(school.lesson.id)
    assert await refused_link_join(school, database, school.token("HS001")) == "lesson_ended"


async def test_link_joins_are_rate_limited_per_address(school: School, clock: FakeClock) -> None:
    for _ in range(20):
        error = await refusal(school.lessons.admit_with_link("garbage", ADDRESS))
        assert error.code == "bad_link"
    limited = await refusal(school.lessons.admit_with_link(school.token("HS001"), ADDRESS))
    assert limited.code == "rate_limited"
    assert limited.extra["retry_after"] >= 1
    # Another address, and guest joins from this address, are not affected.
    assert (await school.lessons.admit_with_link(school.token("HS001"), OTHER_ADDRESS)).name
    clock.advance(61)
    assert (await school.lessons.admit_with_link(school.token("HS001"), ADDRESS)).name


async def test_successful_link_joins_do_not_count_against_the_limit(school: School) -> None:
    for _ in range(30):
        assert (await school.lessons.admit_with_link(school.token("HS001"), ADDRESS)).name


async def test_without_a_link_verifier_every_link_is_bad(
    database: Database, school: School, clock: FakeClock
) -> None:
    bare = LessonService(database.lessons, MemoryFailureLimiter(clock=clock))
    assert (await refusal(bare.admit_with_link(school.token("HS001"), ADDRESS))).code == "bad_link"


# --- the old ways in keep working, and guests are marked ----------------------------------------


async def test_guests_with_the_lesson_password_are_marked_as_guests(
    records: Records, class_lessons: LessonService
) -> None:
    school = await make_school(records, class_lessons, password=PASSWORD)
    guest = await school.lessons.admit_guest(school.lesson.code, PASSWORD, NAME, ADDRESS)
    assert guest.guest is True
    assert guest.roster_entry_id is None and guest.student_code is None
    teacher = await school.lessons.admit_teacher(school.teacher_token)
    assert teacher.role == "teacher" and teacher.guest is False


async def test_a_class_lesson_without_a_password_admits_no_guests(
    school: School, database: Database
) -> None:
    async with database.engine.connect() as connection:
        stored = (
            await connection.execute(select(lessons).where(lessons.c.id == school.lesson.id))
        ).one()
    assert stored.password_hash.startswith("$argon2id$")
    error = await refusal(school.lessons.admit_guest(school.lesson.code, "", NAME, ADDRESS))
    assert error.code == "bad_password"


async def test_ad_hoc_lessons_still_admit_guests_as_guests(service: LessonService) -> None:
    created = await service.create_lesson("Toán", PASSWORD)
    assert created.lesson.class_id is None and created.lesson.scheduled_start is None
    admission = await service.admit_guest(created.lesson.code, PASSWORD, NAME, ADDRESS)
    assert admission.guest is True
    assert admission.name == NAME


async def test_students_see_a_class_lessons_teacher_by_her_own_name(
    school: School, class_lessons: LessonService
) -> None:
    teacher = await school.lessons.admit_teacher(school.teacher_token)
    assert teacher.name == "Nguyễn Thị Lan"  # her account's full name, not "Teacher"
    # An ad-hoc lesson has no teacher account: the name pages show in their language.
    created = await class_lessons.create_lesson("Ôn tập", "mat-khau-on-tap")
    assert (await class_lessons.admit_teacher(created.teacher_token)).name == TEACHER_NAME
