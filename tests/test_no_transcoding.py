"""The server never decodes or encodes while forwarding.

The server runs as its own process with aiortc's decoder and encoder factories replaced by
tripwires (tests/codec_tripwire.py); the test's peers, in this process, encode and decode for
real. Media must flow, and no tripwire may have fired.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from loadtests.server import serve_command, wait_healthy
from tests.client import Client
from tests.conftest import RunningServer, free_port
from tests.peers import ColourTrack, ToneTrack, close_to, wait_for

pytestmark = pytest.mark.slow


async def test_media_flows_with_codec_factories_forbidden_in_the_server(tmp_path: Path) -> None:
    port = free_port()
    tripwire = tmp_path / "tripwire.log"
    env = dict(os.environ, LOPHOC_TRIPWIRE=str(tripwire))
    process = subprocess.Popen(
        serve_command(
            port,
            tmp_path / "data",
            module="tests.codec_tripwire",
            log_level="warning",
            waiting_room="nobody",
        ),
        cwd=Path(__file__).parent.parent,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    clients: list[Client] = []
    try:
        await wait_healthy(base, 20, process)
        server = RunningServer(base, f"ws://127.0.0.1:{port}/ws", None)
        lesson = await server.create_lesson()
        teacher = await Client(server.ws_url).connect()
        clients.append(teacher)
        await teacher.join_teacher(lesson["teacher_token"])
        await teacher.publish(ColourTrack((40, 40, 220)), ToneTrack())
        await teacher.subscribe()
        student = await Client(server.ws_url).connect()
        clients.append(student)
        await student.join_student(lesson["lesson"]["code"], lesson["password"], "Lê Văn Cường")
        await student.subscribe()
        await student.publish(ToneTrack())
        assert student.receiver is not None and teacher.receiver is not None
        assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), (40, 40, 220)), 15)
        assert await wait_for(lambda: student.receiver.audio_frames > 25, 10)
        assert await wait_for(lambda: teacher.receiver.audio_frames > 25, 10)
        assert not tripwire.exists(), tripwire.read_text()
    finally:
        for c in clients:
            await c.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    assert not tripwire.exists()
