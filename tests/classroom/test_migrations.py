"""Migrations 0002 (records) and 0003 (safety) on SQLite and PostgreSQL: from 0001 with data,
down and up again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.exc import DBAPIError

from classroom.attendance import Attendee
from classroom.storage import Database, alembic_config
from classroom.tables import lessons, metadata
from tests.classroom.support import LESSON_START, FakeNow, School

RECORD_TABLES = set(metadata.tables) - {"lessons"}
V1_LESSON_COLUMNS = {
    "id",
    "code",
    "title",
    "password_hash",
    "teacher_token_hash",
    "created_at",
    "ended_at",
}


def migrate(connection: Connection, direction: str, revision: str) -> None:
    getattr(command, direction)(alembic_config(connection), revision)


def shape(connection: Connection) -> tuple[str | None, set[str], set[str]]:
    inspector = inspect(connection)
    return (
        MigrationContext.configure(connection).get_current_revision(),
        set(inspector.get_table_names()),
        {column["name"] for column in inspector.get_columns("lessons")},
    )


async def test_downgrade_to_0001_keeps_lessons_and_upgrade_restores_everything(
    school: School, database: Database, now: FakeNow
) -> None:
    now.set(LESSON_START)
    link = school.links["HS001"]
    await school.records.attendance.joined(
        school.lesson.id, "p_an", Attendee("student", link.full_name, link.roster_entry_id)
    )
    ad_hoc = await school.lessons.create_lesson("Ôn tập", "mật khẩu ôn tập")

    async with database.engine.begin() as connection:
        await connection.run_sync(migrate, "downgrade", "0001")
        revision, tables, columns = await connection.run_sync(shape)
        assert revision == "0001"
        assert tables == {"lessons", "alembic_version"}
        assert columns == V1_LESSON_COLUMNS
        ids = set((await connection.execute(text("SELECT id FROM lessons"))).scalars())
        assert ids == {school.lesson.id, ad_hoc.lesson.id}

        await connection.run_sync(migrate, "upgrade", "head")
        revision, tables, columns = await connection.run_sync(shape)
        assert revision == "0003"
        assert tables == {*metadata.tables, "alembic_version"}
        assert columns == {column.name for column in lessons.columns}

    # The lessons survived both ways (now without a class: the classes went with 0002's data).
    stored = await school.lessons.get_lesson(school.lesson.id)
    assert stored is not None and stored.title == "Toán 5A" and stored.class_id is None
    assert (await school.lessons.admit_teacher(ad_hoc.teacher_token)).role == "teacher"
    # And the append-only triggers are back.
    await school.records.attendance.joined(
        school.lesson.id, "p_guest", Attendee("student", "Khách", guest=True)
    )
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.engine.begin() as connection:
            await connection.execute(text("DELETE FROM attendance_events"))


async def test_0001_data_is_kept_by_the_upgrade_to_head(database: Database) -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(migrate, "downgrade", "0001")
        await connection.execute(
            text(
                "INSERT INTO lessons (id, code, title, password_hash, teacher_token_hash,"
                " created_at) VALUES (:id, '123456789', 'Toán', 'h', :token, :at)"
            ),
            {
                "id": "44444444-4444-4444-8444-444444444444",
                "token": "0" * 64,
                "at": LESSON_START
                if database.engine.dialect.name == "postgresql"
                else LESSON_START.replace(tzinfo=None),
            },
        )
        await connection.run_sync(migrate, "upgrade", "head")
        row = (await connection.execute(select(lessons))).one()
    assert row.code == "123456789"
    assert row.created_at == LESSON_START
    assert (row.class_id, row.teacher_id, row.scheduled_start, row.scheduled_end) == (None,) * 4


async def test_the_database_checks_class_lesson_schedules(
    school: School, database: Database
) -> None:
    """The CHECK constraint backs the service's validation (a class lesson ends after it
    starts), whichever code writes to the table."""
    with pytest.raises(DBAPIError):
        async with database.engine.begin() as connection:
            await connection.execute(
                lessons.update()
                .where(lessons.c.id == school.lesson.id)
                .values(scheduled_end=LESSON_START - timedelta(minutes=1))
            )
    assert RECORD_TABLES >= {"attendance_events", "join_links", "lesson_reports"}
