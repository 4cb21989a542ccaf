"""A dropped connection resumes as the same participant (docs/protocol.md, "Resuming")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from signaling.limits import Limits
from tests.client import Client, ProtocolError
from tests.conftest import RunningServer, run_server
from tests.peers import ColourTrack, ToneTrack, close_to, wait_for
from tests.test_live_lesson import RED, student_in, teacher_publishing

GREEN = (30, 180, 60)


def drop(client: Client) -> None:
    """Cut the client's TCP connection without a WebSocket close (a phone losing Wi-Fi)."""
    client.ws.transport.abort()


async def resume(server: RunningServer, token: str) -> Client:
    client = await Client(server.ws_url).connect()
    client.joined = await client.request("join", resume=token)
    return client


async def resume_refusal(server: RunningServer, token: str) -> ProtocolError:
    """The error a fresh socket gets for ``join`` with this resume token (fails if it works)."""
    probe = await Client(server.ws_url).connect()
    try:
        with pytest.raises(ProtocolError) as refused:
            await probe.request("join", resume=token)
        return refused.value
    finally:
        await probe.close()


async def test_a_dropped_student_resumes_as_the_same_participant_and_media_flows_again(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Lê Văn Cường")
    again: Client | None = None
    try:
        await student.publish(ColourTrack(GREEN), ToneTrack())
        assert await wait_for(lambda: close_to(teacher.receiver.mean_rgb(), GREEN), timeout=15)
        pid = student.joined["participant"]["id"]
        token = student.joined["resume_token"]
        assert student.joined["resume_grace"] == Limits().resume_grace
        assert student.joined["resumed"] is False

        reconnecting = asyncio.ensure_future(teacher.next_event("participant_updated"))
        unpublished = asyncio.ensure_future(teacher.next_event("track_unpublished"))
        drop(student)
        update = await reconnecting
        assert update["id"] == pid and update["state"] == "reconnecting"
        assert (await unpublished)["participant"] == pid

        back = asyncio.ensure_future(teacher.next_event("participant_updated"))
        again = await resume(server, token)
        assert again.joined["participant"] == {
            "id": pid,
            "name": "Lê Văn Cường",
            "role": "guest",  # came in with the lesson password
            "state": "connected",
            "link": "ok",
        }
        assert again.joined["resumed"] is True
        assert again.joined["resume_token"] != token
        teacher_entry = next(p for p in again.joined["participants"] if p["role"] == "teacher")
        assert teacher_entry["state"] == "connected"
        assert (await back) == again.joined["participant"]

        # Fresh peer connections: the teacher's picture reaches the student again, and the
        # student's camera reaches the teacher again.
        await again.subscribe()
        assert await wait_for(lambda: close_to(again.receiver.mean_rgb(), RED), timeout=15)
        teacher.receiver.video_frames.clear()
        await again.publish(ColourTrack(GREEN), ToneTrack())
        assert await wait_for(lambda: close_to(teacher.receiver.mean_rgb(), GREEN), timeout=15)
        # Nobody saw the student leave.
        assert not [e for e in teacher.events if e["event"] == "participant_left"]
    finally:
        for c in (teacher, student, again):
            if c is not None:
                await c.close()


async def test_a_resume_token_works_once_and_a_made_up_one_never(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Phạm Thu")
    clients = [teacher, student]
    try:
        token = student.joined["resume_token"]
        drop(student)
        clients.append(await resume(server, token))
        for bad in (token, "x" * 43, "đ"):
            refused = await resume_refusal(server, bad)
            assert refused.code == "resume_failed"
            assert refused.response["message"]
    finally:
        for c in clients:
            await c.close()


async def test_the_teachers_own_token_is_not_a_resume_token(server: RunningServer) -> None:
    lesson = await server.create_lesson()
    assert (await resume_refusal(server, lesson["teacher_token"])).code == "resume_failed"


async def test_a_resume_while_the_old_socket_is_open_replaces_it(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Vũ Minh")
    newer: Client | None = None
    try:
        replaced = asyncio.ensure_future(student.next_event("session_replaced"))
        newer = await resume(server, student.joined["resume_token"])
        await replaced
        await asyncio.wait_for(student.closed.wait(), 5)
        assert student.close_code == 4002
        assert newer.joined["participant"]["id"] == student.joined["participant"]["id"]
        await newer.subscribe()
        assert await wait_for(lambda: close_to(newer.receiver.mean_rgb(), RED), timeout=15)
        # Still one participant, connected: never two copies.
        (live,) = server.app.state.services.hub.lessons.values()
        students = [s for s in live.participants.values() if s.role != "teacher"]
        assert [s.describe()["state"] for s in students] == ["connected"]
        assert students[0].id == newer.joined["participant"]["id"]
        assert not [e for e in teacher.events if e["event"] == "participant_left"]
    finally:
        for c in (teacher, student, newer):
            if c is not None:
                await c.close()


async def test_after_leave_the_participant_cannot_resume(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Đỗ Hà")
    try:
        left = asyncio.ensure_future(teacher.next_event("participant_left"))
        await student.request("leave")
        assert (await left)["reason"] == "left"
        refused = await resume_refusal(server, student.joined["resume_token"])
        assert refused.code == "resume_failed"
    finally:
        await student.close()
        await teacher.close()


async def test_after_the_grace_period_the_participant_has_left(tmp_path: Path) -> None:
    async with run_server(tmp_path, limits=Limits(resume_grace=0.5)) as server:
        teacher, lesson = await teacher_publishing(server)
        student = await student_in(server, lesson, "Hoàng Lan")
        try:
            left = asyncio.ensure_future(teacher.next_event("participant_left"))
            drop(student)
            gone = await left
            assert gone == {"id": student.joined["participant"]["id"], "reason": "connection_lost"}
            refused = await resume_refusal(server, student.joined["resume_token"])
            assert refused.code == "resume_failed"
        finally:
            await student.close()
            await teacher.close()


async def test_a_lone_participant_who_drops_keeps_the_lesson_live(server: RunningServer) -> None:
    """The only participant's drop must not forget the lesson: the resume needs it."""
    lesson = await server.create_lesson()
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(lesson["teacher_token"])
    drop(teacher)
    again = await resume(server, teacher.joined["resume_token"])
    try:
        assert again.joined["participant"]["role"] == "teacher"
        assert again.joined["participant"]["id"] == teacher.joined["participant"]["id"]
    finally:
        await again.close()
        await teacher.close()
