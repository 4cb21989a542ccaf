"""Two nodes sharing one database and one Redis: a lesson lives on the node that claimed it,
and the other node neither opens a second copy of it nor uses up its resume tokens
(docs/layout.md, "Scaling out")."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.client import Client, ProtocolError
from tests.conftest import RunningServer, run_server
from tests.unavailable import unavailable

pytestmark = pytest.mark.redis


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    url = os.environ.get("LOPHOC_TEST_REDIS_URL")
    if not url:
        unavailable("LOPHOC_TEST_REDIS_URL is not set: skipping tests that need a Redis server")
    database = f"sqlite+aiosqlite:///{(tmp_path / 'shared.sqlite3').resolve()}"
    # Nodes that share a database sign join links with one key, made once by the operator.
    key = tmp_path / "link.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    shared = {"database_url": database, "redis_url": url, "link_key_file": key}
    async with (
        run_server(tmp_path / "a", node="node-a", **shared) as a,
        run_server(tmp_path / "b", node="node-b", **shared) as b,
    ):
        yield a, b


async def refusal(server: RunningServer, **fields: object) -> str:
    probe = await Client(server.ws_url).connect()
    try:
        with pytest.raises(ProtocolError) as refused:
            await probe.request("join", **fields)
        return str(refused.value.code)
    finally:
        await probe.close()


async def test_a_lesson_lives_on_one_node_and_its_tokens_stay_there(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with two_nodes(tmp_path) as (a, b):
        lesson = await a.create_lesson()
        teacher = await Client(a.ws_url).connect()
        student: Client | None = None
        try:
            await teacher.join_teacher(lesson["teacher_token"])
            code, password = lesson["lesson"]["code"], lesson["password"]
            # Node b knows the lesson (shared database) but node a teaches it.
            assert await refusal(b, code=code, password=password, name="Lê Văn Cường") == (
                "lesson_elsewhere"
            )
            assert not b.app.state.services.hub.lessons
            student = await Client(a.ws_url).connect()
            await student.join_student(code, password, "Lê Văn Cường")
            token = student.joined["resume_token"]
            # A resume that reaches node b leaves the token for node a.
            assert await refusal(b, resume=token) == "lesson_elsewhere"
            again = await Client(a.ws_url).connect()
            resumed = await again.request("join", resume=token)
            assert resumed["resumed"] is True
            assert resumed["participant"]["id"] == student.joined["participant"]["id"]
            await student.close()
            student = again
            presence = await a.app.state.services.hub.directory.presence(lesson["lesson"]["id"])
            assert sorted(presence.values()) == ["connected", "connected"]
            assert await b.app.state.services.hub.directory.owner(lesson["lesson"]["id"]) == (
                "node-a"
            )
        finally:
            for client in (student, teacher):
                if client is not None:
                    await client.close()
        redis = Redis.from_url(os.environ["LOPHOC_TEST_REDIS_URL"])
        try:
            keys = [k async for k in redis.scan_iter(match=f"*{lesson['lesson']['id']}*")]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


def test_every_node_has_a_name_of_its_own() -> None:
    from web.config import Settings

    assert Settings().node != Settings().node
