"""The hub opens a lesson only on the node the lesson directory says owns it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from classroom.directory import MemoryDirectory
from classroom.lessons import Lesson
from signaling.errors import SignalingError
from signaling.hub import Hub
from signaling.limits import Limits


def lesson(lesson_id: str) -> Lesson:
    return Lesson(lesson_id, "123456", "Toán", datetime(2026, 12, 4, tzinfo=UTC), None)


async def test_a_second_node_does_not_open_a_lesson_another_node_owns() -> None:
    directory = MemoryDirectory(lease_seconds=15)
    a = Hub(directory=directory, node="node-a")
    b = Hub(directory=directory, node="node-b")
    try:
        live = await a.open(lesson("l_1"), Limits())
        assert await a.open(lesson("l_1"), Limits()) is live
        with pytest.raises(SignalingError) as refused:
            await b.open(lesson("l_1"), Limits())
        assert refused.value.code == "lesson_elsewhere"
        # Nobody in it any more: node-a lets it go, and node-b may take it.
        a.drop_if_empty("l_1")
        await asyncio.sleep(0)
        assert await directory.owner("l_1") is None
        assert (await b.open(lesson("l_1"), Limits())).lesson.id == "l_1"
        assert await directory.owner("l_1") == "node-b"
    finally:
        await a.close()
        await b.close()


async def test_a_resume_token_is_left_for_the_node_that_owns_its_lesson() -> None:
    directory = MemoryDirectory(lease_seconds=15)
    a = Hub(directory=directory, node="node-a")
    b = Hub(directory=directory, node="node-b")
    try:
        await a.open(lesson("l_1"), Limits())
        token = await a.issue_resume_token("l_1", "p_1")
        with pytest.raises(SignalingError) as refused:
            await b.take_resume(token)
        assert refused.value.code == "lesson_elsewhere"
        ticket = await a.take_resume(token)  # still live for the owner
        assert ticket is not None and ticket.participant_id == "p_1"
        assert await a.take_resume(token) is None
    finally:
        await a.close()
        await b.close()
