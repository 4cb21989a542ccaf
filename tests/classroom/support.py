"""Values and test doubles shared by the classroom tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from classroom.accounts import SchoolClass, User
from classroom.lessons import Lesson, LessonService
from classroom.links import JoinLink
from classroom.passwords import Argon2Parameters, PasswordHasher
from classroom.records import Records

# Argon2's minimum cost: the tests are about behaviour, and one test pins the production
# parameters separately.
FAST_ARGON2 = Argon2Parameters(time_cost=1, memory_kib=8, parallelism=1)

PASSWORD = "mật khẩu lớp 5A"
NAME = "Nguyễn Văn An"


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingHasher(PasswordHasher):
    """Remembers what each verification compared against (``None`` = the dummy hash), so tests
    can prove every refusal costs exactly one Argon2 verification without timing anything."""

    def __init__(self, parameters: Argon2Parameters = FAST_ARGON2) -> None:
        super().__init__(parameters)
        self.verified: list[str | None] = []

    async def verify(self, encoded_hash: str | None, password: str) -> bool:
        self.verified.append(encoded_hash)
        return await super().verify(encoded_hash, password)


class FakeNow:
    """Aware UTC datetimes that move only when a test says so (for services' ``clock``).

    Starts 15 minutes before the class lesson of :data:`LESSON_START` (07:30 in Hà Nội).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start if start is not None else LESSON_START - timedelta(minutes=15)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> datetime:
        self.now = moment
        return moment


HANOI = timezone(timedelta(hours=7))
LESSON_START = datetime(2025, 9, 8, 7, 30, tzinfo=HANOI).astimezone(UTC)
LESSON_END = LESSON_START + timedelta(minutes=45)
TEACHER_PASSWORD = "mật khẩu cô Lan 2025"

ROSTER_CSV = (
    "student_code,full_name,parent_contact\r\n"
    "HS001,Nguyễn Văn An,+84 912 345 678\r\n"
    "HS002,Trần Thị Bích Ngọc,\r\n"
    "HS003,Lê Hoàng Đức,me.duc@example.vn\r\n"
).encode()


@dataclass
class School:
    """A teacher, her class 5A with three students, and one scheduled lesson."""

    records: Records
    lessons: LessonService
    teacher: User
    other_teacher: User
    admin: User
    school_class: SchoolClass
    lesson: Lesson
    teacher_token: str
    links: dict[str, JoinLink]
    """By student code."""

    def token(self, student_code: str) -> str:
        return self.records.links.token_for(self.links[student_code])


async def make_school(
    records: Records, lessons: LessonService, *, password: str | None = None
) -> School:
    accounts = records.accounts
    teacher = await accounts.create_user("lan", "Nguyễn Thị Lan", TEACHER_PASSWORD, "teacher")
    other = await accounts.create_user("hung", "Phạm Văn Hùng", TEACHER_PASSWORD, "teacher")
    admin = await accounts.create_user("admin", "Quản trị", TEACHER_PASSWORD, "admin")
    school_class = await accounts.create_class("5A", ["lan"])
    await records.rosters.import_csv(school_class.id, ROSTER_CSV)
    created = await lessons.create_class_lesson(
        "Toán 5A",
        class_id=school_class.id,
        teacher_id=teacher.id,
        scheduled_start=LESSON_START,
        scheduled_end=LESSON_END,
        password=password,
    )
    links = await records.links.ensure_links(created.lesson)
    return School(
        records=records,
        lessons=lessons,
        teacher=teacher,
        other_teacher=other,
        admin=admin,
        school_class=school_class,
        lesson=created.lesson,
        teacher_token=created.teacher_token,
        links={link.student_code: link for link in links},
    )
