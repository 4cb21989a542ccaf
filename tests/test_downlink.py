"""What a subscriber's link carries, through the real server with real aiortc peers: the data
saver, the downlink event, the link state staff see, and the staff's connection figures."""

from __future__ import annotations

import asyncio

import pytest

from tests.client import Client, ProtocolError
from tests.conftest import RunningServer
from tests.peers import close_to, wait_for
from tests.test_lesson_controls import frames_during
from tests.test_live_lesson import RED, student_in, teacher_publishing


async def test_data_saver_stops_video_keeps_audio_and_everyone_is_told(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Đỗ Minh Châu")
    student_id = student.joined["participant"]["id"]
    try:
        assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), RED), timeout=15)
        track = student.receiver.video_track_showing(RED)
        assert track is not None
        assert student.joined["data_saver"] is False
        listed = {p["id"]: p for p in teacher.saw("participant_joined")}
        assert listed[student_id]["link"] == "ok"

        told = asyncio.ensure_future(student.next_event("downlink"))
        staff_told = asyncio.ensure_future(teacher.next_event("participant_updated"))
        assert await student.request("data_saver", on=True) == {"on": True}
        downlink = await told
        assert downlink["state"] == "audio_only"
        assert downlink["reason"] == "data_saver"
        assert (await staff_told) == {**listed[student_id], "link": "audio_only"}

        await asyncio.sleep(0.3)  # frames already on the wire
        audio_before = student.receiver.audio_frames
        assert await frames_during(student.receiver, track, 1.5) == 0
        assert student.receiver.audio_frames > audio_before + 25  # the sound goes on

        figures = await teacher.request("stats", participant=student_id)
        assert figures["link"] == figures["state"] == "audio_only"
        assert figures["estimate"] > 0 and figures["sent_bitrate"] > 0
        # None until the first consent check (about 5 s in) has measured a round trip
        assert figures["rtt"] is None or 0 <= figures["rtt"] <= 1000
        assert 0 <= figures["loss"] <= 1
        assert {t["kind"]: t["paused"] for t in figures["tracks"]} == {
            "video": True,
            "audio": False,
        }
        down = figures["downlink"]
        assert down["state"] == "audio_only" and down["connected"] is True
        assert down["estimate"] > 0 and down["estimator"]["source"] in ("remb", "loss", "start")
        kinds = {t["kind"]: t for t in down["tracks"]}
        assert kinds["video"]["wanted"] is False and kinds["video"]["paused"] is True
        assert kinds["audio"]["paused"] is False

        told = asyncio.ensure_future(student.next_event("downlink"))
        assert await student.request("data_saver", on=False) == {"on": False}
        assert (await told)["state"] == "ok"
        assert await wait_for(lambda: student.receiver.frames_of[track] > 0, timeout=5)
        assert await frames_during(student.receiver, track, 1.0) > 5
    finally:
        await student.close()
        await teacher.close()


async def test_only_staff_read_connection_figures(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Hà Thu")
    try:
        teacher_id = teacher.joined["participant"]["id"]
        with pytest.raises(ProtocolError) as refused:
            await student.request("stats", participant=teacher_id)
        assert refused.value.code == "forbidden"
        with pytest.raises(ProtocolError) as missing:
            await teacher.request("stats", participant="p_nobody")
        assert missing.value.code == "not_found"
        own = await teacher.request("stats", participant=teacher_id)
        assert sorted(u["kind"] for u in own["uplink"]) == ["audio", "video"]
        # The round trip shown is one the consent checks measured (the first after ~5 s),
        # never a default standing in for it.
        student_id = student.joined["participant"]["id"]
        rtts: list[int | None] = []

        async def measured() -> bool:
            rtts.append((await teacher.request("stats", participant=student_id))["rtt"])
            return rtts[-1] is not None

        for _ in range(40):
            if await measured():
                break
            await asyncio.sleep(0.25)
        assert rtts[-1] is not None and 0 <= rtts[-1] <= 100  # loopback
    finally:
        await student.close()
        await teacher.close()


async def test_bad_data_saver_requests_get_clear_errors(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Lò Văn Sáng")
    try:
        for fields in ({}, {"on": "yes"}, {"on": 1}):
            with pytest.raises(ProtocolError) as refused:
                await student.request("data_saver", **fields)
            assert refused.value.code == "malformed"
            assert refused.value.response["message"]
        # what was accepted before is kept: the student still receives video
        assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), RED), timeout=15)
    finally:
        await student.close()
        await teacher.close()


async def test_turning_the_data_saver_off_is_always_told(server: RunningServer) -> None:
    """As after a reload: the choice is sent before the subscribe connection exists, then
    turned off at once — the student hears ``ok`` again, never stays on audio only."""
    teacher, lesson = await teacher_publishing(server)
    student = await Client(server.ws_url).connect()
    try:
        await student.join_student(lesson["lesson"]["code"], lesson["password"], "Vi Thị Nga")
        told = asyncio.ensure_future(student.next_event("downlink"))
        assert await student.request("data_saver", on=True) == {"on": True}
        assert (await told)["reason"] == "data_saver"
        await student.subscribe()
        told = asyncio.ensure_future(student.next_event("downlink"))
        assert await student.request("data_saver", on=False) == {"on": False}
        assert (await told)["state"] == "ok"
        assert student.receiver is not None
        assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), RED), timeout=15)
    finally:
        await student.close()
        await teacher.close()
