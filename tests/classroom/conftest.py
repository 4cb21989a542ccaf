"""Fixtures for the classroom tests: every store test runs on SQLite and PostgreSQL, every
limiter test on memory and Redis.

External services come from the environment, never from guesses:

* ``LOPHOC_TEST_POSTGRES_URL``, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``;
  each test gets a fresh schema, dropped afterwards.
* ``LOPHOC_TEST_REDIS_URL``, e.g. ``redis://127.0.0.1:6379/0``; each test gets its own key
  prefix, deleted afterwards.

Unset, those tests skip with a reason, except under ``CI``, where a missing or unreachable
service fails them: a CI run that silently skipped half the matrix would prove nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from classroom.lessons import LessonService
from classroom.passwords import PasswordHasher
from classroom.ratelimit import FailureLimiter, MemoryFailureLimiter, RedisFailureLimiter
from classroom.records import Records, open_records
from classroom.storage import Database, open_database
from tests.classroom.support import (
    FAST_ARGON2,
    FakeClock,
    FakeNow,
    RecordingHasher,
    School,
    make_school,
)
from tests.unavailable import unavailable


def service_url(variable: str, what: str) -> str:
    url = os.environ.get(variable)
    if not url:
        unavailable(f"{variable} is not set: skipping tests that need {what}")
    return url


def fail_unreachable(what: str, error: BaseException) -> NoReturn:
    """Configured but down is a failure, in CI or not: someone asked for this backend."""
    pytest.fail(f"{what} is configured but unreachable: {error!r}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hasher() -> RecordingHasher:
    return RecordingHasher(FAST_ARGON2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        async with await open_database(f"sqlite+aiosqlite:///{tmp_path}/lophoc.sqlite3") as db:
            yield db
        return
    url = service_url("LOPHOC_TEST_POSTGRES_URL", "a PostgreSQL database")
    schema = f"lophoc_test_{uuid.uuid4().hex[:16]}"
    try:
        db = await open_database(url, schema=schema)
    except (OSError, InterfaceError, OperationalError) as error:
        fail_unreachable("PostgreSQL", error)
    try:
        yield db
    finally:
        await db.close()
        await drop_schema(url, schema)


async def drop_schema(url: str, schema: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    url = service_url("LOPHOC_TEST_REDIS_URL", "a Redis server")
    client = Redis.from_url(url)
    try:
        await client.ping()
    except (OSError, RedisConnectionError) as error:
        await client.aclose()
        fail_unreachable("Redis", error)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix(redis_client: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"lophoc-test:{uuid.uuid4().hex}:{{failures}}:"
    yield prefix
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> FailureLimiter:
    if request.param == "memory":
        return MemoryFailureLimiter(clock=clock)
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    return RedisFailureLimiter(client, prefix=prefix, clock=clock)


@pytest.fixture
def service(database: Database, limiter: FailureLimiter, hasher: PasswordHasher) -> LessonService:
    return LessonService(database.lessons, limiter, hasher=hasher)


@pytest.fixture
def now() -> FakeNow:
    return FakeNow()


@pytest.fixture
async def records(
    database: Database, clock: FakeClock, hasher: PasswordHasher, now: FakeNow, tmp_path: Path
) -> Records:
    """The records services on each database, with an in-memory limiter (the limiter itself
    is tested on both backends in test_ratelimit.py and by the login tests)."""
    return await open_records(
        database,
        MemoryFailureLimiter(clock=clock),
        hasher=hasher,
        link_key_file=tmp_path / "link.key",
        node_id="node-a",
        clock=now,
    )


@pytest.fixture
def class_lessons(
    database: Database, records: Records, clock: FakeClock, hasher: PasswordHasher, now: FakeNow
) -> LessonService:
    """A LessonService that admits by personal link (its own limiter, on the fake clock)."""
    return LessonService(
        database.lessons,
        MemoryFailureLimiter(clock=clock),
        hasher=hasher,
        clock=now,
        links=records.links,
        teachers=records.accounts,
    )


@pytest.fixture
async def school(records: Records, class_lessons: LessonService) -> School:
    return await make_school(records, class_lessons)
