"""Lessons: creating one, letting the teacher and the students in, ending it.

A lesson is reached two ways. The teacher holds a **teacher token** (256 random bits, returned
once by :meth:`LessonService.create_lesson`; only its SHA-256 is stored). Students type a
**9-digit code** and the lesson's **password**; because a 9-digit code is guessable, every
failed guest join is charged to a :class:`~classroom.ratelimit.FailureLimiter`, and an
unknown code, an ended lesson and a wrong password are one and the same error (no guessing,
no enumeration).

**Class lessons** (:meth:`LessonService.create_class_lesson`) also belong to a class and a
teacher and have a scheduled start and end; each rostered student reaches them with a personal
join link (``classroom.links``), checked by :meth:`LessonService.admit_with_link`. Guests who
know the lesson password still get in by code, and are marked ``guest`` in their admission.

This module is the domain: it owns the :class:`LessonStore` port and never knows which database
sits behind it (``classroom.storage`` provides the SQL one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, Protocol

from classroom.errors import ClassroomError
from classroom.passwords import PasswordHasher, token_digest
from classroom.ratelimit import FailureLimiter, JoinLimits, Refusal, Rule, address_bucket

log = logging.getLogger(__name__)

Role = Literal["teacher", "student"]

MAX_TITLE_LENGTH: Final = 200
MAX_NAME_LENGTH: Final = 64
CODE_DIGITS: Final = 9
TEACHER_NAME: Final = "Teacher"
"""The name of an ad-hoc lesson's teacher, who has no account (docs/protocol.md: pages show it
in their language)."""

_CODE_PATTERN: Final = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_UUID_PATTERN: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_TOKEN_LENGTH: Final = 256
_CODE_ATTEMPTS: Final = 20
MAX_LESSON_LENGTH: Final = timedelta(hours=4)
"""Longest scheduled class lesson: a morning's block of periods, not an all-day room
(CONTEXT.md item 9 asks for lessons of bounded length)."""


@dataclass(frozen=True, slots=True)
class Lesson:
    """What anyone admitted may know about a lesson. Times are timezone-aware UTC."""

    id: str
    code: str
    title: str
    created_at: datetime
    ended_at: datetime | None
    class_id: str | None = None
    """Set for class lessons; ``None`` for ad-hoc lessons (code and password only)."""
    teacher_id: str | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None


@dataclass(frozen=True, slots=True)
class CreatedLesson:
    """A new lesson and its teacher token, which exists in clear only in this object."""

    lesson: Lesson
    teacher_token: str

    def __repr__(self) -> str:
        return f"CreatedLesson(lesson={self.lesson!r}, teacher_token='…')"


@dataclass(frozen=True, slots=True)
class Admission:
    """Someone let into a lesson, with the role that decides what they may do there.

    The identity fields say *who* it is, for attendance: a rostered student admitted by a
    personal link has ``roster_entry_id``, ``student_code`` and ``link_id`` (the name then
    comes from the roster and cannot be chosen); someone admitted by lesson password is a
    ``guest`` with the name they typed. The teacher is neither.
    """

    lesson: Lesson
    role: Role
    name: str
    roster_entry_id: str | None = None
    student_code: str | None = None
    guest: bool = False
    link_id: str | None = None


@dataclass(frozen=True, slots=True)
class LinkHolder:
    """What a verified personal join link says about its holder (see ``classroom.links``)."""

    link_id: str
    lesson_id: str
    roster_entry_id: str
    student_code: str
    full_name: str


class TeacherNames(Protocol):
    """A teacher account's full name by user id (:class:`classroom.accounts.AccountService`)."""

    async def user_by_id(self, user_id: str) -> _Named | None: ...


class _Named(Protocol):
    @property
    def full_name(self) -> str: ...


class LinkVerifier(Protocol):
    """Checks a personal join link; implemented by :class:`classroom.links.LinkService`."""

    async def verify(self, token: object, *, lesson_id: str | None = None) -> LinkHolder:
        """The holder, or ``ClassroomError`` ``bad_link`` / ``wrong_lesson`` /
        ``link_revoked`` / ``link_expired``. Writes nothing."""
        ...


@dataclass(frozen=True, slots=True)
class LessonRecord:
    """A lesson as stored: the public part plus the hashes of its secrets."""

    lesson: Lesson
    password_hash: str
    teacher_token_hash: str

    def __repr__(self) -> str:
        return f"LessonRecord(lesson={self.lesson!r}, password_hash='…', teacher_token_hash='…')"


class CodeTaken(Exception):
    """Raised by :meth:`LessonStore.add` when another lesson already has the code."""


class LessonStore(Protocol):
    """Durable lesson records. Every write is committed before the method returns."""

    async def add(self, record: LessonRecord) -> None:
        """Store a new lesson; raise :class:`CodeTaken` if its code is in use (any lesson,
        ended or not: codes are never reused)."""
        ...

    async def by_id(self, lesson_id: str) -> LessonRecord | None: ...

    async def by_code(self, code: str) -> LessonRecord | None: ...

    async def by_teacher_token_hash(self, token_hash: str) -> LessonRecord | None: ...

    async def mark_ended(self, lesson_id: str, ended_at: datetime) -> Lesson | None:
        """Set ``ended_at`` unless already set; return the lesson as now stored, or None."""
        ...

    async def class_lessons(
        self,
        class_ids: list[str],
        starting_from: datetime | None = None,
        starting_before: datetime | None = None,
    ) -> list[Lesson]:
        """Class lessons of these classes, by scheduled start, optionally within
        ``[starting_from, starting_before)``."""
        ...

    async def set_teacher_token_hash(self, lesson_id: str, token_hash: str) -> bool:
        """Replace the teacher token's hash; False if there is no such lesson."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


class LessonService:
    """The lesson commands the signaling and web layers call.

    ``hasher`` defaults to the production Argon2id parameters; tests pass cheaper ones.
    ``limits`` defaults to :class:`~classroom.ratelimit.JoinLimits`' numbers. ``clock``
    stamps ``created_at``/``ended_at``.
    """

    def __init__(
        self,
        store: LessonStore,
        limiter: FailureLimiter,
        *,
        hasher: PasswordHasher | None = None,
        limits: JoinLimits | None = None,
        clock: Callable[[], datetime] = _now,
        links: LinkVerifier | None = None,
        teachers: TeacherNames | None = None,
    ) -> None:
        self._teachers = teachers
        self._store = store
        self._limiter = limiter
        self._hasher = hasher if hasher is not None else PasswordHasher()
        self._limits = limits if limits is not None else JoinLimits()
        self._clock = clock
        self._links = links
        self._turns = _Turns()

    async def create_lesson(self, title: str, password: str) -> CreatedLesson:
        """Create a lesson with a fresh join code; the teacher token is returned only here.

        Raises ``invalid_title`` or ``weak_password``.
        """
        clean_title = normalise_title(title)
        password_hash = await self._hasher.hash(password)
        return await self._add_lesson(clean_title, password_hash)

    async def create_class_lesson(
        self,
        title: str,
        *,
        class_id: str,
        teacher_id: str,
        scheduled_start: datetime,
        scheduled_end: datetime,
        password: str | None = None,
    ) -> CreatedLesson:
        """Create a lesson of a class, taught by ``teacher_id``, at a scheduled time.

        The caller has checked that the class exists and that the teacher teaches it (that is
        ``classroom.accounts``' business, not this module's). Without ``password`` no guest
        can join: the stored hash is of a random secret nobody knows. Personal links for the
        roster are issued by ``classroom.links.LinkService.ensure_links``.

        Raises ``invalid_title``, ``invalid_schedule`` or ``weak_password``.
        """
        clean_title = normalise_title(title)
        start, end = _checked_schedule(scheduled_start, scheduled_end)
        if not _looks_like_id(class_id) or not _looks_like_id(teacher_id):
            raise ValueError("class and teacher ids are UUIDs issued by classroom.accounts")
        secret = password if password is not None else secrets.token_urlsafe(32)
        password_hash = await self._hasher.hash(secret)
        return await self._add_lesson(
            clean_title,
            password_hash,
            class_id=class_id,
            teacher_id=teacher_id,
            scheduled_start=start,
            scheduled_end=end,
        )

    async def _add_lesson(
        self,
        clean_title: str,
        password_hash: str,
        *,
        class_id: str | None = None,
        teacher_id: str | None = None,
        scheduled_start: datetime | None = None,
        scheduled_end: datetime | None = None,
    ) -> CreatedLesson:
        teacher_token = secrets.token_urlsafe(32)
        created_at = self._clock()
        for _ in range(_CODE_ATTEMPTS):
            lesson = Lesson(
                id=str(uuid.uuid4()),
                code=_new_code(),
                title=clean_title,
                created_at=created_at,
                ended_at=None,
                class_id=class_id,
                teacher_id=teacher_id,
                scheduled_start=scheduled_start,
                scheduled_end=scheduled_end,
            )
            try:
                await self._store.add(
                    LessonRecord(lesson, password_hash, token_digest(teacher_token))
                )
            except CodeTaken:
                continue
            log.info("lesson %s created", lesson.id)
            return CreatedLesson(lesson, teacher_token)
        # A billion codes: reaching this means the code space needs to grow, not a retry.
        raise RuntimeError(f"no free lesson code after {_CODE_ATTEMPTS} attempts")

    async def admit_guest(
        self, code: str, password: str, name: str, client_address: str
    ) -> Admission:
        """Let a student in by code and password.

        Order matters: the name is checked first (a typo there is not a guess); then the
        attempt is charged to the limiter *before* the password is verified, so while limited
        even the right password gets ``rate_limited``; the charge is refunded only on success.
        An unknown or malformed code verifies a dummy hash, and an ended lesson verifies its
        real one, so all three failures cost the same time and give the same ``bad_password``.
        """
        display_name = normalise_name(name)
        lesson_code = _normalise_code(code)
        # One attempt per lesson at a time on this node: a charge is settled (refunded, or
        # kept as a failure) before the next is made. Without this, forty students of one
        # class joining in the same second would each hold a charge while their passwords
        # are checked, and the lesson's failure window would refuse the right password.
        async with self._turns.turn(lesson_code or ""):
            outcome = await self._limiter.charge(
                self._limits.rules_for(lesson_code, client_address)
            )
            if isinstance(outcome, Refusal):
                log.info("guest join refused: rate limited (retry after %ss)", outcome.retry_after)
                raise ClassroomError.rate_limited(outcome.retry_after)
            record = await self._store.by_code(lesson_code) if lesson_code is not None else None
            matches = await self._hasher.verify(
                record.password_hash if record is not None else None,
                password if isinstance(password, str) else "",
            )
            if record is None or record.lesson.ended or not matches:
                log.info("guest join refused: bad code or password")
                raise ClassroomError.bad_password()
            await self._limiter.refund(outcome)
        log.info("guest admitted to lesson %s", record.lesson.id)
        return Admission(record.lesson, "student", display_name, guest=True)

    async def admit_with_link(
        self, token: object, client_address: str, *, code: str | None = None
    ) -> Admission:
        """Let a rostered student in by their personal join link.

        ``code`` is the lesson code of the page the link was opened on (``/l/<code>``); when
        given, a link for any other lesson is refused with ``wrong_lesson``. The display name
        is the roster's, never the client's.

        Charged to the limiter like a password attempt (charge first, refund on success), on
        a counter of its own per client address: a link carries 128 random bits and cannot be
        guessed, so the limit is there to bound the work one address can cause, and it must
        not eat into the guest-password budget of the lesson. Refusals: ``rate_limited``,
        ``bad_link``, ``wrong_lesson``, ``link_revoked``, ``link_expired``, ``lesson_ended``.
        Nothing is written on any refusal.
        """
        outcome = await self._limiter.charge(self.link_rules(client_address))
        if isinstance(outcome, Refusal):
            log.info("link join refused: rate limited (retry after %ss)", outcome.retry_after)
            raise ClassroomError.rate_limited(outcome.retry_after)
        if self._links is None:
            raise ClassroomError.bad_link()
        expected: str | None = None
        if code is not None:
            lesson_code = _normalise_code(code)
            page = await self._store.by_code(lesson_code) if lesson_code is not None else None
            # A page for no lesson at all still names *a* lesson, and it is not this link's.
            expected = page.lesson.id if page is not None else "no-such-lesson"
        holder = await self._links.verify(token, lesson_id=expected)
        record = await self._store.by_id(holder.lesson_id)
        if record is None:
            raise ClassroomError.bad_link()
        if record.lesson.ended:
            raise ClassroomError.lesson_ended()
        await self._limiter.refund(outcome)
        log.info("student admitted to lesson %s by link %s", record.lesson.id, holder.link_id)
        return Admission(
            record.lesson,
            "student",
            holder.full_name,
            roster_entry_id=holder.roster_entry_id,
            student_code=holder.student_code,
            link_id=holder.link_id,
        )

    def link_rules(self, client_address: str) -> tuple[Rule, ...]:
        """The one counter a link join is charged to: per client address, with the same limit
        as guest joins per address, under a key of its own."""
        return (Rule(f"link:{address_bucket(client_address)}", self._limits.per_address),)

    async def admit_teacher(self, token: str) -> Admission:
        """Let the teacher in by token; ``bad_token`` if unknown or the lesson has ended.

        The token is compared by looking up its SHA-256, so no byte-by-byte comparison of
        secrets happens in Python. Not rate limited: 256 random bits cannot be guessed, and a
        teacher must never be locked out by others' failures.
        """
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_LENGTH:
            raise ClassroomError.bad_token()
        record = await self._store.by_teacher_token_hash(token_digest(token))
        if record is None or record.lesson.ended:
            raise ClassroomError.bad_token()
        log.info("teacher admitted to lesson %s", record.lesson.id)
        return Admission(record.lesson, "teacher", await self._teacher_name(record.lesson))

    async def _teacher_name(self, lesson: Lesson) -> str:
        """The name students see: the teacher's own for a class lesson (her account's full
        name, as she signed in), else :data:`TEACHER_NAME`, which pages show as their
        language's word for teacher."""
        if lesson.teacher_id is not None and self._teachers is not None:
            user = await self._teachers.user_by_id(lesson.teacher_id)
            if user is not None:
                return user.full_name
        return TEACHER_NAME

    async def end_lesson(self, lesson_id: str) -> Lesson | None:
        """End a lesson for good: no one is admitted any more. Idempotent (the first end time
        stays). Returns the ended lesson, or None if there is no such lesson."""
        if not _looks_like_id(lesson_id):
            return None
        lesson = await self._store.mark_ended(lesson_id, self._clock())
        if lesson is not None:
            log.info("lesson %s ended", lesson.id)
        return lesson

    async def get_lesson(self, lesson_id: str) -> Lesson | None:
        if not _looks_like_id(lesson_id):
            return None
        record = await self._store.by_id(lesson_id)
        return record.lesson if record is not None else None

    async def class_lessons(
        self,
        class_ids: list[str],
        starting_from: datetime | None = None,
        starting_before: datetime | None = None,
    ) -> list[Lesson]:
        """Lessons of these classes by scheduled start, optionally in a half-open range."""
        wanted = [class_id for class_id in class_ids if _looks_like_id(class_id)]
        if not wanted:
            return []
        return await self._store.class_lessons(wanted, starting_from, starting_before)

    async def new_teacher_token(self, lesson_id: str) -> str | None:
        """Replace a lesson's teacher token and return the new one (the old one stops
        working). Lets a logged-in teacher reach a class lesson from another device, since
        only the token's hash is stored. None if there is no such lesson."""
        if not _looks_like_id(lesson_id):
            return None
        token = secrets.token_urlsafe(32)
        if not await self._store.set_teacher_token_hash(lesson_id, token_digest(token)):
            return None
        log.info("teacher token of lesson %s replaced", lesson_id)
        return token


class _Turns:
    """Takes turns per key: one holder of ``turn(key)`` at a time; idle keys cost nothing."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def normalise_title(title: object) -> str:
    """NFC, stripped, 1–200 characters, no control characters and no lone surrogates
    (which cannot be stored as UTF-8); else ``invalid_title``."""
    if not isinstance(title, str):
        raise ClassroomError.invalid_title()
    normalised = unicodedata.normalize("NFC", title)
    # Checked before stripping: str.strip() removes some control characters (U+001C–U+001F)
    # at the ends, which would let them pass unseen.
    if _has_forbidden(normalised, ("Cc", "Cs")):
        raise ClassroomError.invalid_title()
    clean = normalised.strip()
    if not 0 < len(clean) <= MAX_TITLE_LENGTH:
        raise ClassroomError.invalid_title()
    return clean


def normalise_name(name: object) -> str:
    """NFC, stripped, runs of whitespace made one space, 1–64 characters; else
    ``invalid_name``.

    Control and format characters are refused rather than removed: format characters include
    the bidirectional overrides that make one name display as another, and a name that needs
    them is one the teacher cannot read back to the class. Whitespace is checked *after*
    control characters, so a tab or newline is refused, not turned into a space.
    """
    if not isinstance(name, str):
        raise ClassroomError.invalid_name()
    normalised = unicodedata.normalize("NFC", name)
    if _has_forbidden(normalised, ("Cc", "Cf", "Cs")):
        raise ClassroomError.invalid_name()
    clean = " ".join(normalised.split())
    if not 0 < len(clean) <= MAX_NAME_LENGTH:
        raise ClassroomError.invalid_name()
    return clean


def _checked_schedule(start: object, end: object) -> tuple[datetime, datetime]:
    """Aware datetimes, end after start, at most :data:`MAX_LESSON_LENGTH` apart; stored as
    UTC to the second (join links sign the end time in whole seconds)."""
    max_hours = int(MAX_LESSON_LENGTH.total_seconds() // 3600)
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise ClassroomError.invalid_schedule(max_hours)
    if start.tzinfo is None or end.tzinfo is None or start.utcoffset() is None:
        raise ClassroomError.invalid_schedule(max_hours)
    start = start.astimezone(UTC).replace(microsecond=0)
    end = end.astimezone(UTC).replace(microsecond=0)
    if not timedelta(0) < end - start <= MAX_LESSON_LENGTH:
        raise ClassroomError.invalid_schedule(max_hours)
    return start, end


def looks_like_id(value: object) -> bool:
    """Ids of lessons, users, classes and roster entries are UUIDs we issued; anything else is
    never looked up (and never reaches SQL)."""
    return _looks_like_id(value)


def _has_forbidden(text: str, categories: tuple[str, ...]) -> bool:
    return any(unicodedata.category(char) in categories for char in text)


def _normalise_code(code: object) -> str | None:
    """The code as typed, minus spaces and dashes (codes are shown as "123 456 789"), or None
    when it cannot be a code at all."""
    if not isinstance(code, str) or len(code) > 4 * CODE_DIGITS:
        return None
    digits = "".join(code.split()).replace("-", "")
    return digits if _CODE_PATTERN.fullmatch(digits) else None


def _new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _looks_like_id(lesson_id: object) -> bool:
    """Lesson ids are UUIDs we issued; anything else is not looked up (and never reaches SQL)."""
    return isinstance(lesson_id, str) and _UUID_PATTERN.fullmatch(lesson_id) is not None
