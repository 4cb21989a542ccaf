"""Teacher and student wired to each other directly (no server): the measuring chain works.

The student's pc answers the teacher's publish offer as if it were the SFU, so payloads arrive
exactly as sent; this checks the send tap, the receive tap, frame completeness, loss counting
and latency lookup end to end on loopback, without depending on the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aioice.ice
import pytest

import loadtests.peers as peers
from loadtests.clip import ClipParams, load_clip
from loadtests.peers import RunContext, Student, Teacher
from media._aiortc import set_host_addresses


@pytest.fixture
def loopback_only() -> Iterator[None]:
    original = aioice.ice.get_host_addresses
    set_host_addresses(["127.0.0.1"])
    yield
    aioice.ice.get_host_addresses = original


class StudentSide:
    """Stands in for the student's socket: records the answer it sends."""

    def __init__(self) -> None:
        self.answer: str | None = None

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind == "answer":
            self.answer = fields["sdp"]
        return {}


class TeacherSide:
    """Stands in for the teacher's socket: the 'server' answering publish is the student."""

    def __init__(self, student: Student, student_side: StudentSide) -> None:
        self.student = student
        self.student_side = student_side

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind == "publish":
            await self.student._apply_offer({"sdp": fields["sdp"], "version": 1})
            return {"sdp": self.student_side.answer, "producers": [{"id": "a"}, {"id": "v"}]}
        return {}

    async def close(self) -> None:
        pass


@pytest.mark.slow
async def test_teacher_to_student_direct(
    loopback_only: None, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = load_clip(tmp_path, ClipParams(seconds=2, width=320, height=180), log=False)
    ctx = RunContext(ws_url="ws://unused", origin="http://unused")
    student = Student(ctx, 1, "000", "pw")
    student_side = StudentSide()
    student.sig = student_side  # type: ignore[assignment]
    teacher = Teacher(ctx, "token", clip)

    async def open_fake(*args: Any, **kwargs: Any) -> TeacherSide:
        return TeacherSide(student, student_side)

    monkeypatch.setattr(peers.Signaling, "open", open_fake)
    student.opened_at = time.perf_counter()
    try:
        await teacher.start(within=10)
        ctx.measuring = True
        for _ in range(50):
            await asyncio.sleep(0.1)
            if len(ctx.latencies) > 100 and student.first_keyframe_at is not None:
                break
        ctx.measuring = False
        video = student.video()
        assert video is not None
        assert video.frames > 0
        assert video.seq.received > 0
        assert video.seq.expected == video.seq.received  # loopback: nothing lost
        assert student.first_frame_at is not None
        assert student.first_keyframe_at is not None
        assert len(ctx.latencies) > 100
        assert all(x >= 0 for x in ctx.latencies)
        assert teacher.sent_packets >= video.seq.received
        kinds = sorted(s.kind for s in student.streams.values())
        assert kinds == ["audio", "video"]
    finally:
        await teacher.close()
        await student.pc.close()
