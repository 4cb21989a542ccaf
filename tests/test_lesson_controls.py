"""pause, view and end_lesson through the real server with real aiortc peers."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Client, ProtocolError
from tests.conftest import RunningServer
from tests.peers import ColourTrack, ToneTrack, close_to, wait_for
from tests.test_live_lesson import RED, student_in, teacher_publishing

GREEN = (30, 180, 60)
BLUE = (40, 60, 200)


async def frames_during(receiver, track, seconds: float) -> int:  # type: ignore[no-untyped-def]
    before = receiver.frames_of.get(track, 0)
    await asyncio.sleep(seconds)
    return int(receiver.frames_of.get(track, 0) - before)


async def test_pausing_your_own_camera_stops_it_for_everyone_at_the_server(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Ngô Bảo")
    try:
        assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), RED), timeout=15)
        video = (await teacher_producers(teacher))[0]
        track = student.receiver.video_track_showing(RED)
        assert track is not None

        told = asyncio.ensure_future(student.next_event("track_state"))
        assert await teacher.request("pause", producer=video["id"], paused=True) == {
            "id": video["id"],
            "paused": True,
        }
        assert (await told) == {
            "id": video["id"],
            "participant": teacher.joined["participant"]["id"],
            "kind": "video",
            "paused": True,
        }
        await asyncio.sleep(0.3)  # frames already on the wire
        # The teacher's client keeps sending; the server forwards nothing.
        assert await frames_during(student.receiver, track, 1.5) == 0

        # A newcomer learns the paused state from the join response.
        late = await student_in(server, lesson, "Lý Mai")
        try:
            listed = {p["id"]: p["paused"] for p in late.joined["producers"]}
            assert listed[video["id"]] is True
        finally:
            await late.close()

        told = asyncio.ensure_future(student.next_event("track_state"))
        await teacher.request("pause", producer=video["id"], paused=False)
        assert (await told)["paused"] is False
        assert await wait_for(lambda: student.receiver.frames_of[track] > 0, timeout=5)
        assert await frames_during(student.receiver, track, 1.0) > 5
    finally:
        await student.close()
        await teacher.close()


async def teacher_producers(teacher: Client) -> list[dict]:
    """The teacher's own producers, from its publish response (kept by the client)."""
    return [p for p in teacher.published if p["kind"] == "video"]


async def test_nobody_can_pause_someone_elses_track(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Trịnh Khoa")
    try:
        video = (await teacher_producers(teacher))[0]
        for bad in (video["id"], "pr_nonexistent"):
            with pytest.raises(ProtocolError) as refused:
                await student.request("pause", producer=bad, paused=True)
            assert refused.value.code == "not_found"
        assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), RED), timeout=15)
        track = student.receiver.video_track_showing(RED)
        assert await frames_during(student.receiver, track, 1.0) > 5
    finally:
        await student.close()
        await teacher.close()


async def test_view_limits_which_students_video_the_teacher_receives(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    green = await student_in(server, lesson, "Học sinh xanh lá")
    blue = await student_in(server, lesson, "Học sinh xanh dương")
    try:
        await green.publish(ColourTrack(GREEN))
        await blue.publish(ColourTrack(BLUE))
        receiver = teacher.receiver
        assert await wait_for(lambda: receiver.video_track_showing(GREEN) is not None, timeout=15)
        assert await wait_for(lambda: receiver.video_track_showing(BLUE) is not None, timeout=15)
        green_track = receiver.video_track_showing(GREEN)
        blue_track = receiver.video_track_showing(BLUE)
        assert green_track is not None and blue_track is not None

        green_id = green.joined["participant"]["id"]
        assert await teacher.request("view", video=[green_id]) == {"video": [green_id]}
        await asyncio.sleep(0.3)
        assert await frames_during(receiver, blue_track, 1.5) == 0
        assert await frames_during(receiver, green_track, 1.0) > 5

        # Back to everyone: the blue student's video comes back (from a fresh keyframe).
        assert await teacher.request("view", video=None) == {"video": None}
        assert await wait_for(lambda: receiver.frames_of[blue_track] > 0, timeout=5)
        assert await frames_during(receiver, blue_track, 1.0) > 5
    finally:
        for c in (green, blue, teacher):
            await c.close()


async def test_a_view_applies_to_students_who_publish_later(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    green = await student_in(server, lesson, "Sớm")
    late = await student_in(server, lesson, "Muộn")
    try:
        await teacher.request("view", video=[green.joined["participant"]["id"]])
        await green.publish(ColourTrack(GREEN))
        await late.publish(ColourTrack(BLUE), ToneTrack())
        receiver = teacher.receiver
        assert await wait_for(lambda: receiver.video_track_showing(GREEN) is not None, timeout=15)
        assert await wait_for(lambda: receiver.audio_frames > 25, timeout=10)  # audio still flows
        await asyncio.sleep(1.0)
        assert receiver.video_track_showing(BLUE) is None
    finally:
        for c in (green, late, teacher):
            await c.close()


async def test_only_the_teacher_ends_the_lesson_and_then_nobody_gets_in(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Cao Nhi")
    try:
        with pytest.raises(ProtocolError) as refused:
            await student.request("end_lesson")
        assert refused.value.code == "forbidden"

        ended = asyncio.ensure_future(student.next_event("lesson_ended"))
        assert await teacher.request("end_lesson") == {}
        assert (await ended) == {"reason": "ended_by_teacher"}
        for c in (student, teacher):
            await asyncio.wait_for(c.closed.wait(), 5)
            assert c.close_code == 4003

        attempts = [
            {"code": lesson["lesson"]["code"], "password": lesson["password"], "name": "Cao Nhi"},
            {"token": lesson["teacher_token"]},
            {"resume": student.joined["resume_token"]},
        ]
        for fields in attempts:
            probe = await Client(server.ws_url).connect()
            try:
                with pytest.raises(ProtocolError) as refused:
                    await probe.request("join", **fields)
                assert refused.value.code in ("bad_password", "bad_token", "resume_failed")
            finally:
                await probe.close()
        assert not server.app.state.services.hub.lessons
        assert not server.app.state.services.media.routers
    finally:
        await student.close()
        await teacher.close()
