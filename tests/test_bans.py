"""Remove and ban: a banned student's link — old or reissued — resume token
and browser are refused in this lesson, on this node and another, and after a restart; the
teacher can lift the ban; every step is in the audit log."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.client import Client, ProtocolError
from tests.conftest import RunningServer, run_server
from tests.test_attendance_live import class_lesson, events_of, join_by_link, kinds
from tests.test_resume import resume_refusal

DEVICE = "device-key-of-a-browser-0001"


async def join_refusal(server: RunningServer, **fields: object) -> str:
    probe = await Client(server.ws_url).connect()
    try:
        with pytest.raises(ProtocolError) as refused:
            await probe.request("join", **fields)
        assert refused.value.response["message"]
        return str(refused.value.code)
    finally:
        await probe.close()


async def test_a_banned_students_link_resume_token_and_new_links_are_refused(
    server: RunningServer,
) -> None:
    cls = await class_lesson(server)
    records = server.app.state.services.records
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(cls.teacher_token)
    an = await join_by_link(server, cls, "HS001")
    ngoc = await join_by_link(server, cls, "HS002")
    pid = an.joined["participant"]["id"]
    resume_token = an.joined["resume_token"]
    try:
        removed = asyncio.ensure_future(an.next_event("removed"))
        result = await teacher.request("remove", participant=pid, ban=True)
        assert result == {"participant": pid, "banned": True}
        assert (await removed)["banned"] is True
        await asyncio.wait_for(an.closed.wait(), 1)
        assert an.close_code == 4005

        # The old link, the resume token, and a link issued after the ban: all refused.
        assert await join_refusal(server, link=cls.links["HS001"], code=cls.lesson.code) == (
            "banned"
        )
        assert (await resume_refusal(server, resume_token)).code == "resume_failed"
        reissued = await records.links.reissue(cls.lesson.id, cls.link_ids["HS001"])
        assert (
            await join_refusal(server, link=records.links.token_for(reissued), code=cls.lesson.code)
            == "banned"
        )
        # Nobody else is touched: the other student stays, and comes back after a drop.
        assert ngoc.close_code is None

        # The ban is listed; attendance says why the student left; the log has it all.
        bans = (await teacher.request("bans"))["bans"]
        assert [(b["name"], b["on_class_list"]) for b in bans] == [("Nguyễn Văn An", True)]
        events = await events_of(server, cls.lesson.id)
        assert kinds(events, pid) == [("joined", None), ("removed", "banned_by_teacher")]

        # Lifted: the same (reissued) link works again.
        lifted = await teacher.request("unban", ban=bans[0]["id"])
        assert lifted["ban"]["lifted_by"] == "Nguyễn Thị Lan"  # the class teacher, by name
        back = await Client(server.ws_url).connect()
        back.joined = await back.request(
            "join", link=records.links.token_for(reissued), code=cls.lesson.code
        )
        assert back.joined["participant"]["name"] == "Nguyễn Văn An"
        await back.close()
        assert await teacher.request("bans") == {"bans": []}
        with pytest.raises(ProtocolError) as again:
            await teacher.request("unban", ban=bans[0]["id"])
        assert again.value.code == "not_found"

        log = (await teacher.request("moderation_log"))["actions"]
        assert [(a["action"], a["actor"]["role"], a["target"]["name"]) for a in log] == [
            ("ban", "teacher", "Nguyễn Văn An"),
            ("unban", "teacher", "Nguyễn Văn An"),
        ]
    finally:
        for c in (teacher, an, ngoc):
            await c.close()


async def test_a_banned_guest_cannot_come_back_from_the_same_browser_under_another_name(
    server: RunningServer,
) -> None:
    lesson = await server.create_lesson(title="Hoá 9A", password="mat-khau-hoa-9a")
    code, password = lesson["lesson"]["code"], lesson["password"]
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(lesson["teacher_token"])
    intruder = await Client(server.ws_url).connect()
    intruder.joined = await intruder.request(
        "join", code=code, password=password, name="Kẻ Phá", device=DEVICE
    )
    try:
        await teacher.request("remove", participant=intruder.joined["participant"]["id"], ban=True)
        await asyncio.wait_for(intruder.closed.wait(), 1)
        refusal = await join_refusal(
            server, code=code, password=password, name="Tên Khác", device=DEVICE
        )
        assert refusal == "banned"
        # Another browser with the password still gets in (the lesson is not closed to all).
        other = await Client(server.ws_url).connect()
        await other.request(
            "join", code=code, password=password, name="Bạn Khác", device="another-browser-0002"
        )
        await other.close()
        # A ban is for this lesson only.
        elsewhere = await server.create_lesson(title="Hoá 9B", password="mat-khau-hoa-9b")
        other_teacher = await Client(server.ws_url).connect()
        await other_teacher.join_teacher(elsewhere["teacher_token"])
        guest = await Client(server.ws_url).connect()
        await guest.request(
            "join",
            code=elsewhere["lesson"]["code"],
            password=elsewhere["password"],
            name="Kẻ Phá",
            device=DEVICE,
        )
        for c in (guest, other_teacher):
            await c.close()
    finally:
        for c in (teacher, intruder):
            await c.close()


async def test_a_knocking_intruder_can_be_denied_and_banned(tmp_path: Path) -> None:
    async with run_server(tmp_path, waiting_room="guests") as server:
        lesson = await server.create_lesson(title="Địa 7A", password="mat-khau-dia-7a")
        code, password = lesson["lesson"]["code"], lesson["password"]
        teacher = await Client(server.ws_url).connect()
        await teacher.join_teacher(lesson["teacher_token"])
        knock = await Client(server.ws_url).connect()
        knock.joined = await knock.request(
            "join", code=code, password=password, name="Lạ", device=DEVICE
        )
        try:
            gid = knock.joined["participant"]["id"]
            assert (await teacher.request("deny", participant=gid, ban=True))["banned"] is True
            await asyncio.wait_for(knock.closed.wait(), 2)
            assert knock.close_code == 4006
            assert (
                await join_refusal(server, code=code, password=password, name="Lạ 2", device=DEVICE)
                == "banned"
            )
            events = await events_of(server, lesson["lesson"]["id"])
            assert kinds(events, gid) == [("denied", "banned_by_teacher")]
        finally:
            for c in (teacher, knock):
                await c.close()


async def test_a_ban_holds_on_another_node_and_after_a_restart(tmp_path: Path) -> None:
    """Two nodes over one database (here one SQLite file; PostgreSQL in production): a ban
    made on one is refused on the other, and survives both restarting."""
    async with run_server(tmp_path) as node_a, run_server(tmp_path) as node_b:
        cls = await class_lesson(node_a)
        teacher = await Client(node_a.ws_url).connect()
        await teacher.join_teacher(cls.teacher_token)
        an = await join_by_link(node_a, cls, "HS001")
        await teacher.request("remove", participant=an.joined["participant"]["id"], ban=True)
        await asyncio.wait_for(an.closed.wait(), 1)
        teacher_b = await Client(node_b.ws_url).connect()
        await teacher_b.join_teacher(cls.teacher_token)  # a teacher on node b lets people in
        assert await join_refusal(node_b, link=cls.links["HS001"], code=cls.lesson.code) == "banned"
        for c in (teacher, an, teacher_b):
            await c.close()
    async with run_server(tmp_path) as restarted:
        teacher = await Client(restarted.ws_url).connect()
        await teacher.join_teacher(cls.teacher_token)
        assert (
            await join_refusal(restarted, link=cls.links["HS001"], code=cls.lesson.code) == "banned"
        )
        await teacher.close()


async def test_only_staff_can_ban_and_nobody_can_ban_the_teacher(server: RunningServer) -> None:
    cls = await class_lesson(server)
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(cls.teacher_token)
    an = await join_by_link(server, cls, "HS001")
    ngoc = await join_by_link(server, cls, "HS002")
    try:
        for fields in (
            {"participant": ngoc.joined["participant"]["id"], "ban": True},
            {"participant": teacher.joined["participant"]["id"], "ban": True},
        ):
            with pytest.raises(ProtocolError) as refused:
                await an.request("remove", **fields)
            assert refused.value.code == "forbidden"
        # A moderator may ban a student, but not the teacher.
        await teacher.request(
            "set_moderator", participant=an.joined["participant"]["id"], moderator=True
        )
        with pytest.raises(ProtocolError) as refused:
            await an.request("remove", participant=teacher.joined["participant"]["id"], ban=True)
        assert refused.value.code == "forbidden"
        await an.request("remove", participant=ngoc.joined["participant"]["id"], ban=True)
        assert await join_refusal(server, link=cls.links["HS002"], code=cls.lesson.code) == (
            "banned"
        )
    finally:
        for c in (teacher, an, ngoc):
            await c.close()
