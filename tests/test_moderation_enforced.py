"""Moderation is enforced by the server: raw protocol clients cannot get around it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.client import Client, ProtocolError
from tests.conftest import RunningServer
from tests.peers import ColourTrack, ToneTrack, wait_for
from tests.test_live_lesson import student_in, teacher_publishing

GREEN = (30, 180, 60)


async def refused(client: Client, type_: str, **fields: object) -> str:
    with pytest.raises(ProtocolError) as error:
        await client.request(type_, **fields)
    assert error.value.response["message"]
    return str(error.value.code)


async def audio_frames_during(client: Client, seconds: float) -> int:
    assert client.receiver is not None
    before = client.receiver.audio_frames
    await asyncio.sleep(seconds)
    return client.receiver.audio_frames - before


def pid(client: Client) -> str:
    return str(client.joined["participant"]["id"])


async def test_students_and_guests_cannot_moderate(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    a = await student_in(server, lesson, "An")
    b = await student_in(server, lesson, "Bình")
    try:
        assert a.joined["participant"]["role"] == "guest"
        cases: list[tuple[str, dict[str, Any]]] = [
            ("mute", {"participant": pid(b), "kind": "audio"}),
            ("mute", {"participant": "students", "kind": "video"}),
            ("mute", {"participant": pid(teacher), "kind": "audio"}),
            ("ask_unmute", {"participant": pid(b)}),
            ("remove", {"participant": pid(b)}),
            ("remove", {"participant": pid(teacher)}),
            ("set_moderator", {"participant": pid(a), "moderator": True}),
            ("set_moderator", {"participant": pid(b), "moderator": True}),
            ("settings", {"locked": True}),
            ("settings", {"permissions": ["chat", "unmute", "video", "screen"]}),
            ("lower_hand", {"participant": pid(b)}),
            ("end_lesson", {}),
        ]
        for type_, fields in cases:
            assert await refused(a, type_, **fields) == "forbidden", (type_, fields)
        # Nothing changed: b is still here, the lesson unlocked, a still a guest.
        assert not [e for e in b.events if e["event"] in ("muted", "removed", "settings")]
        latecomer = await student_in(server, lesson, "Châu")
        await latecomer.close()
    finally:
        for c in (a, b, teacher):
            await c.close()


async def test_a_moderator_moderates_but_cannot_end_the_lesson_or_touch_the_teacher(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    helper = await student_in(server, lesson, "Cô Hạnh")
    pupil = await student_in(server, lesson, "Dũng")
    try:
        updated = asyncio.ensure_future(pupil.next_event("participant_updated"))
        made = await teacher.request("set_moderator", participant=pid(helper), moderator=True)
        assert made["role"] == "moderator"
        assert (await updated)["role"] == "moderator"

        muted = asyncio.ensure_future(pupil.next_event("muted"))
        await helper.request("mute", participant=pid(pupil), kind="audio")
        assert (await muted) == {"kind": "audio", "by": pid(helper)}
        cases: list[tuple[str, dict[str, Any]]] = [
            ("end_lesson", {}),
            ("set_moderator", {"participant": pid(pupil), "moderator": True}),
            ("mute", {"participant": pid(teacher), "kind": "audio"}),
            ("remove", {"participant": pid(teacher)}),
        ]
        for type_, fields in cases:
            assert await refused(helper, type_, **fields) == "forbidden", type_

        back = await teacher.request("set_moderator", participant=pid(helper), moderator=False)
        assert back["role"] == "guest"
        assert await refused(helper, "mute", participant=pid(pupil), kind="video") == "forbidden"
    finally:
        for c in (helper, pupil, teacher):
            await c.close()


async def test_a_muted_student_who_may_not_unmute_stays_unheard(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Em Giang")
    try:
        await student.publish(ToneTrack())
        mic = student.published[0]["id"]
        assert await wait_for(lambda: teacher.receiver.audio_frames > 25, timeout=15)

        await teacher.request("settings", permissions=["chat", "video"])  # no "unmute"
        told = asyncio.ensure_future(student.next_event("muted"))
        await teacher.request("mute", participant=pid(student), kind="audio")
        await told
        await asyncio.sleep(0.3)
        assert await audio_frames_during(teacher, 1.5) == 0

        # A modified client unmutes anyway: refused, and still nothing is forwarded (the
        # client keeps sending its tone all along).
        assert await refused(student, "pause", producer=mic, paused=False) == "forbidden"
        assert await audio_frames_during(teacher, 1.5) == 0

        # "Ask to unmute": the student may accept, once.
        asked = asyncio.ensure_future(student.next_event("unmute_requested"))
        await teacher.request("ask_unmute", participant=pid(student))
        assert (await asked) == {"by": pid(teacher)}
        await student.request("pause", producer=mic, paused=False)
        assert await wait_for(lambda: teacher.receiver.audio_frames > 0, timeout=5)
        assert await audio_frames_during(teacher, 1.0) > 25
        await student.request("pause", producer=mic, paused=True)
        assert await refused(student, "pause", producer=mic, paused=False) == "forbidden"
    finally:
        await student.close()
        await teacher.close()


async def test_mute_all_students_and_a_camera_students_may_not_start(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    a = await student_in(server, lesson, "Hà")
    b = await student_in(server, lesson, "Khánh")
    try:
        await b.publish(ToneTrack())
        assert await wait_for(lambda: teacher.receiver.audio_frames > 50, timeout=15)
        done = await teacher.request("mute", participant="students", kind="audio")
        assert sorted(done["participants"]) == sorted([pid(a), pid(b)])
        await asyncio.sleep(0.3)
        assert await audio_frames_during(teacher, 1.5) == 0

        await teacher.request("settings", permissions=["unmute", "chat"])  # no "video"
        published = await a.publish(ColourTrack(GREEN))
        camera = next(p for p in published["producers"] if p["kind"] == "video")
        assert camera["paused"] is True
        await asyncio.sleep(1.5)
        assert teacher.receiver.video_track_showing(GREEN) is None
        assert await refused(a, "pause", producer=camera["id"], paused=False) == "forbidden"

        await teacher.request("settings", permissions=["unmute", "chat", "video"])
        await a.request("pause", producer=camera["id"], paused=False)
        assert await wait_for(
            lambda: teacher.receiver.video_track_showing(GREEN) is not None, timeout=10
        )
    finally:
        for c in (a, b, teacher):
            await c.close()


async def test_a_locked_lesson_lets_nobody_new_in_but_the_teacher_and_resumes(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    inside = await student_in(server, lesson, "Lâm")
    clients = [teacher, inside]
    try:
        told = asyncio.ensure_future(inside.next_event("settings"))
        await teacher.request("settings", locked=True)
        assert (await told)["locked"] is True
        code = lesson["lesson"]["code"]
        probe = await Client(server.ws_url).connect()
        clients.append(probe)
        right = await refused(
            probe, "join", code=code, password=lesson["password"], name="Người lạ"
        )
        assert right == "lesson_locked"
        wrong = await refused(probe, "join", code=code, password="not-the-password", name="X")
        assert wrong == "bad_password"  # a wrong password learns nothing about the lock

        inside.ws.transport.abort()
        again = await Client(server.ws_url).connect()
        clients.append(again)
        await again.request("join", resume=inside.joined["resume_token"])
        second_teacher = await Client(server.ws_url).connect()
        clients.append(second_teacher)
        await second_teacher.join_teacher(lesson["teacher_token"])

        await teacher.request("settings", locked=False)
        late = await student_in(server, lesson, "Mai")
        clients.append(late)
    finally:
        for c in clients:
            await c.close()


async def test_hands_queue_in_order_and_only_staff_lower_others(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    a = await student_in(server, lesson, "Nam")
    b = await student_in(server, lesson, "Oanh")
    try:
        await b.request("raise_hand", raised=True)
        await a.request("raise_hand", raised=True)
        await b.request("raise_hand", raised=True)  # twice: keeps its place
        assert await wait_for(
            lambda: (
                [e["data"] for e in teacher.events if e["event"] == "hands"][-1:]
                == [{"queue": [pid(b), pid(a)]}]
            )
        )
        assert await refused(a, "lower_hand", participant=pid(b)) == "forbidden"
        await teacher.request("lower_hand", participant=pid(b))
        await a.request("raise_hand", raised=False)
        assert await wait_for(
            lambda: (
                [e["data"] for e in teacher.events if e["event"] == "hands"][-1] == {"queue": []}
            )
        )
    finally:
        for c in (a, b, teacher):
            await c.close()


async def test_a_removed_student_is_cut_off_within_a_second(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    intruder = await student_in(server, lesson, "Kẻ phá rối")
    other = await student_in(server, lesson, "Quang")
    try:
        await intruder.publish(ToneTrack())
        assert await wait_for(lambda: teacher.receiver.audio_frames > 25, timeout=15)
        left = asyncio.ensure_future(other.next_event("participant_left"))
        removed = asyncio.ensure_future(intruder.next_event("removed"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        await teacher.request("remove", participant=pid(intruder))
        assert (await removed) == {"by": pid(teacher), "banned": False}
        await asyncio.wait_for(intruder.closed.wait(), 1.0)
        assert loop.time() - start < 1.0
        assert intruder.close_code == 4005
        assert (await left) == {"id": pid(intruder), "reason": "removed"}
        await asyncio.sleep(0.2)
        assert await audio_frames_during(teacher, 1.0) == 0
        # The removed participant's resume token is dead.
        probe = await Client(server.ws_url).connect()
        try:
            code = await refused(probe, "join", resume=intruder.joined["resume_token"])
            assert code == "resume_failed"
        finally:
            await probe.close()
        # The lesson goes on for the others.
        assert await other.request("ping")
    finally:
        for c in (intruder, other, teacher):
            await c.close()


async def test_removing_a_reconnecting_participant_ends_its_grace_period(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Rơi mạng")
    try:
        away = asyncio.ensure_future(teacher.next_event("participant_updated"))
        student.ws.transport.abort()
        assert (await away)["state"] == "reconnecting"
        left = asyncio.ensure_future(teacher.next_event("participant_left"))
        await teacher.request("remove", participant=pid(student))
        assert (await left) == {"id": pid(student), "reason": "removed"}
        probe = await Client(server.ws_url).connect()
        try:
            code = await refused(probe, "join", resume=student.joined["resume_token"])
            assert code == "resume_failed"
        finally:
            await probe.close()
    finally:
        await student.close()
        await teacher.close()
