"""Bad input over the real socket: each gets its stable error, only the sender is affected,
and another lesson's media keeps flowing."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from websockets.typing import Origin

from tests.client import Client, ProtocolError
from tests.conftest import RunningServer
from tests.peers import ColourTrack, ToneTrack, close_to, wait_for
from tests.test_live_lesson import student_in, teacher_publishing

NOT_SDP = "this is not SDP at all\r\n"


async def next_untagged(client: Client, count: int, timeout: float = 5) -> list[dict]:
    assert await wait_for(lambda: len(client.untagged) >= count, timeout)
    return client.untagged[:count]


async def test_bad_frames_get_errors_and_other_lessons_keep_their_media(
    server: RunningServer,
) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Phạm Thu Hà")
    assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), (200, 30, 30)), 15)

    other = await server.create_lesson(title="Lớp khác", password="mat-khau-khac")
    other_teacher = await Client(server.ws_url).connect()
    await other_teacher.join_teacher(other["teacher_token"])  # nobody gets in before
    attacker = await Client(server.ws_url).connect()
    try:
        # Before joining, nothing else is served.
        with pytest.raises(ProtocolError) as first:
            await attacker.request("ping")
        assert first.value.code == "not_authenticated"
        await attacker.join_student(other["lesson"]["code"], other["password"], "Kẻ phá")

        await attacker.send_raw("{not json")
        await attacker.send_raw("[1, 2, 3]")
        await attacker.send_raw(json.dumps({"type": "dance", "id": 1}))
        await attacker.send_raw(json.dumps({"type": "publish", "id": 2, "sdp": 5}))
        errors = await next_untagged(attacker, 2)
        codes = [e["code"] for e in errors]
        assert codes == ["malformed", "malformed"]
        assert all(e["id"] is None and e["message"] for e in errors)
        assert await wait_for(lambda: len(attacker.untagged) >= 2)

        unknown = await attacker.call("dance")
        assert unknown["type"] == "error" and unknown["code"] == "unknown_type"
        not_sdp = await attacker.call("publish", sdp=NOT_SDP)
        assert not_sdp["code"] == "bad_sdp" and not_sdp["message"]
        answer_without_offer = await attacker.call("answer", sdp=NOT_SDP, version=1)
        assert answer_without_offer["code"] in ("bad_sdp", "bad_version")
        no_transport = await attacker.call(
            "ice",
            pc="publish",
            candidate={"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
        )
        assert no_transport["code"] == "no_transport"
        # The session is still usable after all that.
        assert (await attacker.request("ping"))["time"] > 0

        # The other lesson never noticed: its student still receives the teacher.
        frames = len(student.receiver.video_frames)
        assert await wait_for(lambda: len(student.receiver.video_frames) > frames + 5, 5)
    finally:
        for c in (teacher, student, attacker, other_teacher):
            await c.close()


async def test_an_oversized_frame_closes_only_that_socket_with_1009(server: RunningServer) -> None:
    lesson = await server.create_lesson()
    bystander = await Client(server.ws_url).connect()
    await bystander.join_teacher(lesson["teacher_token"])
    big = await Client(server.ws_url).connect()
    try:
        await big.send_raw(json.dumps({"type": "ping", "id": 1, "pad": "x" * 70_000}))
        await asyncio.wait_for(big.closed.wait(), 5)
        assert big.close_code == 1009
        assert (await bystander.request("ping"))["time"] > 0
    finally:
        await big.close()
        await bystander.close()


async def test_a_flooding_socket_is_throttled_then_closed(server: RunningServer) -> None:
    lesson = await server.create_lesson()
    bystander = await Client(server.ws_url).connect()
    await bystander.join_teacher(lesson["teacher_token"])
    flood = await Client(server.ws_url).connect()
    try:
        for i in range(400):
            try:
                await flood.send_raw(json.dumps({"type": "ping", "id": i}))
            except websockets.ConnectionClosed:
                break
        await asyncio.wait_for(flood.closed.wait(), 10)
        assert flood.close_code == 1008
        assert any(m.get("code") == "rate_limited" for m in flood.untagged)
        assert (await bystander.request("ping"))["time"] > 0
    finally:
        await flood.close()
        await bystander.close()


async def test_a_foreign_origin_is_refused_before_anything_else(server: RunningServer) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url, origin=Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    own = await websockets.connect(server.ws_url, origin=Origin(server.base_url))
    await own.close()


async def test_lesson_api_refuses_bad_bodies(server: RunningServer) -> None:
    async with httpx.AsyncClient() as http:
        url = f"{server.base_url}/api/lessons"
        assert (await http.post(url, content=b"{oops")).json()["error"]["code"] == "malformed"
        weak = await http.post(url, json={"title": "Lớp 6", "password": "123"})
        assert weak.status_code == 400 and weak.json()["error"]["code"] == "weak_password"
        assert "123" not in weak.text
        health = await http.get(f"{server.base_url}/healthz")
        assert health.json() == {"status": "ok"}


async def test_a_student_sending_a_wrong_answer_version_is_refused(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await Client(server.ws_url).connect()
    try:
        await student.join_student(lesson["lesson"]["code"], lesson["password"], "Vũ Minh")
        offer = await student.request("subscribe")
        assert offer["sdp"]
        wrong = await student.call("answer", sdp=offer["sdp"], version=offer["version"] + 7)
        assert wrong["code"] in ("bad_sdp", "bad_version")
    finally:
        await student.close()
        await teacher.close()


async def test_media_counters_are_exported(server: RunningServer) -> None:
    teacher, lesson = await teacher_publishing(server)
    student = await student_in(server, lesson, "Đỗ Quang")
    try:
        assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), (200, 30, 30)), 15)
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{server.base_url}/metrics")).text
        line = next(
            x for x in text.splitlines() if x.startswith("lophoc_rtp_forwarded_packets_total")
        )
        assert float(line.split()[-1]) > 0
    finally:
        await student.close()
        await teacher.close()


_ = (ColourTrack, ToneTrack)
