"""The attendance log: committed on return, append-only down to the database, and crash
recovery that closes what a dead node left open (on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from classroom.attendance import (
    RECOVERY_REASON,
    AttendanceRecorder,
    Attendee,
    default_node_id,
)
from classroom.lessons import Admission
from classroom.sqlstores import SqlAttendanceStore
from classroom.storage import Database
from classroom.tables import attendance_events, node_heartbeats
from tests.classroom.support import LESSON_START, FakeNow, School


def student(school: School, code: str) -> Attendee:
    link = school.links[code]
    return Attendee("student", link.full_name, roster_entry_id=link.roster_entry_id)


GUEST = Attendee("student", "Khách Dự Giờ", guest=True)
TEACHER = Attendee("teacher", "Teacher")


@pytest.fixture
def recorder(school: School) -> AttendanceRecorder:
    return school.records.attendance


async def stored_events(database: Database) -> list[dict[str, object]]:
    async with database.engine.connect() as connection:
        rows = await connection.execute(select(attendance_events).order_by(attendance_events.c.id))
        return [dict(row._mapping) for row in rows]


# --- recording ----------------------------------------------------------------------------------


async def test_each_event_is_committed_with_its_identity_node_reason_and_time(
    school: School, recorder: AttendanceRecorder, database: Database, now: FakeNow
) -> None:
    lesson = school.lesson.id
    now.set(LESSON_START)
    joined = await recorder.joined(lesson, "p_an", student(school, "HS001"))
    now.advance(minutes=10)
    await recorder.left(lesson, "p_an", student(school, "HS001"), reason="connection_lost")
    await recorder.joined(lesson, "p_guest", GUEST)
    await recorder.joined(lesson, "p_teacher", TEACHER)
    # Read back on a fresh connection: what `joined` returned for is on disk, not in a buffer.
    rows = await stored_events(database)
    assert [(row["kind"], row["participant_id"]) for row in rows] == [
        ("joined", "p_an"),
        ("left", "p_an"),
        ("joined", "p_guest"),
        ("joined", "p_teacher"),
    ]
    first = rows[0]
    assert first["id"] == joined.id
    assert first["lesson_id"] == lesson
    assert first["role"] == "student"
    assert first["roster_entry_id"] == school.links["HS001"].roster_entry_id
    assert first["guest"] is False
    assert first["display_name"] == "Nguyễn Văn An"
    assert first["node_id"] == "node-a"
    assert first["at"] == first["recorded_at"] == LESSON_START
    assert first["recovered"] is False
    assert rows[1]["reason"] == "connection_lost"
    assert rows[1]["at"] == LESSON_START + timedelta(minutes=10)
    assert (rows[2]["guest"], rows[2]["roster_entry_id"]) == (True, None)
    assert rows[3]["role"] == "teacher"


async def test_every_kind_can_be_recorded_in_log_order(
    school: School, recorder: AttendanceRecorder
) -> None:
    lesson, who = school.lesson.id, student(school, "HS002")
    calls = [
        recorder.admitted(lesson, "p_b", who),
        recorder.joined(lesson, "p_b", who),
        recorder.left(lesson, "p_b", who),
        recorder.reconnected(lesson, "p_b", who),
        recorder.replaced(lesson, "p_b", who),
        recorder.removed(lesson, "p_b", who),
        recorder.denied(lesson, "p_x", GUEST),
    ]
    ids = [(await call).id for call in calls]
    assert ids == sorted(ids)
    events = await recorder.events(lesson)
    assert [event.kind for event in events] == [
        "admitted",
        "joined",
        "left",
        "reconnected",
        "replaced",
        "removed",
        "denied",
    ]
    assert [event.reason for event in events] == [
        None,
        None,
        "left",
        None,
        "new_device",
        "removed_by_teacher",
        "denied_by_teacher",
    ]
    assert await recorder.events("not-a-lesson") == []


async def test_a_retried_join_is_recorded_once(
    school: School, recorder: AttendanceRecorder, database: Database
) -> None:
    who = student(school, "HS001")
    first = await recorder.joined(school.lesson.id, "p_an", who)
    again = await recorder.joined(school.lesson.id, "p_an", who)
    assert again == first
    assert len(await stored_events(database)) == 1


def test_attendees_come_from_admissions(school: School) -> None:
    link = school.links["HS001"]
    admission = Admission(
        school.lesson,
        "student",
        link.full_name,
        roster_entry_id=link.roster_entry_id,
        student_code="HS001",
        link_id=link.id,
    )
    assert Attendee.of(admission) == Attendee("student", "Nguyễn Văn An", link.roster_entry_id)
    guest = Admission(school.lesson, "student", "Khách", guest=True)
    assert Attendee.of(guest) == Attendee("student", "Khách", guest=True)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Attendee("principal", "X"),  # type: ignore[arg-type]
        lambda: Attendee(
            "student", "X", roster_entry_id="11111111-1111-4111-8111-111111111111", guest=True
        ),
        lambda: Attendee("student", "X", roster_entry_id="not-a-uuid"),
        lambda: Attendee("student", "  X  "),
        lambda: Attendee("student", ""),
    ],
)
def test_impossible_attendees_are_programming_errors(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


async def test_bad_arguments_are_programming_errors_and_record_nothing(
    school: School, recorder: AttendanceRecorder, database: Database
) -> None:
    lesson, who = school.lesson.id, student(school, "HS001")
    with pytest.raises(ValueError):
        await recorder.left(lesson, "p_an", who, reason="Student said: I'm leaving")
    with pytest.raises(ValueError):
        await recorder.joined("lesson 1", "p_an", who)
    with pytest.raises(ValueError):
        await recorder.joined(lesson, "p an; DROP", who)
    with pytest.raises(TypeError):
        await recorder.joined(lesson, "p_an", "Nguyễn Văn An")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AttendanceRecorder(SqlAttendanceStore(database.engine), "node a")
    assert await stored_events(database) == []


def test_the_default_node_id_is_stable_and_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOPHOC_NODE_ID", "máy chủ 1")
    assert default_node_id() == "m-y-ch--1"
    monkeypatch.delenv("LOPHOC_NODE_ID")
    assert default_node_id() == default_node_id()
    AttendanceRecorder(None, default_node_id())  # type: ignore[arg-type]


# --- append-only ---------------------------------------------------------------------------------


def test_no_update_or_delete_exists_in_the_api() -> None:
    for owner in (AttendanceRecorder, SqlAttendanceStore):
        names = [name for name in dir(owner) if not name.startswith("__")]
        assert not [n for n in names if any(w in n for w in ("update", "delete", "edit", "erase"))]


@pytest.mark.parametrize("table", ["attendance_events", "lesson_reports"])
async def test_the_database_refuses_to_change_or_delete_log_rows(
    school: School, recorder: AttendanceRecorder, database: Database, now: FakeNow, table: str
) -> None:
    await recorder.joined(school.lesson.id, "p_an", student(school, "HS001"))
    if table == "lesson_reports":
        now.set(school.lesson.scheduled_end or LESSON_START)
        await school.records.reports.close(school.lesson, by=school.teacher.id)
    before = await rows_of(database, table)
    assert before
    statements = [
        f"UPDATE {table} SET {'display_name' if table == 'attendance_events' else 'body'} = 'x'",
        f"DELETE FROM {table}",
    ]
    if database.engine.dialect.name == "postgresql":
        statements.append(f"TRUNCATE {table}")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.engine.begin() as connection:
                await connection.execute(text(statement))
    assert await rows_of(database, table) == before


async def rows_of(database: Database, table: str) -> list[tuple[object, ...]]:
    async with database.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(f"SELECT * FROM {table}"))]


async def test_core_update_and_delete_are_refused_too(
    school: School, recorder: AttendanceRecorder, database: Database
) -> None:
    event = await recorder.joined(school.lesson.id, "p_an", student(school, "HS001"))
    with pytest.raises(DBAPIError):
        async with database.engine.begin() as connection:
            await connection.execute(
                update(attendance_events)
                .where(attendance_events.c.id == event.id)
                .values(at=event.at - timedelta(minutes=30))
            )
    with pytest.raises(DBAPIError):
        async with database.engine.begin() as connection:
            await connection.execute(delete(attendance_events))
    assert (await recorder.events(school.lesson.id)) == [event]


# --- heartbeats and recovery --------------------------------------------------------------------


async def test_heartbeats_keep_the_latest_time(
    recorder: AttendanceRecorder, database: Database, now: FakeNow
) -> None:
    first = await recorder.heartbeat()
    now.advance(seconds=15)
    second = await recorder.heartbeat()
    await recorder.heartbeat("node-b")
    store = SqlAttendanceStore(database.engine)
    assert await store.last_heartbeat("node-a") == second != first
    assert await store.last_heartbeat("node-b") == second
    assert await store.last_heartbeat("node-z") is None
    async with database.engine.connect() as connection:
        assert len((await connection.execute(select(node_heartbeats))).all()) == 2


async def test_recovery_closes_open_intervals_at_the_last_heartbeat(
    school: School, recorder: AttendanceRecorder, now: FakeNow, database: Database
) -> None:
    lesson = school.lesson.id
    an, ngoc, duc = (student(school, code) for code in ("HS001", "HS002", "HS003"))
    node_b = AttendanceRecorder(SqlAttendanceStore(database.engine), "node-b", clock=now)
    now.set(LESSON_START)
    await recorder.joined(lesson, "p_an", an)  # still open at the crash
    await recorder.joined(lesson, "p_ngoc", ngoc)
    await recorder.joined(lesson, "p_guest", GUEST)  # still open
    await node_b.joined(lesson, "p_duc", duc)  # on the other node: not ours to close
    now.advance(minutes=5)
    await recorder.left(lesson, "p_ngoc", ngoc)  # closed normally
    await recorder.left(lesson, "p_guest", GUEST, reason="connection_lost")
    await recorder.reconnected(lesson, "p_guest", GUEST)  # open again
    now.advance(minutes=5)
    heartbeat = await recorder.heartbeat()
    now.advance(seconds=12)  # kill -9 here; the restart comes a minute later
    now.advance(minutes=1)

    closed = await recorder.recover()
    assert sorted(event.participant_id for event in closed) == ["p_an", "p_guest"]
    for event in closed:
        assert (event.kind, event.reason, event.recovered) == ("left", RECOVERY_REASON, True)
        assert event.at == heartbeat
        assert event.recorded_at == now()
        assert event.node_id == "node-a"
    an_closed = next(event for event in closed if event.participant_id == "p_an")
    assert an_closed.roster_entry_id == an.roster_entry_id
    assert an_closed.display_name == "Nguyễn Văn An"
    assert await recorder.recover() == []  # idempotent
    assert await node_b.recover("node-a") == []
    log = await recorder.events(lesson)
    assert [e.participant_id for e in log if e.kind == "left"].count("p_duc") == 0


async def test_a_join_after_the_last_heartbeat_is_closed_at_the_join(
    school: School, recorder: AttendanceRecorder, now: FakeNow
) -> None:
    now.set(LESSON_START)
    await recorder.heartbeat()
    now.advance(seconds=10)
    joined = await recorder.joined(school.lesson.id, "p_an", student(school, "HS001"))
    now.advance(minutes=2)
    [closed] = await recorder.recover()
    assert closed.at == joined.at


async def test_a_node_that_never_sent_a_heartbeat_closes_at_its_last_event(
    school: School, recorder: AttendanceRecorder, now: FakeNow
) -> None:
    now.set(LESSON_START)
    await recorder.joined(school.lesson.id, "p_an", student(school, "HS001"))
    now.advance(minutes=3)
    last = await recorder.joined(school.lesson.id, "p_ngoc", student(school, "HS002"))
    now.advance(minutes=3)
    closed = await recorder.recover()
    assert {event.at for event in closed} == {last.at}


async def test_a_participant_who_moved_to_another_node_is_left_alone(
    school: School, recorder: AttendanceRecorder, now: FakeNow, database: Database
) -> None:
    node_b = AttendanceRecorder(SqlAttendanceStore(database.engine), "node-b", clock=now)
    an = student(school, "HS001")
    now.set(LESSON_START)
    await recorder.joined(school.lesson.id, "p_an", an)
    await recorder.heartbeat()
    now.advance(minutes=1)
    await node_b.reconnected(school.lesson.id, "p_an", an)
    assert await recorder.recover() == []
    with pytest.raises(ValueError):
        await recorder.recover("bad node")
