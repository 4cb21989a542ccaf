"""A student's network drops and comes back: the page resumes as the same participant.

The student's page is loaded through a TCP proxy on loopback (tests/e2e/proxy.py), so its
HTTP and its signaling WebSocket go through the proxy; its media goes straight to the server.
The teacher's page talks to the server directly. Cutting the proxy's connections is, for both
the browser and the server, a lost network on the student's side only."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.e2e.browser import Flow, video_advancing, video_has_size, wait_for_flows
from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.pages import (
    TIMEOUT,
    create_lesson,
    enable_sound_if_offered,
    handle,
    join_lesson,
    participant_id,
    record_states,
    recorded_states,
    tid,
    via,
)
from tests.e2e.proxy import TcpProxy

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TEACHER_VIDEO = '[data-testid="teacher-video"]'
RECONNECT_WITHIN = 15.0  # seconds


@pytest_asyncio.fixture(loop_scope="module")
async def proxy(lophoc: LophocServer) -> AsyncIterator[TcpProxy]:
    async with TcpProxy(lophoc.port) as running:
        yield running


def _joins(frames: list[str]) -> list[dict[str, object]]:
    joins = []
    for frame in frames:
        try:
            message = json.loads(frame)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("type") == "join":
            joins.append(message)
    return joins


async def test_reconnect(tabs: Tabs, lophoc: LophocServer, proxy: TcpProxy) -> None:
    teacher = await tabs.open("teacher")
    student = await tabs.open("student")
    name = "Ngô Thị Lan Anh"
    lesson = await create_lesson(teacher, lophoc.url, "Sinh học 7D", "mật-khẩu-7D")
    teacher_id = await participant_id(teacher.page)
    student_id = await join_lesson(student, via(lesson.link, proxy.url), name, lesson.password)
    assert student.page.url.startswith(proxy.url)
    assert proxy.live_connections() >= 1

    await video_has_size(student.page, TEACHER_VIDEO)
    await enable_sound_if_offered(student.page)
    await video_advancing(student.page, TEACHER_VIDEO)
    before, _ = await wait_for_flows(student.page, [Flow(teacher_id, "video")], label="student")
    await wait_for_flows(teacher.page, [Flow(student_id, "video")], label="teacher")
    row = teacher.page.locator(f'[data-testid="participant"][data-id="{student_id}"]')
    await expect(row).to_have_attribute("data-state", "connected")

    await record_states(student.page)
    await record_states(teacher.page)
    frames_before_cut = len(student.sent_frames)
    cut = proxy.cut()
    cut_at = time.monotonic()
    assert cut >= 1, "the proxy had no live connection to cut (the WebSocket bypasses it?)"

    # Back to connected, after having left it, as the same participant, within 15 s.
    await student.page.wait_for_function(
        """(id) => {
             const el = document.querySelector('[data-testid="connection-state"]');
             const left = window.__e2eSeen.states.some(
               (s) => s.testid === 'connection-state' && s.state !== 'connected');
             return left && el && el.dataset.state === 'connected'
                    && window.lophoc && window.lophoc.participantId === id;
           }""",
        arg=student_id,
        timeout=RECONNECT_WITHIN * 1000,
    )
    reconnected_after = time.monotonic() - cut_at
    states, join_form_shown = await recorded_states(student.page, "connection-state")
    assert "reconnecting" in states, f"connection-state went {states}, never 'reconnecting'"
    assert not join_form_shown, "the join form (password prompt) appeared during the resume"
    await expect(tid(student.page, "join-form")).to_be_hidden()
    assert (await handle(student.page)).get("participantId") == student_id

    new_frames = [frame for _, frame in student.sent_frames[frames_before_cut:]]
    joins = _joins(new_frames)
    assert joins, f"no join sent after the cut: {new_frames[:5]}"
    assert all("resume" in j and "password" not in j for j in joins), joins

    # Media again, on a new subscribe peer connection, both ways.
    await wait_for_flows(
        student.page,
        [Flow(teacher_id, "video")],
        label="student after the cut",
        not_pc=before.pc_id,
        timeout=RECONNECT_WITHIN,
    )
    await video_advancing(student.page, TEACHER_VIDEO)
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-state", "connected", timeout=TIMEOUT)
    await expect(teacher.page.get_by_test_id("participant").filter(has_text=name)).to_have_count(1)
    await wait_for_flows(teacher.page, [Flow(student_id, "video")], label="teacher after the cut")
    teacher_saw, _ = await recorded_states(teacher.page, "participant", student_id)
    print(
        f"reconnected {reconnected_after:.1f} s after the cut; student states {states}; "
        f"teacher showed the student as {teacher_saw or ['connected throughout']}"
    )
