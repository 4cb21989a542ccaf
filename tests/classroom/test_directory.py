"""The LessonDirectory port (classroom/directory.py): leases, presence, resume tickets and
commands, written against the port so every implementation passes the same tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from classroom.directory import Command, LessonDirectory, MemoryDirectory, RedisDirectory


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Make = Callable[[Clock], LessonDirectory]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make(request: pytest.FixtureRequest) -> Make:
    if request.param == "memory":
        return lambda clock: MemoryDirectory(lease_seconds=15, clock=clock)
    client = request.getfixturevalue("redis_client")
    prefix = request.getfixturevalue("redis_prefix")
    return lambda clock: RedisDirectory(client, prefix=prefix, lease_seconds=15, clock=clock)


async def test_one_node_owns_a_lesson_until_its_lease_lapses(make: Make) -> None:
    clock = Clock()
    directory = make(clock)
    assert await directory.owner("l_1") is None
    assert await directory.claim("l_1", "node-a") == "node-a"
    assert await directory.claim("l_1", "node-b") == "node-a"
    clock.now += 10
    assert await directory.claim("l_1", "node-a") == "node-a"  # renewed for 15 s more
    clock.now += 10
    assert await directory.owner("l_1") == "node-a"
    clock.now += 6  # node-a stopped renewing: its lease lapsed
    assert await directory.owner("l_1") is None
    assert await directory.claim("l_1", "node-b") == "node-b"


async def test_only_the_owner_releases_and_presence_goes_with_the_lesson(make: Make) -> None:
    directory = make(Clock())
    await directory.claim("l_1", "node-a")
    await directory.set_presence("l_1", "p_1", "connected")
    await directory.set_presence("l_1", "p_2", "waiting")
    await directory.release("l_1", "node-b")
    assert await directory.owner("l_1") == "node-a"
    await directory.release("l_1", "node-a")
    assert await directory.owner("l_1") is None
    assert await directory.presence("l_1") == {}


async def test_presence_follows_each_participant(make: Make) -> None:
    directory = make(Clock())
    await directory.set_presence("l_1", "p_1", "connected")
    await directory.set_presence("l_1", "p_2", "waiting")
    await directory.set_presence("l_2", "p_3", "connected")
    await directory.set_presence("l_1", "p_1", "reconnecting")
    assert await directory.presence("l_1") == {"p_1": "reconnecting", "p_2": "waiting"}
    await directory.set_presence("l_1", "p_2", None)
    await directory.set_presence("l_1", "p_9", None)  # never there: nothing happens
    assert await directory.presence("l_1") == {"p_1": "reconnecting"}
    with pytest.raises(ValueError):
        await directory.set_presence("l_1", "p_1", "dancing")  # type: ignore[arg-type]


async def test_a_resume_ticket_works_once_and_only_the_newest(make: Make) -> None:
    directory = make(Clock())
    first = await directory.issue_ticket("l_1", "p_1")
    second = await directory.issue_ticket("l_1", "p_1")
    assert first != second
    assert await directory.take_ticket(first) is None  # replaced by the newer one
    ticket = await directory.take_ticket(second)
    assert ticket is not None and (ticket.lesson_id, ticket.participant_id) == ("l_1", "p_1")
    assert await directory.take_ticket(second) is None  # used up
    third = await directory.issue_ticket("l_1", "p_1")
    await directory.revoke_tickets("p_1")
    assert await directory.take_ticket(third) is None
    assert await directory.take_ticket("not a token") is None


async def test_commands_reach_the_owner_of_the_lesson(make: Make) -> None:
    directory = make(Clock())
    remove = Command("l_1", "remove", {"participant": "p_1"})
    assert not await directory.send(remove)  # nobody owns the lesson: nowhere to go
    await directory.claim("l_1", "node-a")
    assert await directory.send(remove)
    assert await asyncio.wait_for(directory.next_command("node-a"), 1) == remove
    assert await directory.send(Command("l_1", "end", {}))
    assert (await asyncio.wait_for(directory.next_command("node-a"), 1)).name == "end"
    waiting = asyncio.ensure_future(directory.next_command("node-b"))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # node-b owns nothing: it hears nothing
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


async def test_a_node_taking_over_a_lapsed_lesson_starts_with_no_presence(make: Make) -> None:
    clock = Clock()
    directory = make(clock)
    await directory.claim("l_1", "node-a")
    await directory.set_presence("l_1", "p_1", "connected")
    clock.now += 16
    assert await directory.claim("l_1", "node-b") == "node-b"
    assert await directory.presence("l_1") == {}


async def test_a_ticket_can_be_read_without_using_it_up(make: Make) -> None:
    directory = make(Clock())
    token = await directory.issue_ticket("l_1", "p_1")
    peeked = await directory.peek_ticket(token)
    assert peeked is not None and peeked.participant_id == "p_1"
    assert await directory.take_ticket(token) == peeked
    assert await directory.peek_ticket(token) is None
