"""Slow clients cannot hold the server's sockets (the HTTP read limits of web/http_guard.py).

Pass criterion: 200 connections dribbling a WebSocket upgrade one byte a second are all cut
by the head timeout (10 s) while a normal student joins and sees the teacher's picture; when
more connections wait for a request than the server allows, the longest-waiting are cut and a
new request is served at once; a body dribbled slower than the request timeout, and a
kept-alive connection's dribbled second request, are cut too; a client that is merely slow,
within the limits, is served. Cuts are counted in ``lophoc_http_cut_total{reason}``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, run_server
from tests.peers import close_to, wait_for
from tests.test_live_lesson import RED, student_in, teacher_publishing
from web.http_guard import HttpLimits

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Origin: http://127.0.0.1\r\n\r\n"
)


async def cuts(server: RunningServer, reason: str) -> int:
    """The server's count of connections cut for ``reason``, as ``/metrics`` shows it."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
        text = (await http.get("/metrics")).text
    line = f'lophoc_http_cut_total{{reason="{reason}"}} '
    (value,) = [row[len(line) :] for row in text.splitlines() if row.startswith(line)]
    return int(float(value))


def port_of(server: RunningServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


async def dribble(port: int, data: bytes, *, every: float = 1.0, head: bytes = b"") -> float | None:
    """Send ``head`` at once, then ``data`` a byte per ``every`` seconds. The seconds after
    which the server closed the connection, or None if it never did."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    try:
        if head:
            writer.write(head)
        for byte in data:
            writer.write(bytes([byte]))
            try:
                got = await asyncio.wait_for(reader.read(4096), every)
            except TimeoutError:
                continue
            except ConnectionError:
                return time.monotonic() - start
            if not got:
                return time.monotonic() - start
        return None
    finally:
        writer.close()


@pytest.mark.slow
async def test_200_dribbled_upgrades_are_cut_while_a_student_joins(server: RunningServer) -> None:
    port = port_of(server)
    before = await cuts(server, "head_timeout")
    dribblers = [asyncio.ensure_future(dribble(port, UPGRADE)) for _ in range(200)]
    try:
        await asyncio.sleep(2.0)
        teacher, lesson = await teacher_publishing(server)
        student = await student_in(server, lesson, "Nguyễn Văn An")
        try:
            assert await wait_for(lambda: close_to(student.receiver.mean_rgb(), RED), 10)
        finally:
            await student.close()
            await teacher.close()
        cut_after = await asyncio.gather(*dribblers)
    finally:
        for task in dribblers:
            task.cancel()
    assert all(t is not None for t in cut_after), sum(t is None for t in cut_after)
    assert min(t for t in cut_after if t is not None) >= HttpLimits().head_timeout - 0.5
    assert max(t for t in cut_after if t is not None) <= HttpLimits().head_timeout + 3.0
    assert await cuts(server, "head_timeout") - before >= 200


async def test_the_longest_waiting_are_cut_when_too_many_wait(tmp_path: Path) -> None:
    limits = HttpLimits(max_in_progress=20)
    async with run_server(tmp_path, http=limits) as server:
        port = port_of(server)
        before = await cuts(server, "too_many_in_progress")
        dribblers = []
        for _ in range(50):
            dribblers.append(asyncio.ensure_future(dribble(port, UPGRADE)))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        # A new request is served at once: it pushes out the oldest dribbler, not itself.
        async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as http:
            assert (await http.get("/healthz")).status_code == 200
        await asyncio.sleep(1.5)
        done = [t for t in dribblers if t.done()]
        for task in dribblers:
            task.cancel()
        await asyncio.gather(*dribblers, return_exceptions=True)
        await asyncio.sleep(0.2)  # the server sees them go before /metrics is asked
        # 30 pushed out by the next 30 dribblers, and one more by the real request.
        assert await cuts(server, "too_many_in_progress") - before == 31
        assert len(done) == 31
        assert set(done) == set(dribblers[:31])


async def test_a_dribbled_body_and_a_dribbled_second_request_are_cut(tmp_path: Path) -> None:
    limits = HttpLimits(head_timeout=1.0, request_timeout=2.0)
    async with run_server(tmp_path, http=limits) as server:
        port = port_of(server)
        body_cuts, head_cuts = (
            await cuts(server, "request_timeout"),
            await cuts(server, "head_timeout"),
        )
        head = (
            b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 40\r\n\r\n"
        )
        cut = await dribble(port, b"x" * 40, every=0.25, head=head)
        assert cut is not None and 1.5 <= cut <= 3.0, cut
        assert await cuts(server, "request_timeout") == body_cuts + 1

        # Keep-alive: the first request is answered, the second is dribbled.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(
                b"HTTP/1.1 200"
            )
            await asyncio.wait_for(reader.read(4096), 1)  # the body
            start = time.monotonic()
            closed_after = None
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n":
                writer.write(bytes([byte]))
                try:
                    if not await asyncio.wait_for(reader.read(4096), 0.2):
                        closed_after = time.monotonic() - start
                        break
                except TimeoutError:
                    continue
            assert closed_after is not None and 0.8 <= closed_after <= 2.0, closed_after
        finally:
            writer.close()
        assert await cuts(server, "head_timeout") == head_cuts + 1


async def test_a_slow_client_within_the_limits_is_served(tmp_path: Path) -> None:
    limits = HttpLimits(head_timeout=2.0, request_timeout=4.0)
    async with run_server(tmp_path, http=limits) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
        try:
            request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            for i in range(0, len(request), 8):
                writer.write(request[i : i + 8])
                await asyncio.sleep(0.15)  # about 1 s for the whole head
            response = await asyncio.wait_for(reader.read(), 5)
            assert response.startswith(b"HTTP/1.1 200"), response[:80]
        finally:
            writer.close()


def test_the_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        HttpLimits(head_timeout=0)
    with pytest.raises(ValueError):
        HttpLimits(head_timeout=10, request_timeout=5)
    with pytest.raises(ValueError):
        HttpLimits(max_in_progress=0)
