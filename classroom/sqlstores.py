"""SQL implementations of the records ports: accounts, rosters, links, attendance, reports,
safety (audit log, bans, incidents).

SQLAlchemy Core over the tables in ``classroom.tables``; one transaction per method, committed
before the method returns. The same statements run on SQLite and PostgreSQL: where the two
differ (``INSERT … ON CONFLICT``) the dialect's own ``insert`` is chosen.

A method that reads and then writes on SQLite opens its transaction with ``BEGIN IMMEDIATE``
(taking the write lock first), so that two processes doing it at once queue behind
``busy_timeout`` instead of one failing when it tries to upgrade a stale read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from classroom.accounts import (
    ClassNameTaken,
    SchoolClass,
    User,
    UsernameTaken,
    UserRecord,
    UserRole,
)
from classroom.attendance import (
    OPENING_KINDS,
    PRESENCE_KINDS,
    AttendanceEvent,
    NewEvent,
)
from classroom.links import JoinLink
from classroom.reports import FrozenReport
from classroom.rosters import ImportResult, RosterEntry, RosterRow
from classroom.safety import (
    Action,
    Ban,
    Incident,
    IncidentCategory,
    ModerationEntry,
    NewAction,
    Party,
    encode_json,
)
from classroom.tables import (
    attendance_events,
    class_teachers,
    classes,
    incidents,
    join_links,
    lesson_bans,
    lesson_reports,
    moderation_actions,
    node_heartbeats,
    roster_entries,
    server_secrets,
    user_sessions,
    users,
)

SQLITE_BEGIN_OPTION: Final = "lophoc_sqlite_begin"
"""Execution option read by the SQLite ``begin`` listener in ``classroom.storage``."""


def _insert(engine: AsyncEngine, table: Any) -> Any:
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@asynccontextmanager
async def _writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read-then-write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            await connection.execution_options(**{SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        async with connection.begin():
            yield connection


# --- accounts -----------------------------------------------------------------------------------


class SqlAccountStore:
    """:class:`classroom.accounts.AccountStore` in SQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add_user(self, record: UserRecord) -> None:
        user = record.user
        statement = (
            _insert(self._engine, users)
            .values(
                id=user.id,
                username=user.username,
                full_name=user.full_name,
                role=user.role,
                password_hash=record.password_hash,
                created_at=user.created_at,
                disabled_at=user.disabled_at,
            )
            .on_conflict_do_nothing(index_elements=[users.c.username])
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise UsernameTaken(user.username)

    async def user_by_username(self, username: str) -> UserRecord | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(users).where(users.c.username == username))
            ).first()
        return UserRecord(_user(row), row.password_hash) if row is not None else None

    async def user_by_id(self, user_id: str) -> User | None:
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row is not None else None

    async def users(self, role: UserRole | None = None) -> list[User]:
        statement = select(users).order_by(users.c.username)
        if role is not None:
            statement = statement.where(users.c.role == role)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_user(row) for row in rows]

    async def add_session(
        self, token_hash: str, user_id: str, created_at: datetime, expires_at: datetime
    ) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                user_sessions.insert().values(
                    token_hash=token_hash,
                    user_id=user_id,
                    created_at=created_at,
                    expires_at=expires_at,
                )
            )

    async def session_user(self, token_hash: str, now: datetime) -> User | None:
        statement = (
            select(users)
            .join(user_sessions, user_sessions.c.user_id == users.c.id)
            .where(
                user_sessions.c.token_hash == token_hash,
                user_sessions.c.expires_at > now,
                users.c.disabled_at.is_(None),
            )
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        return _user(row) if row is not None else None

    async def delete_session(self, token_hash: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(user_sessions).where(user_sessions.c.token_hash == token_hash)
            )

    async def delete_sessions_of(self, user_id: str) -> int:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(user_sessions).where(user_sessions.c.user_id == user_id)
            )
        return int(result.rowcount or 0)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(users).where(users.c.id == user_id).values(password_hash=password_hash)
            )

    async def set_disabled(self, user_id: str, disabled_at: datetime | None) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(users).where(users.c.id == user_id).values(disabled_at=disabled_at)
            )

    async def delete_expired_sessions(self, now: datetime) -> int:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(user_sessions).where(user_sessions.c.expires_at <= now)
            )
        return int(result.rowcount)

    async def add_class(self, school_class: SchoolClass) -> None:
        statement = (
            _insert(self._engine, classes)
            .values(
                id=school_class.id,
                name=school_class.name,
                created_at=school_class.created_at,
            )
            .on_conflict_do_nothing(index_elements=[classes.c.name])
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
            if result.rowcount == 0:
                raise ClassNameTaken(school_class.name)
            for teacher_id in school_class.teacher_ids:
                await connection.execute(
                    class_teachers.insert().values(class_id=school_class.id, teacher_id=teacher_id)
                )

    async def class_by_id(self, class_id: str) -> SchoolClass | None:
        found = await self._classes(classes.c.id == class_id)
        return found[0] if found else None

    async def class_by_name(self, name: str) -> SchoolClass | None:
        found = await self._classes(classes.c.name == name)
        return found[0] if found else None

    async def classes(self, teacher_id: str | None = None) -> list[SchoolClass]:
        if teacher_id is None:
            return await self._classes(None)
        taught = select(class_teachers.c.class_id).where(class_teachers.c.teacher_id == teacher_id)
        return await self._classes(classes.c.id.in_(taught))

    async def assign_teacher(self, class_id: str, teacher_id: str) -> None:
        statement = (
            _insert(self._engine, class_teachers)
            .values(class_id=class_id, teacher_id=teacher_id)
            .on_conflict_do_nothing()
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def _classes(self, condition: Any) -> list[SchoolClass]:
        statement = select(classes).order_by(classes.c.name)
        if condition is not None:
            statement = statement.where(condition)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
            ids = [row.id for row in rows]
            teachers: dict[str, list[str]] = {class_id: [] for class_id in ids}
            if ids:
                pairs = await connection.execute(
                    select(class_teachers.c.class_id, class_teachers.c.teacher_id)
                    .where(class_teachers.c.class_id.in_(ids))
                    .order_by(class_teachers.c.teacher_id)
                )
                for class_id, teacher_id in pairs:
                    teachers[class_id].append(teacher_id)
        return [
            SchoolClass(row.id, row.name, row.created_at, tuple(teachers[row.id])) for row in rows
        ]


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        username=row.username,
        full_name=row.full_name,
        role=row.role,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


# --- rosters ------------------------------------------------------------------------------------


class SqlRosterStore:
    """:class:`classroom.rosters.RosterStore` in SQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def roster(self, class_id: str, *, include_withdrawn: bool = False) -> list[RosterEntry]:
        statement = (
            select(roster_entries)
            .where(roster_entries.c.class_id == class_id)
            .order_by(roster_entries.c.student_code)
        )
        if not include_withdrawn:
            statement = statement.where(roster_entries.c.withdrawn_at.is_(None))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_entry(row) for row in rows]

    async def import_rows(
        self,
        class_id: str,
        rows: Sequence[RosterRow],
        now: datetime,
        *,
        withdraw_missing: bool,
    ) -> ImportResult:
        added = updated = unchanged = withdrawn = 0
        async with _writing(self._engine) as connection:
            existing = {
                row.student_code: row
                for row in await connection.execute(
                    select(roster_entries).where(roster_entries.c.class_id == class_id)
                )
            }
            for row in rows:
                current = existing.get(row.student_code)
                if current is None:
                    await connection.execute(
                        roster_entries.insert().values(
                            id=str(uuid.uuid4()),
                            class_id=class_id,
                            student_code=row.student_code,
                            full_name=row.full_name,
                            parent_contact=row.parent_contact,
                            created_at=now,
                            updated_at=now,
                            withdrawn_at=None,
                        )
                    )
                    added += 1
                elif (
                    current.full_name != row.full_name
                    or current.parent_contact != row.parent_contact
                    or current.withdrawn_at is not None
                ):
                    await connection.execute(
                        update(roster_entries)
                        .where(roster_entries.c.id == current.id)
                        .values(
                            full_name=row.full_name,
                            parent_contact=row.parent_contact,
                            withdrawn_at=None,
                            updated_at=now,
                        )
                    )
                    updated += 1
                else:
                    unchanged += 1
            if withdraw_missing:
                in_file = {row.student_code for row in rows}
                gone = [
                    entry.id
                    for code, entry in existing.items()
                    if code not in in_file and entry.withdrawn_at is None
                ]
                if gone:
                    await connection.execute(
                        update(roster_entries)
                        .where(roster_entries.c.id.in_(gone))
                        .values(withdrawn_at=now, updated_at=now)
                    )
                withdrawn = len(gone)
        return ImportResult(added, updated, unchanged, withdrawn)


def _entry(row: Row[Any]) -> RosterEntry:
    return RosterEntry(
        id=row.id,
        class_id=row.class_id,
        student_code=row.student_code,
        full_name=row.full_name,
        parent_contact=row.parent_contact,
        created_at=row.created_at,
        updated_at=row.updated_at,
        withdrawn_at=row.withdrawn_at,
    )


# --- join links ---------------------------------------------------------------------------------

_LIVE_LINK: Final = join_links.c.revoked_at.is_(None)


class SqlLinkStore:
    """:class:`classroom.links.LinkStore` in SQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def issue_missing(
        self,
        lesson_id: str,
        class_id: str,
        issued_at: datetime,
        expires_at: datetime,
        new_id: Callable[[], str],
    ) -> None:
        has_link = exists().where(
            join_links.c.lesson_id == lesson_id,
            join_links.c.roster_entry_id == roster_entries.c.id,
        )
        async with _writing(self._engine) as connection:
            entry_ids = (
                await connection.execute(
                    select(roster_entries.c.id).where(
                        roster_entries.c.class_id == class_id,
                        roster_entries.c.withdrawn_at.is_(None),
                        ~has_link,
                    )
                )
            ).scalars()
            for entry_id in list(entry_ids):
                await connection.execute(
                    self._new_link(new_id(), lesson_id, entry_id, issued_at, expires_at)
                )

    async def links(self, lesson_id: str) -> list[JoinLink]:
        statement = (
            self._select()
            .where(join_links.c.lesson_id == lesson_id)
            .order_by(
                roster_entries.c.student_code,
                join_links.c.revoked_at.is_(None),  # a student's revoked links first
                join_links.c.issued_at,
                join_links.c.id,
            )
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_link(row) for row in rows]

    async def link(self, link_id: str) -> JoinLink | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(self._select().where(join_links.c.id == link_id))
            ).first()
        return _link(row) if row is not None else None

    async def revoke(self, link_id: str, revoked_at: datetime, revoked_by: str | None) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(join_links)
                .where(join_links.c.id == link_id, _LIVE_LINK)
                .values(revoked_at=revoked_at, revoked_by=revoked_by)
            )

    async def reissue(
        self, link_id: str, new_link_id: str, at: datetime, by: str | None
    ) -> JoinLink | None:
        async with _writing(self._engine) as connection:
            old = (
                await connection.execute(select(join_links).where(join_links.c.id == link_id))
            ).first()
            if old is None:
                return None
            await connection.execute(
                update(join_links)
                .where(join_links.c.id == link_id, _LIVE_LINK)
                .values(revoked_at=at, revoked_by=by)
            )
            await connection.execute(
                self._new_link(new_link_id, old.lesson_id, old.roster_entry_id, at, old.expires_at)
            )
            row = (
                await connection.execute(
                    self._select().where(
                        join_links.c.lesson_id == old.lesson_id,
                        join_links.c.roster_entry_id == old.roster_entry_id,
                        _LIVE_LINK,
                    )
                )
            ).first()
        return _link(row) if row is not None else None

    def _new_link(
        self,
        link_id: str,
        lesson_id: str,
        roster_entry_id: str,
        issued_at: datetime,
        expires_at: datetime,
    ) -> Any:
        # The partial unique index makes a concurrent second issue a no-op, not an error.
        return (
            _insert(self._engine, join_links)
            .values(
                id=link_id,
                lesson_id=lesson_id,
                roster_entry_id=roster_entry_id,
                issued_at=issued_at,
                expires_at=expires_at,
                revoked_at=None,
                revoked_by=None,
            )
            .on_conflict_do_nothing(
                index_elements=[join_links.c.lesson_id, join_links.c.roster_entry_id],
                index_where=_LIVE_LINK,
            )
        )

    @staticmethod
    def _select() -> Any:
        return select(
            join_links,
            roster_entries.c.student_code,
            roster_entries.c.full_name,
            roster_entries.c.withdrawn_at,
        ).join(roster_entries, roster_entries.c.id == join_links.c.roster_entry_id)


def _link(row: Row[Any]) -> JoinLink:
    return JoinLink(
        id=row.id,
        lesson_id=row.lesson_id,
        roster_entry_id=row.roster_entry_id,
        student_code=row.student_code,
        full_name=row.full_name,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        student_withdrawn=row.withdrawn_at is not None,
    )


# --- attendance ---------------------------------------------------------------------------------


class SqlAttendanceStore:
    """:class:`classroom.attendance.AttendanceStore` in SQL: inserts and selects only."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, event: NewEvent) -> AttendanceEvent:
        statement = (
            _insert(self._engine, attendance_events)
            .values(_event_values(event))
            .returning(*attendance_events.c)
        )
        if event.kind == "joined":
            statement = statement.on_conflict_do_nothing(
                index_elements=[attendance_events.c.lesson_id, attendance_events.c.participant_id],
                index_where=attendance_events.c.kind == "joined",
            )
        async with self._engine.begin() as connection:
            row = (await connection.execute(statement)).first()
            if row is None:  # a retried join: the first one stands
                row = (
                    await connection.execute(
                        select(attendance_events).where(
                            attendance_events.c.lesson_id == event.lesson_id,
                            attendance_events.c.participant_id == event.participant_id,
                            attendance_events.c.kind == "joined",
                        )
                    )
                ).one()
        return _event(row)

    async def events(self, lesson_id: str, *, up_to_id: int | None = None) -> list[AttendanceEvent]:
        statement = (
            select(attendance_events)
            .where(attendance_events.c.lesson_id == lesson_id)
            .order_by(attendance_events.c.id)
        )
        if up_to_id is not None:
            statement = statement.where(attendance_events.c.id <= up_to_id)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_event(row) for row in rows]

    async def record_heartbeat(self, node_id: str, at: datetime) -> None:
        statement = (
            _insert(self._engine, node_heartbeats)
            .values(node_id=node_id, last_heartbeat_at=at)
            .on_conflict_do_update(
                index_elements=[node_heartbeats.c.node_id], set_={"last_heartbeat_at": at}
            )
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def last_heartbeat(self, node_id: str) -> datetime | None:
        async with self._engine.connect() as connection:
            return await self._last_heartbeat(connection, node_id)

    async def close_open_presences(
        self, node_id: str, reason: str, recorded_at: datetime
    ) -> list[AttendanceEvent]:
        opening = attendance_events.alias("opening")
        later = attendance_events.alias("later")
        still_open = (
            select(opening)
            .where(
                opening.c.node_id == node_id,
                opening.c.kind.in_(sorted(OPENING_KINDS)),
                ~exists().where(
                    and_(
                        later.c.lesson_id == opening.c.lesson_id,
                        later.c.participant_id == opening.c.participant_id,
                        later.c.id > opening.c.id,
                        later.c.kind.in_(sorted(PRESENCE_KINDS)),
                    )
                ),
            )
            .order_by(opening.c.id)
        )
        closed: list[AttendanceEvent] = []
        async with _writing(self._engine) as connection:
            openings = (await connection.execute(still_open)).all()
            if not openings:
                return []
            last_known = await self._last_heartbeat(connection, node_id)
            if last_known is None:
                last_known = (
                    await connection.execute(
                        select(func.max(attendance_events.c.at)).where(
                            attendance_events.c.node_id == node_id
                        )
                    )
                ).scalar()
            for row in openings:
                # Never before the opening itself: a join after the last heartbeat lasted 0 s.
                at = row.at if last_known is None else max(row.at, _aware(last_known))
                result = await connection.execute(
                    attendance_events.insert()
                    .values(
                        lesson_id=row.lesson_id,
                        participant_id=row.participant_id,
                        kind="left",
                        role=row.role,
                        roster_entry_id=row.roster_entry_id,
                        guest=row.guest,
                        display_name=row.display_name,
                        node_id=node_id,
                        reason=reason,
                        at=at,
                        recorded_at=recorded_at,
                        recovered=True,
                    )
                    .returning(*attendance_events.c)
                )
                closed.append(_event(result.one()))
        return closed

    @staticmethod
    async def _last_heartbeat(connection: AsyncConnection, node_id: str) -> datetime | None:
        value: datetime | None = (
            await connection.execute(
                select(node_heartbeats.c.last_heartbeat_at).where(
                    node_heartbeats.c.node_id == node_id
                )
            )
        ).scalar()
        return value


def _aware(value: datetime) -> datetime:
    """Belt and braces for aggregate results: always aware UTC, like UTCDateTime."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _event_values(event: NewEvent) -> dict[str, Any]:
    attendee = event.attendee
    return {
        "lesson_id": event.lesson_id,
        "participant_id": event.participant_id,
        "kind": event.kind,
        "role": attendee.role,
        "roster_entry_id": attendee.roster_entry_id,
        "guest": attendee.guest,
        "display_name": attendee.name,
        "node_id": event.node_id,
        "reason": event.reason,
        "at": event.at,
        "recorded_at": event.recorded_at,
        "recovered": event.recovered,
    }


def _event(row: Row[Any]) -> AttendanceEvent:
    return AttendanceEvent(
        id=int(row.id),
        lesson_id=row.lesson_id,
        participant_id=row.participant_id,
        kind=row.kind,
        role=row.role,
        roster_entry_id=row.roster_entry_id,
        guest=bool(row.guest),
        display_name=row.display_name,
        node_id=row.node_id,
        reason=row.reason,
        at=row.at,
        recorded_at=row.recorded_at,
        recovered=bool(row.recovered),
    )


# --- reports and secrets ------------------------------------------------------------------------


class SqlReportStore:
    """:class:`classroom.reports.ReportStore` in SQL: inserts and selects only."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, frozen: FrozenReport) -> bool:
        statement = (
            _insert(self._engine, lesson_reports)
            .values(
                lesson_id=frozen.lesson_id,
                closed_at=frozen.closed_at,
                closed_by=frozen.closed_by,
                last_event_id=frozen.last_event_id,
                body=frozen.body,
                content_hash=frozen.content_hash,
            )
            .on_conflict_do_nothing(index_elements=[lesson_reports.c.lesson_id])
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def get(self, lesson_id: str) -> FrozenReport | None:
        found = await self.for_lessons([lesson_id])
        return found.get(lesson_id)

    async def for_lessons(self, lesson_ids: Sequence[str]) -> dict[str, FrozenReport]:
        if not lesson_ids:
            return {}
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(lesson_reports).where(lesson_reports.c.lesson_id.in_(list(lesson_ids)))
                )
            ).all()
        return {
            row.lesson_id: FrozenReport(
                lesson_id=row.lesson_id,
                closed_at=row.closed_at,
                closed_by=row.closed_by,
                last_event_id=row.last_event_id,
                body=row.body,
                content_hash=row.content_hash,
            )
            for row in rows
        }


class SqlSecretStore:
    """:class:`classroom.links.SecretStore` in SQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, name: str) -> str | None:
        async with self._engine.connect() as connection:
            value: str | None = (
                await connection.execute(
                    select(server_secrets.c.value).where(server_secrets.c.name == name)
                )
            ).scalar_one_or_none()
        return value

    async def delete(self, name: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(delete(server_secrets).where(server_secrets.c.name == name))


# --- safety: audit log, bans, incidents ---------------------------------------------------------


class SqlSafetyStore:
    """:class:`classroom.safety.SafetyStore` in SQL. The audit log and incidents are inserts
    only; a ban is updated once, when it is lifted, in the same transaction as its log row."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append_action(self, entry: NewAction) -> ModerationEntry:
        async with self._engine.begin() as connection:
            return await self._append_action(connection, entry)

    @staticmethod
    async def _append_action(connection: AsyncConnection, entry: NewAction) -> ModerationEntry:
        target = entry.target
        row = (
            await connection.execute(
                moderation_actions.insert()
                .values(
                    lesson_id=entry.lesson_id,
                    at=entry.at,
                    node_id=entry.node_id,
                    actor_participant_id=entry.actor.participant_id,
                    actor_name=entry.actor.name,
                    actor_role=entry.actor.role,
                    action=str(entry.action),
                    target_participant_id=target.participant_id if target else None,
                    target_name=target.name if target else None,
                    target_role=target.role if target else None,
                    target_roster_entry_id=target.roster_entry_id if target else None,
                    reason=entry.reason,
                    detail=entry.detail,
                )
                .returning(*moderation_actions.c)
            )
        ).one()
        return _action(row)

    async def actions(self, lesson_id: str, *, last: int | None = None) -> list[ModerationEntry]:
        statement = select(moderation_actions).where(moderation_actions.c.lesson_id == lesson_id)
        if last is not None:
            statement = statement.order_by(moderation_actions.c.id.desc()).limit(last)
        else:
            statement = statement.order_by(moderation_actions.c.id)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        entries = [_action(row) for row in rows]
        return sorted(entries, key=lambda e: e.id) if last is not None else entries

    async def add_ban(self, ban: Ban, audit: NewAction) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                lesson_bans.insert().values(
                    id=ban.id,
                    lesson_id=ban.lesson_id,
                    participant_id=ban.participant_id,
                    display_name=ban.name,
                    roster_entry_id=ban.roster_entry_id,
                    device_digest=ban.device_digest,
                    banned_at=ban.banned_at,
                    banned_by=ban.banned_by,
                )
            )
            await self._append_action(connection, audit)

    async def lift_ban(
        self, lesson_id: str, ban_id: str, at: datetime, by: str, audit: Callable[[Ban], NewAction]
    ) -> Ban | None:
        async with _writing(self._engine) as connection:
            row = (
                await connection.execute(
                    update(lesson_bans)
                    .where(
                        lesson_bans.c.id == ban_id,
                        lesson_bans.c.lesson_id == lesson_id,
                        lesson_bans.c.lifted_at.is_(None),
                    )
                    .values(lifted_at=at, lifted_by=by)
                    .returning(*lesson_bans.c)
                )
            ).first()
            if row is None:
                return None
            ban = _ban(row)
            await self._append_action(connection, audit(ban))
        return ban

    async def bans(self, lesson_id: str) -> list[Ban]:
        statement = (
            select(lesson_bans)
            .where(lesson_bans.c.lesson_id == lesson_id, lesson_bans.c.lifted_at.is_(None))
            .order_by(lesson_bans.c.banned_at, lesson_bans.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_ban(row) for row in rows]

    async def banned(
        self, lesson_id: str, roster_entry_id: str | None, device_digest: str | None
    ) -> Ban | None:
        who = []
        if roster_entry_id is not None:
            who.append(lesson_bans.c.roster_entry_id == roster_entry_id)
        if device_digest is not None:
            who.append(lesson_bans.c.device_digest == device_digest)
        if not who:
            return None
        statement = (
            select(lesson_bans)
            .where(
                lesson_bans.c.lesson_id == lesson_id,
                lesson_bans.c.lifted_at.is_(None),
                or_(*who),
            )
            .order_by(lesson_bans.c.banned_at)
            .limit(1)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).first()
        return _ban(row) if row is not None else None

    async def add_incident(self, incident: Incident) -> None:
        reporter = incident.reporter
        async with self._engine.begin() as connection:
            await connection.execute(
                incidents.insert().values(
                    id=incident.id,
                    lesson_id=incident.lesson_id,
                    at=incident.at,
                    node_id=incident.node_id,
                    reporter_participant_id=reporter.participant_id,
                    reporter_name=reporter.name,
                    reporter_role=reporter.role,
                    reporter_roster_entry_id=reporter.roster_entry_id,
                    category=str(incident.category),
                    text=incident.text,
                    context=encode_json(incident.context, 1 << 20),
                )
            )

    async def incidents(self, lesson_ids: Sequence[str] | None, *, limit: int) -> list[Incident]:
        statement = select(incidents).order_by(incidents.c.at.desc(), incidents.c.id).limit(limit)
        if lesson_ids is not None:
            if not lesson_ids:
                return []
            statement = statement.where(incidents.c.lesson_id.in_(list(lesson_ids)))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_incident(row) for row in rows]

    async def incident(self, incident_id: str) -> Incident | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(incidents).where(incidents.c.id == incident_id))
            ).first()
        return _incident(row) if row is not None else None


def _party(participant_id: str, name: str, role: str, roster_entry_id: str | None) -> Party:
    return Party(participant_id, name, role, roster_entry_id)


def _action(row: Row[Any]) -> ModerationEntry:
    target = None
    if row.target_participant_id is not None:
        target = _party(
            row.target_participant_id,
            row.target_name,
            row.target_role,
            row.target_roster_entry_id,
        )
    return ModerationEntry(
        id=int(row.id),
        lesson_id=row.lesson_id,
        at=row.at,
        node_id=row.node_id,
        actor=_party(row.actor_participant_id, row.actor_name, row.actor_role, None),
        action=Action(row.action),
        target=target,
        reason=row.reason,
        detail=json.loads(row.detail),
    )


def _ban(row: Row[Any]) -> Ban:
    return Ban(
        id=row.id,
        lesson_id=row.lesson_id,
        participant_id=row.participant_id,
        name=row.display_name,
        roster_entry_id=row.roster_entry_id,
        device_digest=row.device_digest,
        banned_at=row.banned_at,
        banned_by=row.banned_by,
        lifted_at=row.lifted_at,
        lifted_by=row.lifted_by,
    )


def _incident(row: Row[Any]) -> Incident:
    return Incident(
        id=row.id,
        lesson_id=row.lesson_id,
        at=row.at,
        node_id=row.node_id,
        reporter=_party(
            row.reporter_participant_id,
            row.reporter_name,
            row.reporter_role,
            row.reporter_roster_entry_id,
        ),
        category=IncidentCategory(row.category),
        text=row.text,
        context=json.loads(row.context),
    )
