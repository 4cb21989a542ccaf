"""The safety records on SQLite and PostgreSQL: audit log, bans and incidents."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from classroom.safety import Action, IncidentCategory, Party
from classroom.storage import Database
from tests.classroom.support import FakeNow, School

TEACHER = Party("p_teacher", "Nguyễn Thị Lan", "teacher")
DEVICE = hashlib.sha256(b"device of a guest").hexdigest()


def student(school: School, code: str = "HS001", pid: str = "p_an") -> Party:
    link = school.links[code]
    return Party(pid, link.full_name, "student", link.roster_entry_id)


async def test_the_audit_log_keeps_every_action_in_order_with_who_what_whom_when(
    school: School, now: FakeNow
) -> None:
    safety = school.records.safety
    lesson = school.lesson.id
    an = student(school)
    first = await safety.record(lesson, TEACHER, Action.MUTE, an, detail={"kind": "audio"})
    now.advance(seconds=5)
    await safety.record(lesson, TEACHER, Action.LOCK)
    entries = await safety.actions(lesson)
    assert [e.action for e in entries] == [Action.MUTE, Action.LOCK]
    assert entries[0] == first
    assert entries[0].target == an and entries[0].actor == TEACHER
    assert entries[0].detail == {"kind": "audio"}
    assert entries[0].node_id == "node-a"
    assert entries[1].at - entries[0].at == (now.now - first.at)
    assert [e.action for e in await safety.actions(lesson, last=1)] == [Action.LOCK]
    assert entries[0].to_json()["target"]["name"] == "Nguyễn Văn An"


async def test_the_audit_log_refuses_free_text_reasons_and_unknown_actions(
    school: School,
) -> None:
    safety = school.records.safety
    with pytest.raises(ValueError, match="snake_case"):
        await safety.record(school.lesson.id, TEACHER, Action.REMOVE, reason="He was rude!")
    with pytest.raises(ValueError):
        await safety.record(school.lesson.id, TEACHER, "shout")  # type: ignore[arg-type]
    assert await safety.actions(school.lesson.id) == []


@pytest.mark.parametrize("table", ["moderation_actions", "incidents"])
async def test_the_audit_log_and_incidents_are_append_only_in_the_database(
    school: School, database: Database, table: str
) -> None:
    safety = school.records.safety
    await safety.record(school.lesson.id, TEACHER, Action.LOCK)
    await safety.report(school.lesson.id, student(school), IncidentCategory.OTHER, "x", {})
    for statement in (f"DELETE FROM {table}", f"UPDATE {table} SET node_id = 'forged'"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.engine.begin() as connection:
                await connection.execute(text(statement))
    assert len(await safety.actions(school.lesson.id)) == 1
    assert len(await safety.incidents([school.lesson.id])) == 1


async def test_a_ban_keeps_the_student_out_by_roster_entry_and_the_guest_by_device(
    school: School, now: FakeNow
) -> None:
    safety = school.records.safety
    lesson = school.lesson.id
    an = student(school)
    guest = Party("p_guest", "Khách lạ", "guest")
    ban_an = await safety.ban(lesson, TEACHER, an, None)
    now.advance(seconds=1)
    ban_guest = await safety.ban(lesson, TEACHER, guest, DEVICE)

    assert await safety.banned(lesson, roster_entry_id=an.roster_entry_id, device_digest=None)
    assert await safety.banned(lesson, roster_entry_id=None, device_digest=DEVICE)
    other = student(school, "HS002", "p_ngoc")
    assert not await safety.banned(
        lesson, roster_entry_id=other.roster_entry_id, device_digest=None
    )
    assert not await safety.banned(lesson, roster_entry_id=None, device_digest=None)
    assert [b.id for b in await safety.bans(lesson)] == [ban_an.id, ban_guest.id]

    # Lifting: the student may come back; the lift is logged beside the ban.
    now.advance(minutes=3)
    lifted = await safety.lift(lesson, ban_an.id, TEACHER)
    assert lifted is not None and lifted.lifted_at == now.now and lifted.lifted_by == TEACHER.name
    assert not await safety.banned(lesson, roster_entry_id=an.roster_entry_id, device_digest=None)
    assert [b.id for b in await safety.bans(lesson)] == [ban_guest.id]
    assert await safety.lift(lesson, ban_an.id, TEACHER) is None  # already lifted
    log = await safety.actions(lesson)
    assert [(e.action, e.target.participant_id if e.target else None) for e in log] == [
        (Action.BAN, "p_an"),
        (Action.BAN, "p_guest"),
        (Action.UNBAN, "p_an"),
    ]
    assert log[0].detail == {"ban": ban_an.id}


async def test_a_ban_holds_only_in_its_own_lesson(school: School) -> None:
    safety = school.records.safety
    an = student(school)
    await safety.ban(school.lesson.id, TEACHER, an, DEVICE)
    other = await school.lessons.create_lesson("Ôn tập", "mật khẩu ôn tập")
    assert not await safety.banned(
        other.lesson.id, roster_entry_id=an.roster_entry_id, device_digest=DEVICE
    )
    assert (
        await safety.lift(other.lesson.id, (await safety.bans(school.lesson.id))[0].id, TEACHER)
        is None
    )


async def test_an_incident_is_stored_with_its_context_and_the_recent_actions(
    school: School, now: FakeNow
) -> None:
    safety = school.records.safety
    lesson = school.lesson.id
    for _ in range(25):
        await safety.record(lesson, TEACHER, Action.MUTE, student(school))
    context = {
        "participants": [{"id": "p_an", "name": "Nguyễn Văn An", "role": "student"}],
        "chat": [{"id": "m_1", "text": "Xin chào"}],
    }
    reporter = student(school, "HS002", "p_ngoc")
    incident = await safety.report(
        lesson, reporter, IncidentCategory.HARASSMENT, "Có người lạ nói bậy.", context
    )
    stored = await safety.incident(incident.id)
    assert stored == incident
    assert stored.context["participants"] == context["participants"]
    assert stored.context["chat"] == context["chat"]
    assert len(stored.context["recent_actions"]) == 20
    assert stored.reporter == reporter and stored.text == "Có người lạ nói bậy."
    assert [i.id for i in await safety.incidents([lesson])] == [incident.id]
    assert [i.id for i in await safety.incidents()] == [incident.id]
    assert await safety.incidents([]) == []
    assert await safety.incident("i_nope") is None
    assert await safety.incident("../../etc") is None


async def test_incident_text_and_category_are_checked(school: School) -> None:
    safety = school.records.safety
    with pytest.raises(ValueError):
        await safety.report(school.lesson.id, student(school), "riot", "x", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too long"):
        await safety.report(
            school.lesson.id, student(school), IncidentCategory.OTHER, "x" * 1001, {}
        )
    assert await safety.incidents([school.lesson.id]) == []


def test_parties_are_checked() -> None:
    with pytest.raises(ValueError):
        Party("p 1", "An", "student")
    with pytest.raises(ValueError):
        Party("p_1", "", "student")
    with pytest.raises(ValueError):
        Party("p_1", "An", "janitor")
    with pytest.raises(ValueError):
        Party("p_1", "An", "student", "not-a-uuid")
