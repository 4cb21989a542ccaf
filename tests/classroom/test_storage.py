"""The SQL lesson store and its migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import StatementError

from classroom.lessons import CodeTaken, Lesson, LessonRecord
from classroom.storage import Database, alembic_config, metadata, open_database
from tests.classroom.conftest import drop_schema, service_url

NOW = datetime(2025, 9, 5, 7, 30, tzinfo=UTC)


def record(code: str = "123456789") -> LessonRecord:
    lesson = Lesson(
        id=str(uuid.uuid4()),
        code=code,
        title="Toán 5A",
        created_at=NOW,
        ended_at=None,
    )
    return LessonRecord(
        lesson=lesson,
        password_hash="$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        teacher_token_hash=uuid.uuid4().hex * 2,
    )


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_state(connection: Connection) -> tuple[str | None, list[object]]:
    current = MigrationContext.configure(connection).get_current_revision()
    return current, compare_metadata(MigrationContext.configure(connection), metadata)


async def test_an_empty_database_is_migrated_to_head(database: Database) -> None:
    async with database.engine.connect() as connection:
        current, differences = await connection.run_sync(schema_state)
    assert current == head_revision()
    assert differences == []


async def test_reopening_a_migrated_database_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/lophoc.sqlite3"
    async with await open_database(url) as first:
        await first.lessons.add(record())
    async with await open_database(url) as second:
        assert await second.lessons.by_code("123456789") is not None


async def test_migrations_go_down_and_up_again(database: Database) -> None:
    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    def migrate(connection: Connection, direction: str, revision: str) -> None:
        getattr(command, direction)(alembic_config(connection), revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(migrate, "downgrade", "base")
        assert "lessons" not in await connection.run_sync(tables)
        await connection.run_sync(migrate, "upgrade", "head")
        assert "lessons" in await connection.run_sync(tables)


async def test_sqlite_file_is_durable_and_its_directory_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lophoc.sqlite3"
    async with await open_database(f"sqlite:///{path}") as db:
        assert db.engine.url.drivername == "sqlite+aiosqlite"
        async with db.engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert (await pragma("PRAGMA journal_mode")).scalar() == "wal"
            assert (await pragma("PRAGMA synchronous")).scalar() == 2  # FULL
            assert (await pragma("PRAGMA foreign_keys")).scalar() == 1
            assert (await pragma("PRAGMA busy_timeout")).scalar() == 5000
    assert path.exists()


@pytest.mark.postgres
async def test_postgres_commits_synchronously_in_its_own_schema() -> None:
    url = service_url("LOPHOC_TEST_POSTGRES_URL", "a PostgreSQL database")
    schema = f"lophoc_test_{uuid.uuid4().hex[:16]}"
    try:
        async with await open_database(url.replace("+asyncpg", ""), schema=schema) as db:
            assert db.engine.url.drivername == "postgresql+asyncpg"
            async with db.engine.connect() as connection:
                show = connection.exec_driver_sql
                assert (await show("SHOW synchronous_commit")).scalar() == "on"
                assert (await show("SELECT current_schema()")).scalar() == schema
                tables = await connection.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                    ),
                    {"s": schema},
                )
                assert set(tables.scalars()) == {*metadata.tables, "alembic_version"}
    finally:
        await drop_schema(url, schema)


@pytest.mark.parametrize("schema", ["Public", "a-b", "x; DROP TABLE lessons", ""])
async def test_schema_names_are_checked(schema: str) -> None:
    url = os.environ.get("LOPHOC_TEST_POSTGRES_URL", "postgresql+asyncpg://nobody@127.0.0.1/x")
    with pytest.raises(ValueError):
        await open_database(url, schema=schema)


async def test_sqlite_has_no_schemas(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await open_database(f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3", schema="lophoc")


async def test_other_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        await open_database("mysql+aiomysql://root@127.0.0.1/lophoc")


async def test_records_round_trip(database: Database) -> None:
    stored = record()
    await database.lessons.add(stored)
    assert await database.lessons.by_id(stored.lesson.id) == stored
    assert await database.lessons.by_code(stored.lesson.code) == stored
    assert await database.lessons.by_teacher_token_hash(stored.teacher_token_hash) == stored
    assert await database.lessons.by_code("999999999") is None
    assert await database.lessons.by_id(str(uuid.uuid4())) is None
    assert await database.lessons.by_teacher_token_hash("0" * 64) is None


async def test_times_come_back_aware_and_in_utc(database: Database) -> None:
    hanoi = timezone(timedelta(hours=7))
    stored = record()
    stored = LessonRecord(
        lesson=Lesson(
            id=stored.lesson.id,
            code=stored.lesson.code,
            title=stored.lesson.title,
            created_at=NOW.astimezone(hanoi),
            ended_at=None,
        ),
        password_hash=stored.password_hash,
        teacher_token_hash=stored.teacher_token_hash,
    )
    await database.lessons.add(stored)
    loaded = await database.lessons.by_id(stored.lesson.id)
    assert loaded is not None
    assert loaded.lesson.created_at == NOW
    assert loaded.lesson.created_at.utcoffset() == timedelta(0)


async def test_naive_times_are_refused(database: Database) -> None:
    stored = record()
    naive = LessonRecord(
        lesson=Lesson(
            id=stored.lesson.id,
            code=stored.lesson.code,
            title=stored.lesson.title,
            created_at=NOW.replace(tzinfo=None),
            ended_at=None,
        ),
        password_hash=stored.password_hash,
        teacher_token_hash=stored.teacher_token_hash,
    )
    with pytest.raises(StatementError, match="naive"):
        await database.lessons.add(naive)


async def test_a_taken_code_is_reported_and_nothing_is_written(database: Database) -> None:
    first, second = record("111222333"), record("111222333")
    await database.lessons.add(first)
    with pytest.raises(CodeTaken):
        await database.lessons.add(second)
    assert await database.lessons.by_id(second.lesson.id) is None
    assert await database.lessons.by_code("111222333") == first


async def test_ending_is_stored_once(database: Database) -> None:
    stored = record()
    await database.lessons.add(stored)
    ended = await database.lessons.mark_ended(stored.lesson.id, NOW + timedelta(minutes=45))
    assert ended is not None
    assert ended.ended_at == NOW + timedelta(minutes=45)
    again = await database.lessons.mark_ended(stored.lesson.id, NOW + timedelta(hours=2))
    assert again == ended
    assert await database.lessons.mark_ended(str(uuid.uuid4()), NOW) is None


async def test_records_survive_reopening(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/lophoc.sqlite3"
    stored = record()
    async with await open_database(url) as db:
        await db.lessons.add(stored)
    async with await open_database(url) as db:
        assert await db.lessons.by_id(stored.lesson.id) == stored
