"""Administration without the web: what ``lophoc admin …`` does, as plain async functions.

Each function takes the :class:`~classroom.records.Records` of an open database and names
classes and teachers the way an administrator types them (class name, username) rather than
by id. Errors are the usual :class:`~classroom.errors.ClassroomError`; the command line prints
their messages (and, for a bad roster, every bad line).

The first administrator can only be created here, on the server itself: the HTTP API needs an
administrator's session to create anyone.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from classroom.accounts import SchoolClass, User, UserRole
from classroom.errors import ClassroomError
from classroom.passwords import PasswordHasher
from classroom.ratelimit import MemoryFailureLimiter
from classroom.records import Records, open_records
from classroom.rosters import MAX_ROSTER_BYTES, ImportResult

__all__ = [
    "MAX_ROSTER_BYTES",
    "ClassSummary",
    "Records",
    "admin_records",
    "assign_teacher",
    "class_named",
    "create_class",
    "create_user",
    "export_roster",
    "import_roster",
    "list_classes",
    "list_teachers",
    "preview_roster",
]
from classroom.storage import open_database


@asynccontextmanager
async def admin_records(
    database_url: str, *, link_key_file: Path | None = None, hasher: PasswordHasher | None = None
) -> AsyncIterator[Records]:
    """Open (and migrate) the database and build the records services for one command.
    ``link_key_file``: the server's join-link key (:func:`classroom.links.load_link_secret`);
    by default ``link.key`` beside an SQLite file, as ``lophoc serve`` keeps it."""
    if link_key_file is None:
        sqlite_file = make_url(database_url).database
        if make_url(database_url).get_backend_name() == "sqlite" and sqlite_file:
            link_key_file = Path(sqlite_file).parent / "link.key"
    async with await open_database(database_url) as database:
        yield await open_records(
            database,
            MemoryFailureLimiter(),
            hasher=hasher,
            link_secret=os.environ.get("LOPHOC_LINK_SECRET") or None,
            link_key_file=link_key_file,
        )


async def create_user(
    records: Records, username: str, full_name: str, password: str, role: UserRole
) -> User:
    return await records.accounts.create_user(username, full_name, password, role)


async def create_class(
    records: Records, name: str, teacher_usernames: Sequence[str] = ()
) -> SchoolClass:
    return await records.accounts.create_class(name, teacher_usernames)


async def assign_teacher(records: Records, class_name: str, username: str) -> SchoolClass:
    school_class = await class_named(records, class_name)
    return await records.accounts.assign_teacher(school_class.id, username)


async def import_roster(
    records: Records, class_name: str, data: bytes, *, withdraw_missing: bool = False
) -> ImportResult:
    school_class = await class_named(records, class_name)
    return await records.rosters.import_csv(
        school_class.id, data, withdraw_missing=withdraw_missing
    )


async def preview_roster(
    records: Records, class_name: str, data: bytes, *, withdraw_missing: bool = False
) -> dict[str, Any]:
    """The dry run of :func:`import_roster` (see :meth:`RosterService.preview`)."""
    school_class = await class_named(records, class_name)
    return await records.rosters.preview(school_class.id, data, withdraw_missing=withdraw_missing)


async def export_roster(records: Records, class_name: str) -> bytes:
    school_class = await class_named(records, class_name)
    return await records.rosters.export_csv(school_class.id)


async def list_teachers(records: Records) -> list[User]:
    return await records.accounts.teachers()


@dataclass(frozen=True, slots=True)
class ClassSummary:
    school_class: SchoolClass
    teachers: tuple[str, ...]
    """Usernames."""
    students: int


async def list_classes(records: Records) -> list[ClassSummary]:
    users = {user.id: user.username for user in await records.accounts.users()}
    summaries = []
    for school_class in await records.accounts.all_classes():
        students = await records.rosters.entries(school_class.id)
        summaries.append(
            ClassSummary(
                school_class,
                tuple(sorted(users.get(tid, "?") for tid in school_class.teacher_ids)),
                len(students),
            )
        )
    return summaries


async def class_named(records: Records, name: str) -> SchoolClass:
    school_class = await records.accounts.class_by_name(name)
    if school_class is None:
        raise ClassroomError.not_found()
    return school_class
