"""Accounts: the school's administrators and teachers, their logins, and the classes.

One server is one school. Its people:

* **administrators** create teachers and classes, import rosters and read every report;
* **teachers** log in, schedule lessons for the classes they teach, hand out personal join
  links and read and close their lessons' reports.

Students have no password: they are roster entries (``classroom.rosters``) and reach a lesson
by a personal join link (``classroom.links``).

Why these choices:

* **Passwords** use the same Argon2id :class:`~classroom.passwords.PasswordHasher` as lesson
  passwords; only the encoded hash is stored.
* **Logins are rate limited** with the shared :class:`~classroom.ratelimit.FailureLimiter`,
  charged before the password is checked and refunded on success, per (username, address) and
  per address. There is deliberately no limit per username alone: anyone could then lock a
  teacher out of their account from the other side of the city: a teacher is never locked out
  by someone else's failures. An unknown user verifies a dummy hash, so it is
  indistinguishable from a wrong password (no enumeration).
* **Sessions** are 256-bit random tokens; only their SHA-256 is stored, so a copy of the
  database logs nobody in. They expire a fixed :data:`SESSION_LIFETIME` after login (a school
  day), whatever happens in between: a session left open on a staff-room computer ends.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, Protocol

from classroom.errors import ClassroomError
from classroom.lessons import looks_like_id, normalise_name
from classroom.passwords import PasswordHasher, token_digest
from classroom.ratelimit import FailureLimiter, Limit, Refusal, Rule, address_bucket

log = logging.getLogger(__name__)

UserRole = Literal["admin", "teacher"]
USER_ROLES: Final[tuple[UserRole, ...]] = ("admin", "teacher")

SESSION_LIFETIME: Final = timedelta(hours=12)
MAX_CLASS_NAME_LENGTH: Final = 64
_USERNAME: Final = re.compile(r"[a-z][a-z0-9._-]{2,31}")
_MAX_USERNAME_INPUT: Final = 64
_MAX_TOKEN_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class User:
    """An administrator or a teacher. Times are timezone-aware UTC."""

    id: str
    username: str
    full_name: str
    role: UserRole
    created_at: datetime
    disabled_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as stored: the public part plus the password hash."""

    user: User
    password_hash: str

    def __repr__(self) -> str:
        return f"UserRecord(user={self.user!r}, password_hash='…')"


@dataclass(frozen=True, slots=True)
class LoginSession:
    """A fresh login: the session token exists in clear only in this object."""

    token: str
    user: User
    expires_at: datetime

    def __repr__(self) -> str:
        return f"LoginSession(token='…', user={self.user!r}, expires_at={self.expires_at!r})"


@dataclass(frozen=True, slots=True)
class SchoolClass:
    """A class ("lớp 5A") and the teachers who teach it."""

    id: str
    name: str
    created_at: datetime
    teacher_ids: tuple[str, ...] = ()


class UsernameTaken(Exception):
    """Raised by :meth:`AccountStore.add_user` when the username is in use."""


class ClassNameTaken(Exception):
    """Raised by :meth:`AccountStore.add_class` when the class name is in use."""


class AccountStore(Protocol):
    """Durable users, sessions and classes. Every write is committed before returning."""

    async def add_user(self, record: UserRecord) -> None: ...

    async def user_by_username(self, username: str) -> UserRecord | None: ...

    async def user_by_id(self, user_id: str) -> User | None: ...

    async def users(self, role: UserRole | None = None) -> list[User]:
        """Users by username, optionally of one role."""
        ...

    async def add_session(
        self, token_hash: str, user_id: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    async def session_user(self, token_hash: str, now: datetime) -> User | None:
        """The user of an unexpired session whose account is not disabled, else None."""
        ...

    async def delete_session(self, token_hash: str) -> None: ...

    async def delete_sessions_of(self, user_id: str) -> int:
        """End every session of one user; how many there were."""
        ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def set_disabled(self, user_id: str, disabled_at: datetime | None) -> None: ...

    async def delete_expired_sessions(self, now: datetime) -> int: ...

    async def add_class(self, school_class: SchoolClass) -> None:
        """Store a class and its teachers; raise :class:`ClassNameTaken` on a name in use."""
        ...

    async def class_by_id(self, class_id: str) -> SchoolClass | None: ...

    async def class_by_name(self, name: str) -> SchoolClass | None: ...

    async def classes(self, teacher_id: str | None = None) -> list[SchoolClass]:
        """Classes by name; with ``teacher_id``, only the ones that teacher teaches."""
        ...

    async def assign_teacher(self, class_id: str, teacher_id: str) -> None:
        """Make a teacher one of the class's teachers (idempotent)."""
        ...


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins allowed; see the module docstring for why there is no per-user limit."""

    per_user_and_address: Limit = field(default_factory=lambda: Limit(5, 60))
    per_address: Limit = field(default_factory=lambda: Limit(20, 60))

    def rules_for(self, username: str | None, client_address: str) -> tuple[Rule, ...]:
        """``username=None``: not even a possible username, so only the address is charged."""
        address = address_bucket(client_address)
        rules = [Rule(f"login-address:{address}", self.per_address)]
        if username is not None:
            rules.append(Rule(f"login:{username}:{address}", self.per_user_and_address))
        return tuple(rules)


def _now() -> datetime:
    return datetime.now(UTC)


class AccountService:
    """Creating accounts and classes, logging in and out, and who may see what."""

    def __init__(
        self,
        store: AccountStore,
        limiter: FailureLimiter,
        *,
        hasher: PasswordHasher | None = None,
        limits: LoginLimits | None = None,
        clock: Callable[[], datetime] = _now,
        session_lifetime: timedelta = SESSION_LIFETIME,
    ) -> None:
        if session_lifetime <= timedelta(0):
            raise ValueError("sessions must last a positive time")
        self._store = store
        self._limiter = limiter
        self._hasher = hasher if hasher is not None else PasswordHasher()
        self._limits = limits if limits is not None else LoginLimits()
        self._clock = clock
        self._session_lifetime = session_lifetime

    # -- users -----------------------------------------------------------------------------

    async def create_user(
        self, username: object, full_name: object, password: str, role: UserRole
    ) -> User:
        """Create an administrator or a teacher.

        Raises ``invalid_username``, ``invalid_name``, ``weak_password`` or
        ``username_taken``.
        """
        if role not in USER_ROLES:
            raise ValueError("role is 'admin' or 'teacher'")
        name = normalise_username(username)
        if name is None:
            raise ClassroomError.invalid_username()
        clean_full_name = normalise_name(full_name)
        password_hash = await self._hasher.hash(password)
        user = User(
            id=str(uuid.uuid4()),
            username=name,
            full_name=clean_full_name,
            role=role,
            created_at=self._clock(),
        )
        try:
            await self._store.add_user(UserRecord(user, password_hash))
        except UsernameTaken:
            raise ClassroomError.username_taken() from None
        log.info("%s account %s created", role, user.id)
        return user

    async def teachers(self) -> list[User]:
        return await self._store.users("teacher")

    async def users(self) -> list[User]:
        return await self._store.users()

    async def user_by_username(self, username: object) -> User | None:
        name = normalise_username(username)
        if name is None:
            return None
        record = await self._store.user_by_username(name)
        return record.user if record is not None else None

    async def user_by_id(self, user_id: str) -> User | None:
        if not looks_like_id(user_id):
            return None
        return await self._store.user_by_id(user_id)

    async def reset_password(self, username: object, new_password: str) -> User:
        """Give an account a new password (an administrator's act, for a teacher who forgot
        hers); every open session of the account ends, wherever it was opened.

        Raises ``not_found`` or ``weak_password``."""
        record = await self._record(username)
        password_hash = await self._hasher.hash(new_password)
        await self._store.set_password_hash(record.user.id, password_hash)
        ended = await self._store.delete_sessions_of(record.user.id)
        log.info("password of %s reset; %d sessions ended", record.user.id, ended)
        return record.user

    async def disable_user(self, username: object, by: User | None) -> User:
        """Disable an account: it can no longer log in, and its sessions end at once. Its
        records (classes, lessons, reports) stay. ``by``: the administrator, or None for the
        server's command line. Raises ``not_found``, ``cannot_disable_self`` or
        ``last_admin``."""
        record = await self._record(username)
        user = record.user
        if by is not None and user.id == by.id:
            raise ClassroomError.cannot_disable_self()
        if user.disabled_at is not None:
            return user
        if user.is_admin:
            active = [u for u in await self._store.users("admin") if u.disabled_at is None]
            if len(active) <= 1:
                raise ClassroomError.last_admin()
        now = self._clock()
        await self._store.set_disabled(user.id, now)
        ended = await self._store.delete_sessions_of(user.id)
        who = by.id if by is not None else "the command line"
        log.info("account %s disabled by %s; %d sessions ended", user.id, who, ended)
        return dataclasses.replace(user, disabled_at=now)

    async def enable_user(self, username: object) -> User:
        """Let a disabled account log in again (with its password). Raises ``not_found``."""
        record = await self._record(username)
        if record.user.disabled_at is None:
            return record.user
        await self._store.set_disabled(record.user.id, None)
        log.info("account %s enabled", record.user.id)
        return dataclasses.replace(record.user, disabled_at=None)

    async def _record(self, username: object) -> UserRecord:
        name = normalise_username(username)
        record = await self._store.user_by_username(name) if name is not None else None
        if record is None:
            raise ClassroomError.not_found()
        return record

    # -- sessions --------------------------------------------------------------------------

    async def login(self, username: object, password: object, client_address: str) -> LoginSession:
        """Check a username and password and open a session.

        Same order as guest joins: charge the limiter, then verify (a dummy hash for an unknown
        user), refund on success. Unknown user, disabled account and wrong password are all
        ``bad_login``; while limited, even the right password gets ``rate_limited``.
        """
        name = normalise_username(username)
        outcome = await self._limiter.charge(self._limits.rules_for(name, client_address))
        if isinstance(outcome, Refusal):
            log.info("login refused: rate limited (retry after %ss)", outcome.retry_after)
            raise ClassroomError.rate_limited(outcome.retry_after)
        record = await self._store.user_by_username(name) if name is not None else None
        matches = await self._hasher.verify(
            record.password_hash if record is not None else None,
            password if isinstance(password, str) else "",
        )
        if record is None or not matches or record.user.disabled_at is not None:
            log.info("login refused: bad username or password")
            raise ClassroomError.bad_login()
        await self._limiter.refund(outcome)
        token = secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = now + self._session_lifetime
        await self._store.delete_expired_sessions(now)
        await self._store.add_session(token_digest(token), record.user.id, now, expires_at)
        log.info("user %s logged in", record.user.id)
        return LoginSession(token, record.user, expires_at)

    async def authenticate(self, token: object) -> User:
        """The user of a live session, else ``not_authenticated``."""
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_LENGTH:
            raise ClassroomError.not_authenticated()
        user = await self._store.session_user(token_digest(token), self._clock())
        if user is None:
            raise ClassroomError.not_authenticated()
        return user

    async def logout(self, token: object) -> None:
        """End a session (idempotent: an unknown token is already logged out)."""
        if isinstance(token, str) and 0 < len(token) <= _MAX_TOKEN_LENGTH:
            await self._store.delete_session(token_digest(token))

    # -- classes ---------------------------------------------------------------------------

    async def create_class(
        self, name: object, teacher_usernames: Sequence[str] = ()
    ) -> SchoolClass:
        """Create a class, optionally with its teachers.

        Raises ``invalid_class_name``, ``class_exists``, or ``not_found`` for a username that
        is not a teacher (then no class is created).
        """
        clean = normalise_class_name(name)
        teacher_ids = tuple(
            dict.fromkeys([(await self._teacher(username)).id for username in teacher_usernames])
        )
        school_class = SchoolClass(str(uuid.uuid4()), clean, self._clock(), teacher_ids)
        try:
            await self._store.add_class(school_class)
        except ClassNameTaken:
            raise ClassroomError.class_exists() from None
        log.info("class %s created", school_class.id)
        return school_class

    async def assign_teacher(self, class_id: str, username: str) -> SchoolClass:
        """Add a teacher to a class; ``not_found`` for an unknown class or teacher."""
        school_class = await self.class_by_id(class_id)
        teacher = await self._teacher(username)
        await self._store.assign_teacher(school_class.id, teacher.id)
        return await self.class_by_id(class_id)

    async def class_by_id(self, class_id: str) -> SchoolClass:
        """The class, or ``not_found``."""
        school_class = await self._store.class_by_id(class_id) if looks_like_id(class_id) else None
        if school_class is None:
            raise ClassroomError.not_found()
        return school_class

    async def class_by_name(self, name: object) -> SchoolClass | None:
        try:
            clean = normalise_class_name(name)
        except ClassroomError:
            return None
        return await self._store.class_by_name(clean)

    async def all_classes(self) -> list[SchoolClass]:
        return await self._store.classes()

    async def classes_for(self, user: User) -> list[SchoolClass]:
        """Every class for an administrator; the classes they teach for a teacher."""
        return await self._store.classes(None if user.is_admin else user.id)

    async def visible_class(self, user: User, class_id: str) -> SchoolClass:
        """The class if ``user`` may see it; ``not_found`` otherwise, so that a teacher
        cannot tell another teacher's class from no class at all."""
        school_class = await self.class_by_id(class_id)
        if not may_see(user, school_class):
            raise ClassroomError.not_found()
        return school_class

    async def _teacher(self, username: str) -> User:
        user = await self.user_by_username(username)
        if user is None or user.role != "teacher":
            raise ClassroomError.not_found()
        return user


def may_see(user: User, school_class: SchoolClass) -> bool:
    """Administrators see every class; teachers the classes they teach."""
    return user.is_admin or may_teach(user, school_class)


def may_teach(user: User, school_class: SchoolClass) -> bool:
    """Only a class's own teachers schedule its lessons and hand out its links."""
    return user.role == "teacher" and user.id in school_class.teacher_ids


def normalise_username(username: object) -> str | None:
    """NFC, stripped, lower-cased; None unless it is 3–32 of ``a-z 0-9 . _ -`` starting with a
    letter. ASCII only on purpose: a username is typed on every kind of keyboard, and two
    spellings of one Vietnamese letter must not be two accounts."""
    if not isinstance(username, str) or len(username) > _MAX_USERNAME_INPUT:
        return None
    clean = unicodedata.normalize("NFC", username).strip().lower()
    return clean if _USERNAME.fullmatch(clean) else None


def normalise_class_name(name: object) -> str:
    """Like a person's name (NFC, no control characters, spaces collapsed), 1–64 characters;
    else ``invalid_class_name``."""
    try:
        return normalise_name(name)
    except ClassroomError:
        raise ClassroomError.invalid_class_name() from None
