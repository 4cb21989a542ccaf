"""kill -9 in the middle of a lesson loses no acknowledged join.

The server runs as its own process on SQLite (WAL, synchronous=FULL). Students join in a
storm; the process is killed with SIGKILL while joins are still in flight; it is started
again on the same data. Every student who was told "joined" has exactly one committed join,
and every interval the dead process left open is closed at its last heartbeat (or at the join,
if that came later), flagged as closed by recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from classroom.admin import admin_records
from loadtests.server import ServerError, serve_command, wait_healthy
from tests.client import Client, ProtocolError
from tests.conftest import free_port

pytestmark = pytest.mark.slow

NODE = "node-crash-test"
ROOT = Path(__file__).parent.parent


@contextlib.asynccontextmanager
async def server_process(data: Path, port: int) -> AsyncIterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        serve_command(port, data, log_level="warning", waiting_room="nobody"),
        cwd=ROOT,
        env=dict(os.environ, LOPHOC_NODE_ID=NODE),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        try:
            await wait_healthy(f"http://127.0.0.1:{port}", 30, process)
        except ServerError as exc:
            log = process.stderr.read().decode() if process.stderr and process.poll() else ""
            raise AssertionError(f"{exc}\n{log}") from None
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


async def join(
    url: str,
    lesson: dict[str, Any],
    name: str,
    acknowledged: dict[str, str],
    source: str,
    enough: asyncio.Event,
) -> None:
    try:
        client = await Client(url).connect(local_addr=(source, 0))
    except OSError:
        return  # the server is already dead
    try:
        data = await client.request(
            "join", code=lesson["lesson"]["code"], password=lesson["password"], name=name
        )
        acknowledged[data["participant"]["id"]] = name
        if len(acknowledged) >= 10:
            enough.set()
        await client.closed.wait()
    except (TimeoutError, ProtocolError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            await client.close()


async def test_sigkill_during_a_join_storm_loses_no_acknowledged_join(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    acknowledged: dict[str, str] = {}
    async with server_process(data, port) as process:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"http://127.0.0.1:{port}/api/lessons",
                json={"title": "Toán 7A", "password": "mat-khau-lop-7a"},
            )
        lesson = response.json() | {"password": "mat-khau-lop-7a"}
        # The teacher is in (nobody is let in before), and the server lets guests straight in.
        teacher = await Client(url).connect()
        await teacher.request("join", token=lesson["teacher_token"])
        # A few students leave normally before the crash: their intervals are closed already.
        leavers = []
        for i in range(3):
            client = await Client(url).connect()
            joined = await client.request(
                "join", code=lesson["lesson"]["code"], password=lesson["password"], name=f"Về {i}"
            )
            leavers.append(joined["participant"]["id"])
            await client.request("leave")
            await client.close()
        # Each student from its own loopback address, as from their own homes (a storm from
        # one address would be throttled by the per-address join limits).
        enough = asyncio.Event()
        storm = [
            asyncio.ensure_future(
                join(url, lesson, f"Học sinh {i}", acknowledged, f"127.0.0.{10 + i}", enough)
            )
            for i in range(25)
        ]
        await asyncio.wait_for(enough.wait(), 60)
        os.kill(process.pid, signal.SIGKILL)  # joins are still in flight
        process.wait(10)
        told = dict(acknowledged)  # nothing can be acknowledged after the kill
        await asyncio.wait_for(asyncio.gather(*storm), 30)
        assert acknowledged == told
        print("acknowledged before the kill:", len(told), "of", len(storm))

    db_url = f"sqlite+aiosqlite:///{(data / 'lophoc.sqlite3').resolve()}"
    async with admin_records(db_url) as records:
        last_beat = await records.attendance._store.last_heartbeat(NODE)
        assert last_beat is not None
        assert not [
            e for e in await records.attendance.events(lesson["lesson"]["id"]) if e.recovered
        ]

    # Restart on the same data: recovery runs before the server serves.
    async with server_process(data, port):
        pass

    async with admin_records(db_url) as records:
        events = await records.attendance.events(lesson["lesson"]["id"])
    by_participant: dict[str, list[Any]] = {}
    for event in events:
        by_participant.setdefault(event.participant_id, []).append(event)

    assert len(told) >= 10
    for pid, name in told.items():
        history = by_participant.get(pid, [])
        assert [e.kind for e in history if e.kind == "joined"] == ["joined"], (name, history)
        assert history[-1].kind == "left" and history[-1].recovered, (name, history)
        assert history[-1].reason == "closed_by_recovery"
        assert history[-1].at == max(last_beat, history[0].at)
        assert history[0].display_name == name
    for pid in leavers:
        assert [(e.kind, e.reason, e.recovered) for e in by_participant[pid]] == [
            ("joined", None, False),
            ("left", "left", False),
        ]
    # Joins written but never acknowledged (killed between commit and reply) are closed too:
    # nothing stays open, and nobody has two joins.
    for history in by_participant.values():
        assert [e.kind for e in history].count("joined") == 1
        assert history[-1].kind == "left"
