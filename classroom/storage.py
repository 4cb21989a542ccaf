"""Durable records in SQL: SQLite by default, PostgreSQL for many nodes.

The tables are in ``classroom.tables``; the stores of the records added with accounts and
attendance are in ``classroom.sqlstores``; the lesson store is here.

:func:`open_database` is the only way in: it creates the engine, makes it durable, and runs the
Alembic migrations in ``classroom/migrations`` to head before anything else can touch the
tables, so code and schema never disagree.

Durability (a join that was acknowledged must survive ``kill -9``; tests/test_crash_recovery.py):

* SQLite: ``journal_mode=WAL`` (readers never block the writer) and ``synchronous=FULL`` (a
  commit is on disk when it returns), ``foreign_keys=ON``, a 5 s ``busy_timeout``, set on every
  new connection. SQLAlchemy, not the sqlite3 module, emits ``BEGIN``, because sqlite3's legacy
  mode does not begin a transaction before DDL: a crash mid-migration could otherwise leave a
  table without its Alembic version.
* PostgreSQL (asyncpg): ``synchronous_commit=on`` is set on each connection rather than trusted
  from the server's configuration.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Row, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from classroom.lessons import CodeTaken, Lesson, LessonRecord
from classroom.sqlstores import (
    SQLITE_BEGIN_OPTION,
    SqlAccountStore,
    SqlAttendanceStore,
    SqlLinkStore,
    SqlReportStore,
    SqlRosterStore,
    SqlSafetyStore,
    SqlSecretStore,
)
from classroom.tables import UTCDateTime, lessons, metadata

__all__ = [
    "Database",
    "SqlLessonStore",
    "UTCDateTime",
    "alembic_config",
    "lessons",
    "metadata",
    "open_database",
]

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")

_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SQLITE_BEGIN_OPTION: Final = SQLITE_BEGIN_OPTION


class SqlLessonStore:
    """:class:`~classroom.lessons.LessonStore` over SQLAlchemy Core; one transaction per call."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, record: LessonRecord) -> None:
        # ON CONFLICT (code) DO NOTHING tells a taken code apart from any other integrity
        # error without parsing driver messages; both dialects support it.
        values = _values(record)
        if self._engine.dialect.name == "postgresql":
            statement: Any = postgresql.insert(lessons).values(values)
        else:
            statement = sqlite.insert(lessons).values(values)
        statement = statement.on_conflict_do_nothing(index_elements=[lessons.c.code])
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise CodeTaken(record.lesson.code)

    async def by_id(self, lesson_id: str) -> LessonRecord | None:
        return await self._one(lessons.c.id == lesson_id)

    async def by_code(self, code: str) -> LessonRecord | None:
        return await self._one(lessons.c.code == code)

    async def by_teacher_token_hash(self, token_hash: str) -> LessonRecord | None:
        return await self._one(lessons.c.teacher_token_hash == token_hash)

    async def mark_ended(self, lesson_id: str, ended_at: datetime) -> Lesson | None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(lessons)
                .where(lessons.c.id == lesson_id, lessons.c.ended_at.is_(None))
                .values(ended_at=ended_at)
            )
            row = (
                await connection.execute(select(lessons).where(lessons.c.id == lesson_id))
            ).first()
        return _record(row).lesson if row is not None else None

    async def class_lessons(
        self,
        class_ids: list[str],
        starting_from: datetime | None = None,
        starting_before: datetime | None = None,
    ) -> list[Lesson]:
        statement = (
            select(lessons)
            .where(lessons.c.class_id.in_(class_ids))
            .order_by(lessons.c.scheduled_start, lessons.c.id)
        )
        if starting_from is not None:
            statement = statement.where(lessons.c.scheduled_start >= starting_from)
        if starting_before is not None:
            statement = statement.where(lessons.c.scheduled_start < starting_before)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [_record(row).lesson for row in rows]

    async def set_teacher_token_hash(self, lesson_id: str, token_hash: str) -> bool:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(lessons)
                .where(lessons.c.id == lesson_id)
                .values(teacher_token_hash=token_hash)
            )
        return bool(result.rowcount)

    async def _one(self, condition: Any) -> LessonRecord | None:
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(lessons).where(condition))).first()
        return _record(row) if row is not None else None


def _values(record: LessonRecord) -> dict[str, Any]:
    lesson = record.lesson
    return {
        "id": lesson.id,
        "code": lesson.code,
        "title": lesson.title,
        "password_hash": record.password_hash,
        "teacher_token_hash": record.teacher_token_hash,
        "created_at": lesson.created_at,
        "ended_at": lesson.ended_at,
        "class_id": lesson.class_id,
        "teacher_id": lesson.teacher_id,
        "scheduled_start": lesson.scheduled_start,
        "scheduled_end": lesson.scheduled_end,
    }


def _record(row: Row[Any]) -> LessonRecord:
    return LessonRecord(
        lesson=Lesson(
            id=row.id,
            code=row.code,
            title=row.title,
            created_at=row.created_at,
            ended_at=row.ended_at,
            class_id=row.class_id,
            teacher_id=row.teacher_id,
            scheduled_start=row.scheduled_start,
            scheduled_end=row.scheduled_end,
        ),
        password_hash=row.password_hash,
        teacher_token_hash=row.teacher_token_hash,
    )


@dataclass(frozen=True, slots=True)
class Database:
    """An open, migrated database and the stores over it. Close it on shutdown."""

    engine: AsyncEngine
    lessons: SqlLessonStore
    accounts: SqlAccountStore
    rosters: SqlRosterStore
    links: SqlLinkStore
    attendance: SqlAttendanceStore
    reports: SqlReportStore
    secrets: SqlSecretStore
    safety: SqlSafetyStore

    async def close(self) -> None:
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def open_database(url: str | URL, *, schema: str | None = None) -> Database:
    """Connect, migrate to head, and return the :class:`Database`.

    ``url`` is ``sqlite+aiosqlite:///path/to/file.sqlite3`` (the directory is created if
    missing) or ``postgresql+asyncpg://user@host/db``; plain ``sqlite://`` and
    ``postgresql://`` get the async driver. ``schema`` (PostgreSQL only) puts lophoc's tables
    in their own schema, created if missing, so lophoc can share a database with other
    applications, and tests can isolate themselves.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise ValueError("schemas are a PostgreSQL feature; use another SQLite file")
        parsed = parsed.set(drivername="sqlite+aiosqlite")
        await _create_sqlite_directory(parsed)
        engine = create_async_engine(parsed)
        _make_sqlite_durable(engine)
    elif backend == "postgresql":
        parsed = parsed.set(drivername="postgresql+asyncpg")
        server_settings = {"synchronous_commit": "on", "application_name": "lophoc"}
        if schema is not None:
            server_settings["search_path"] = _quoted_schema(schema)
        engine = create_async_engine(
            parsed, connect_args={"server_settings": server_settings}, pool_pre_ping=True
        )
    else:
        raise ValueError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
    try:
        await _migrate_to_head(engine, schema)
    except BaseException:
        await engine.dispose()
        raise
    return Database(
        engine=engine,
        lessons=SqlLessonStore(engine),
        accounts=SqlAccountStore(engine),
        rosters=SqlRosterStore(engine),
        links=SqlLinkStore(engine),
        attendance=SqlAttendanceStore(engine),
        reports=SqlReportStore(engine),
        secrets=SqlSecretStore(engine),
        safety=SqlSafetyStore(engine),
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the migrations shipped inside this package.

    With ``connection`` (a sync connection, e.g. inside ``AsyncConnection.run_sync``) the
    migrations run on it, inside its transaction; env.py explains the other way.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def _migrate_to_head(engine: AsyncEngine, schema: str | None) -> None:
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Take the write lock up front: two processes starting at once then queue
            # behind busy_timeout instead of one failing on a stale read snapshot.
            await connection.execution_options(**{_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        async with connection.begin():
            if engine.dialect.name == "postgresql":
                # Nodes starting together migrate one at a time; the lock ends with the
                # transaction.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                    {"key": f"lophoc.migrations:{schema or ''}"},
                )
                if schema is not None:
                    await connection.execute(
                        text(f"CREATE SCHEMA IF NOT EXISTS {_quoted_schema(schema)}")
                    )
            await connection.run_sync(_upgrade_to_head)


def _upgrade_to_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _make_sqlite_durable(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (below); the pragmas must run outside a transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql(
            connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "BEGIN")
        )


async def _create_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    await asyncio.to_thread(Path(database).parent.mkdir, parents=True, exist_ok=True)


def _quoted_schema(schema: str) -> str:
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError("schema names are lower-case letters, digits and underscores")
    return f'"{schema}"'
