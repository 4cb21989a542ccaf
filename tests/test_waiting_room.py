"""The waiting room, enforced by the server with raw protocol clients: who waits, what a
waiting participant can (not) see or do, admit and deny, and nobody in before the teacher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from signaling.limits import Limits
from tests.client import Client, ProtocolError
from tests.conftest import RunningServer, run_server
from tests.peers import ColourTrack, ToneTrack, close_to, wait_for
from tests.test_attendance_live import class_lesson, events_of, join_by_link, kinds

RED = (200, 30, 30)


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The product's default: guests and names not on the class list wait."""
    async with run_server(tmp_path, waiting_room="guests") as running:
        yield running


async def knock(server: RunningServer, lesson: dict, name: str) -> Client:
    client = await Client(server.ws_url).connect()
    client.joined = await client.request(
        "join", code=lesson["lesson"]["code"], password=lesson["password"], name=name
    )
    return client


async def teacher_in(server: RunningServer, lesson: dict) -> Client:
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(lesson["teacher_token"])
    return teacher


async def refused(client: Client, type_: str, **fields: object) -> str:
    with pytest.raises(ProtocolError) as error:
        await client.request(type_, **fields)
    assert error.value.response["message"]
    return str(error.value.code)


async def test_a_waiting_guest_sees_and_receives_nothing_until_admitted(
    guarded: RunningServer,
) -> None:
    lesson = await guarded.create_lesson(title="Toán 6A", password="mat-khau-lop-6a")
    teacher = await teacher_in(guarded, lesson)
    await teacher.publish(ColourTrack(RED), ToneTrack())
    await teacher.subscribe()
    guest = await knock(guarded, lesson, "Khách Lạ")
    try:
        # The answer names only the lesson and the guest: no one else, no media, no token.
        assert guest.joined["waiting"] is True
        assert set(guest.joined) == {"waiting", "participant", "lesson"}
        gid = guest.joined["participant"]["id"]
        knocking = await teacher.seen("knocking")
        assert knocking == {
            "id": gid,
            "name": "Khách Lạ",
            "role": "guest",
            "on_class_list": False,
            "already_connected": False,
        }
        # Everything but ping and leave is refused while waiting.
        cases: list[tuple[str, dict[str, Any]]] = [
            ("subscribe", {}),
            ("publish", {"sdp": "v=0"}),
            ("chat", {"text": "cho em vào"}),
            ("raise_hand", {"raised": True}),
            ("report_incident", {"category": "other"}),
            ("admit", {"participant": gid}),
        ]
        for type_, fields in cases:
            assert await refused(guest, type_, **fields) == "waiting", type_
        assert "time" in await guest.request("ping")
        # A latecomer who is let in straight away (the teacher's second device) is not
        # announced to the waiting guest, nor are the teacher's tracks.
        await asyncio.sleep(0.5)
        assert guest.events == []

        admitted = asyncio.ensure_future(guest.next_event("admitted"))
        assert await teacher.request("admit", participant=gid) == {"participants": [gid]}
        data = await admitted
        # The event carries what a join answer carries, the teacher and her tracks included.
        assert data["participant"]["id"] == gid and data["resume_token"]
        assert [p["role"] for p in data["participants"]] == ["teacher"]
        assert {p["kind"] for p in data["producers"]} == {"audio", "video"}
        guest.joined = data
        await guest.subscribe()
        assert await wait_for(lambda: close_to(guest.receiver.mean_rgb(), RED), 15)
        assert (await teacher.seen("participant_joined"))["id"] == gid
        # The admission and the join are both in the attendance log, in that order.
        events = await events_of(guarded, lesson["lesson"]["id"])
        assert kinds(events, gid) == [("admitted", "admitted_by_staff"), ("joined", None)]
        log = await teacher.request("moderation_log")
        assert [(a["action"], a["target"]["participant"]) for a in log["actions"]] == [
            ("admit", gid)
        ]
    finally:
        for c in (teacher, guest):
            await c.close()


async def test_a_denied_guest_is_closed_and_the_denial_recorded(guarded: RunningServer) -> None:
    lesson = await guarded.create_lesson(title="Toán 6B", password="mat-khau-lop-6b")
    teacher = await teacher_in(guarded, lesson)
    guest = await knock(guarded, lesson, "Người Lạ")
    gid = guest.joined["participant"]["id"]
    try:
        await teacher.seen("knocking")
        denied = asyncio.ensure_future(guest.next_event("denied"))
        ended = asyncio.ensure_future(teacher.next_event("knock_ended"))
        result = await teacher.request("deny", participant=gid)
        assert result == {"participants": [gid], "banned": False}
        assert (await denied)["banned"] is False
        await asyncio.wait_for(guest.closed.wait(), 5)
        assert guest.close_code == 4006
        assert await ended == {"id": gid, "reason": "denied"}
        events = await events_of(guarded, lesson["lesson"]["id"])
        assert kinds(events, gid) == [("denied", "denied_by_teacher")]
        assert await refused(teacher, "deny", participant=gid) == "not_found"
    finally:
        for c in (teacher, guest):
            await c.close()


async def test_nobody_is_let_in_before_the_teacher_arrives(tmp_path: Path) -> None:
    async with run_server(tmp_path, waiting_room="nobody") as server:
        lesson = await server.create_lesson(title="Văn 8A", password="mat-khau-van-8a")
        early = await knock(server, lesson, "Đến Sớm")
        assert early.joined["waiting"] is True
        admitted = asyncio.ensure_future(early.next_event("admitted"))
        teacher = await teacher_in(server, lesson)
        try:
            # The teacher saw the knock in the join answer; the student comes in by itself.
            assert [k["name"] for k in teacher.joined["knocking"]] == ["Đến Sớm"]
            data = await admitted
            assert [p["role"] for p in data["participants"]] == ["teacher"]
            events = await events_of(server, lesson["lesson"]["id"])
            assert kinds(events, data["participant"]["id"]) == [
                ("admitted", "no_wait_needed"),
                ("joined", None),
            ]
            # With the teacher present, the next one comes straight in.
            second = await knock(server, lesson, "Đến Sau")
            assert "waiting" not in second.joined
            await second.close()
        finally:
            for c in (early, teacher):
                await c.close()


async def test_class_list_students_enter_and_knocks_show_who_is_who(
    guarded: RunningServer,
) -> None:
    cls = await class_lesson(guarded)
    teacher = await Client(guarded.ws_url).connect()
    await teacher.join_teacher(cls.teacher_token)
    an = await join_by_link(guarded, cls, "HS001")  # on the class list: straight in
    try:
        assert "waiting" not in an.joined and an.joined["participant"]["role"] == "student"
        # In "everyone" mode the class list waits too, and a second device is pointed out.
        await teacher.request("settings", waiting_room="everyone")
        an_phone = await join_by_link(guarded, cls, "HS001")
        assert an_phone.joined["waiting"] is True
        knocking = await teacher.seen("knocking")
        assert knocking["on_class_list"] is True and knocking["already_connected"] is True
        assert knocking["name"] == "Nguyễn Văn An"
        # The students in the lesson never see the knock.
        assert not [e for e in an.events if e["event"] == "knocking"]
        # Opening the door lets the waiting in: the phone replaces the first device.
        replaced = asyncio.ensure_future(an.next_event("session_replaced"))
        admitted = asyncio.ensure_future(an_phone.next_event("admitted"))
        await teacher.request("settings", waiting_room="nobody")
        await admitted
        await replaced
    finally:
        for c in (teacher, an):
            await c.close()


async def test_admit_all_and_deny_all(guarded: RunningServer) -> None:
    lesson = await guarded.create_lesson(title="Sử 9A", password="mat-khau-su-9a")
    teacher = await teacher_in(guarded, lesson)
    guests = [await knock(guarded, lesson, f"Khách {i}") for i in range(4)]
    try:
        admitted = await teacher.request("admit", participant="all")
        assert sorted(admitted["participants"]) == sorted(
            g.joined["participant"]["id"] for g in guests
        )
        assert await teacher.request("admit", participant="all") == {"participants": []}
        latecomers = [await knock(guarded, lesson, f"Muộn {i}") for i in range(2)]
        denied = await teacher.request("deny", participant="all")
        assert len(denied["participants"]) == 2
        for late in latecomers:
            await asyncio.wait_for(late.closed.wait(), 5)
            assert late.close_code == 4006
        assert await refused(teacher, "deny", participant="all", ban=True) == "forbidden"
    finally:
        for c in (teacher, *guests):
            await c.close()


async def test_students_cannot_admit_and_see_no_knocks(guarded: RunningServer) -> None:
    cls = await class_lesson(guarded)
    teacher = await Client(guarded.ws_url).connect()
    await teacher.join_teacher(cls.teacher_token)
    an = await join_by_link(guarded, cls, "HS001")
    try:
        assert an.joined["knocking"] == []
        cases: list[tuple[str, dict[str, Any]]] = [
            ("admit", {"participant": "all"}),
            ("deny", {"participant": "all"}),
            ("bans", {}),
            ("unban", {"ban": "b_x"}),
            ("moderation_log", {}),
        ]
        for type_, fields in cases:
            assert await refused(an, type_, **fields) == "forbidden", type_
    finally:
        for c in (teacher, an):
            await c.close()


async def test_a_knock_that_leaves_ends_and_the_waiting_room_has_a_size(tmp_path: Path) -> None:
    async with run_server(
        tmp_path, waiting_room="guests", limits=Limits(waiting_per_lesson=2)
    ) as server:
        lesson = await server.create_lesson(title="Lý 9B", password="mat-khau-ly-9b")
        teacher = await teacher_in(server, lesson)
        a = await knock(server, lesson, "Một")
        b = await knock(server, lesson, "Hai")
        try:
            third = await Client(server.ws_url).connect()
            assert (
                await refused(
                    third,
                    "join",
                    code=lesson["lesson"]["code"],
                    password=lesson["password"],
                    name="Ba",
                )
                == "waiting_room_full"
            )
            await third.close()
            ended = asyncio.ensure_future(teacher.next_event("knock_ended"))
            await a.request("leave")
            assert (await ended)["id"] == a.joined["participant"]["id"]
            # A place is free again.
            c = await knock(server, lesson, "Ba")
            assert c.joined["waiting"] is True
            await c.close()
        finally:
            for client in (teacher, a, b):
                await client.close()
