"""The server and real Chromium, without the lesson pages: a protocol client inside the browser
(tests/e2e/raw_client.py) publishes the fake camera and microphone, the other side decodes
them, everything stays on 127.0.0.1, and a cut connection resumes as the same participant.

These isolate the server side: when they pass and a page test fails, the pages are at fault."""

from __future__ import annotations

import ipaddress

import pytest

from tests.e2e.browser import Flow, ice_report, wait_for_flows
from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.proxy import TcpProxy
from tests.e2e.raw_client import raw_join

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


def _loopback(address: str | None) -> bool:
    return address is not None and ipaddress.ip_address(address).is_loopback


async def test_raw_protocol_media_on_loopback(tabs: Tabs, lophoc: LophocServer) -> None:
    lesson = await lophoc.create_lesson("Vật lý 8B", "mật-khẩu-8B")
    teacher = await tabs.open("teacher")
    student = await tabs.open("student")
    for tab in (teacher, student):
        await tab.page.goto(lophoc.url + "/")
    teacher_id = await raw_join(teacher.page, token=lesson["teacher_token"], publish=True)
    student_id = await raw_join(
        student.page,
        code=lesson["lesson"]["code"],
        password="mật-khẩu-8B",
        name="Phạm Minh Châu",
        publish=True,
    )
    await wait_for_flows(
        student.page,
        [Flow(teacher_id, "video"), Flow(teacher_id, "audio", "bytesReceived")],
        label="student",
    )
    await wait_for_flows(teacher.page, [Flow(student_id, "video")], label="teacher")
    for tab in (teacher, student):
        for which in ("publish", "subscribe"):
            report = await ice_report(tab.page, which)  # type: ignore[arg-type]
            selected = report["selected"]
            assert selected is not None, (tab.label, which, report)
            assert selected["local"]["address"] == "127.0.0.1", (tab.label, which, report)
            assert selected["remote"]["address"] == "127.0.0.1", (tab.label, which, report)
            remote = [c["address"] for c in report["remoteCandidates"]]
            assert remote and all(_loopback(a) for a in remote), (tab.label, which, report)


async def test_raw_protocol_resumes_through_a_cut(tabs: Tabs, lophoc: LophocServer) -> None:
    lesson = await lophoc.create_lesson("Hóa học 9C", "mật-khẩu-9C")
    teacher = await tabs.open("teacher")
    student = await tabs.open("student")
    async with TcpProxy(lophoc.port) as proxy:
        await teacher.page.goto(lophoc.url + "/")
        await student.page.goto(proxy.url + "/")
        teacher_id = await raw_join(teacher.page, token=lesson["teacher_token"], publish=True)
        student_id = await raw_join(
            student.page,
            code=lesson["lesson"]["code"],
            password="mật-khẩu-9C",
            name="Đỗ Quang Huy",
            publish=True,
        )
        before, _ = await wait_for_flows(student.page, [Flow(teacher_id, "video")])
        assert proxy.cut() >= 1
        await student.page.wait_for_function(
            "(id) => window.lophoc.state === 'connected' && window.lophoc.participantId === id"
            " && window.lophoc.log.some((l) => l.startsWith('close'))",
            arg=student_id,
            timeout=15_000,
        )
        await wait_for_flows(student.page, [Flow(teacher_id, "video")], not_pc=before.pc_id)
        await wait_for_flows(teacher.page, [Flow(student_id, "video")], label="teacher")
        resumes = [f for f in student.sent_messages() if '"resume"' in f]
        assert len(resumes) == 1, student.sent_messages()
