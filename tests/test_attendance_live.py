"""Attendance recorded from live lessons: joins written before the client hears of them,
reconnects, second devices, personal links (and every way a link is refused)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from classroom.lessons import Lesson
from tests.classroom.support import ROSTER_CSV
from tests.client import Client, ProtocolError
from tests.conftest import RunningServer
from tests.test_live_lesson import student_in, teacher_publishing


def kinds(events: list[Any], participant_id: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.reason) for e in events if e.participant_id == participant_id]


async def events_of(server: RunningServer, lesson_id: str) -> list[Any]:
    records = server.app.state.services.records
    return list(await records.attendance.events(lesson_id))


@dataclass
class ClassLesson:
    lesson: Lesson
    teacher_token: str
    links: dict[str, str]  # student code → token
    link_ids: dict[str, str]


async def class_lesson(server: RunningServer, title: str = "Toán 5A") -> ClassLesson:
    services = server.app.state.services
    records = services.records
    accounts = records.accounts
    teacher = await accounts.user_by_username("lan")
    if teacher is None:
        teacher = await accounts.create_user("lan", "Nguyễn Thị Lan", "mật khẩu cô Lan", "teacher")
        school_class = await accounts.create_class("5A", ["lan"])
        await records.rosters.import_csv(school_class.id, ROSTER_CSV)
        server.class_id = school_class.id  # type: ignore[attr-defined]
    start = datetime.now(UTC) - timedelta(minutes=1)
    created = await services.lessons.create_class_lesson(
        title,
        class_id=server.class_id,  # type: ignore[attr-defined]
        teacher_id=teacher.id,
        scheduled_start=start,
        scheduled_end=start + timedelta(minutes=45),
    )
    links = await records.links.ensure_links(created.lesson)
    return ClassLesson(
        created.lesson,
        created.teacher_token,
        {link.student_code: records.links.token_for(link) for link in links},
        {link.student_code: link.id for link in links},
    )


async def join_by_link(server: RunningServer, lesson: ClassLesson, code: str) -> Client:
    client = await Client(server.ws_url).connect()
    client.joined = await client.request("join", link=lesson.links[code], code=lesson.lesson.code)
    return client


async def test_a_join_is_on_disk_when_the_client_hears_it_and_leaving_is_recorded(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    lesson_id = lesson["lesson"]["id"]
    student = await student_in(server, lesson, "Nguyễn Văn An")
    pid = student.joined["participant"]["id"]
    try:
        # Read straight from the database the moment the ok arrived.
        assert kinds(await events_of(server, lesson_id), pid) == [("joined", None)]
        event = next(e for e in await events_of(server, lesson_id) if e.participant_id == pid)
        assert event.guest and event.display_name == "Nguyễn Văn An"
        left = asyncio.ensure_future(teacher.next_event("participant_left"))
        await student.request("leave")
        await left
        assert kinds(await events_of(server, lesson_id), pid) == [
            ("joined", None),
            ("left", "left"),
        ]
    finally:
        await student.close()
        await teacher.close()


async def test_a_dropped_phone_that_comes_back_is_one_presence(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    lesson_id = lesson["lesson"]["id"]
    student = await student_in(server, lesson, "Trần Thị Bích Ngọc")
    pid = student.joined["participant"]["id"]
    again: Client | None = None
    try:
        reconnecting = asyncio.ensure_future(teacher.next_event("participant_updated"))
        student.ws.transport.abort()
        await reconnecting
        again = await Client(server.ws_url).connect()
        await again.request("join", resume=student.joined["resume_token"])
        assert kinds(await events_of(server, lesson_id), pid) == [
            ("joined", None),
            ("left", "connection_lost"),
            ("reconnected", None),
        ]
    finally:
        for c in (teacher, student, again):
            if c is not None:
                await c.close()


async def test_a_personal_link_names_its_student_and_a_second_device_replaces_the_first(
    server: RunningServer,
) -> None:
    lesson = await class_lesson(server)
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(lesson.teacher_token)
    clients = [teacher]
    try:
        phone = await join_by_link(server, lesson, "HS001")
        clients.append(phone)
        me = phone.joined["participant"]
        assert (me["name"], me["role"]) == ("Nguyễn Văn An", "student")
        replaced = asyncio.ensure_future(phone.next_event("session_replaced"))
        laptop = await join_by_link(server, lesson, "HS001")
        clients.append(laptop)
        await replaced
        await asyncio.wait_for(phone.closed.wait(), 5)
        assert phone.close_code == 4002
        (live,) = [
            live
            for live in server.app.state.services.hub.lessons.values()
            if live.lesson.id == lesson.lesson.id
        ]
        students = [s for s in live.participants.values() if s.role == "student"]
        assert [s.id for s in students] == [laptop.joined["participant"]["id"]]
        events = await events_of(server, lesson.lesson.id)
        assert kinds(events, me["id"]) == [("joined", None), ("replaced", "new_device")]
        assert kinds(events, laptop.joined["participant"]["id"]) == [("joined", None)]
        assert {e.roster_entry_id for e in events if e.role == "student"} == {
            events[-1].roster_entry_id
        }
        # A name sent along with a link is ignored: the roster's name stands.
        third = await Client(server.ws_url).connect()
        clients.append(third)
        joined = await third.request(
            "join", link=lesson.links["HS002"], code=lesson.lesson.code, name="Tên giả"
        )
        assert joined["participant"]["name"] == "Trần Thị Bích Ngọc"
    finally:
        for c in clients:
            await c.close()


async def test_bad_links_are_refused_and_change_nothing(server: RunningServer) -> None:
    lesson = await class_lesson(server, "Toán 5A — tiết 1")
    other = await class_lesson(server, "Toán 5A — tiết 2")
    records = server.app.state.services.records
    await records.links.revoke(lesson.lesson.id, lesson.link_ids["HS003"], by=None)
    token = lesson.links["HS001"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    cases = [
        ({"link": forged, "code": lesson.lesson.code}, "bad_link"),
        ({"link": "not-a-link", "code": lesson.lesson.code}, "bad_link"),
        ({"link": other.links["HS001"], "code": lesson.lesson.code}, "wrong_lesson"),
        ({"link": lesson.links["HS003"], "code": lesson.lesson.code}, "link_revoked"),
    ]
    for fields, code in cases:
        probe = await Client(server.ws_url).connect()
        try:
            with pytest.raises(ProtocolError) as refused:
                await probe.request("join", **fields)
            assert refused.value.code == code, fields
            assert refused.value.response["message"]
        finally:
            await probe.close()
    assert await events_of(server, lesson.lesson.id) == []
    assert await events_of(server, other.lesson.id) == []
