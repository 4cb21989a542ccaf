"""A live lesson end to end: real aiortc peers on loopback, through the real signaling and SFU."""

from __future__ import annotations

import asyncio
import time

import pytest

from media.router import COUNTERS
from tests.client import Client, ProtocolError
from tests.conftest import RunningServer
from tests.peers import ColourTrack, ToneTrack, close_to, wait_for

RED = (200, 30, 30)
GREEN = (30, 180, 60)


async def teacher_publishing(server: RunningServer, colour=RED) -> tuple[Client, dict]:
    lesson = await server.create_lesson()
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(lesson["teacher_token"])
    await teacher.publish(ColourTrack(colour), ToneTrack())
    await teacher.subscribe()
    return teacher, lesson


async def student_in(server: RunningServer, lesson: dict, name: str) -> Client:
    student = await Client(server.ws_url).connect()
    await student.join_student(lesson["lesson"]["code"], lesson["password"], name)
    await student.subscribe()
    return student


async def test_three_students_decode_the_teachers_picture_and_sound(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    students = [await student_in(server, lesson, f"Học sinh {i}") for i in range(3)]
    try:
        for s in students:
            assert s.receiver is not None
            assert await wait_for(lambda s=s: close_to(s.receiver.mean_rgb(), RED), timeout=15)
            assert await wait_for(lambda s=s: s.receiver.audio_frames > 25, timeout=10)
        kinds = sorted(t.kind for t in students[0].receiver.tracks)
        assert kinds == ["audio", "video"]
    finally:
        for c in [teacher, *students]:
            await c.close()


async def test_a_students_microphone_and_camera_reach_the_teacher(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Trần Thị Bình")
    try:
        await student.publish(ColourTrack(GREEN), ToneTrack())
        assert teacher.receiver is not None
        assert await wait_for(lambda: teacher.receiver.audio_frames > 25, timeout=15)
        assert await wait_for(lambda: close_to(teacher.receiver.mean_rgb(), GREEN), timeout=15)
    finally:
        await student.close()
        await teacher.close()


async def test_a_student_joining_late_gets_a_keyframe_at_once(server: RunningServer) -> None:
    """aiortc's VP8 encoder sends keyframes only when asked: the late student can decode only
    because the server asked the teacher for a keyframe when the student's consumer started."""
    teacher, lesson = await teacher_publishing(server)
    early = await student_in(server, lesson, "An")
    late = None
    try:
        assert await wait_for(lambda: close_to(early.receiver.mean_rgb(), RED), timeout=15)
        await asyncio.sleep(3)  # the lesson is under way
        requests_before = COUNTERS.keyframe_requests
        started = time.monotonic()
        late = await student_in(server, lesson, "Bình đến muộn")
        assert await wait_for(lambda: close_to(late.receiver.mean_rgb(), RED), timeout=10)
        elapsed = time.monotonic() - started
        assert COUNTERS.keyframe_requests > requests_before
        print(f"late joiner decoded the teacher's picture {elapsed * 1000:.0f} ms after joining")
    finally:
        for c in (teacher, early, late):
            if c is not None:
                await c.close()


async def test_wrong_password_is_refused_and_the_sixth_failure_is_rate_limited(
    server: RunningServer,
) -> None:
    lesson = await server.create_lesson()
    client = await Client(server.ws_url).connect()
    try:
        for _ in range(5):
            with pytest.raises(ProtocolError) as refused:
                await client.join_student(lesson["lesson"]["code"], "not-the-password", "Kẻ lạ")
            assert refused.value.code == "bad_password"
        with pytest.raises(ProtocolError) as limited:
            await client.join_student(lesson["lesson"]["code"], "not-the-password", "Kẻ lạ")
        assert limited.value.code == "rate_limited"
        assert limited.value.response["retry_after"] >= 1
        # Even the right password is refused inside the window.
        with pytest.raises(ProtocolError) as still:
            await client.join_student(lesson["lesson"]["code"], lesson["password"], "Kẻ lạ")
        assert still.value.code == "rate_limited"
    finally:
        await client.close()


async def test_a_student_cannot_publish_into_another_lesson(server: RunningServer) -> None:
    teacher_a, lesson_a = await teacher_publishing(server, RED)
    lesson_b = await server.create_lesson(title="Lớp 7B", password="mat-khau-lop-7b")
    teacher_b = await Client(server.ws_url).connect()
    await teacher_b.join_teacher(lesson_b["teacher_token"])  # nobody gets in before
    student_b = await student_in(server, lesson_b, "Học sinh lớp B")
    try:
        await student_b.publish(ColourTrack(GREEN), ToneTrack())
        await asyncio.sleep(2)
        # Teacher A never hears of, nor receives, lesson B's tracks.
        assert not [e for e in teacher_a.events if e["event"] == "track_published"]
        assert teacher_a.receiver is not None and teacher_a.receiver.tracks == []
        # And lesson B's student receives nothing of lesson A.
        assert student_b.receiver is not None and student_b.receiver.tracks == []
        assert student_b.joined["producers"] == []
        # A participant bound to one lesson cannot be used in another one's router.
        media = server.app.state.services.media
        participant_b = student_b.joined["participant"]["id"]
        with pytest.raises(Exception, match="another lesson"):
            await media.subscribe(lesson_a["lesson"]["id"], participant_b, [])
    finally:
        for c in (teacher_a, student_b, teacher_b):
            await c.close()
