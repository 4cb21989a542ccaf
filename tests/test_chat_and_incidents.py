"""Chat, incident reports and the audit log, enforced by the server with raw protocol clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from classroom.safety import Action
from signaling.limits import Limits
from tests.client import Client, ProtocolError
from tests.conftest import RunningServer, run_server
from tests.test_attendance_live import class_lesson, join_by_link


async def refused(client: Client, type_: str, **fields: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as error:
        await client.request(type_, **fields)
    assert error.value.response["message"]
    return error.value


def pid(client: Client) -> str:
    return str(client.joined["participant"]["id"])


async def lesson_of_three(server: RunningServer) -> tuple[Any, Client, Client, Client]:
    cls = await class_lesson(server)
    teacher = await Client(server.ws_url).connect()
    await teacher.join_teacher(cls.teacher_token)
    an = await join_by_link(server, cls, "HS001")
    ngoc = await join_by_link(server, cls, "HS002")
    return cls, teacher, an, ngoc


async def test_lesson_messages_reach_everyone_and_newcomers_get_the_history(
    server: RunningServer,
) -> None:
    cls, teacher, an, ngoc = await lesson_of_three(server)
    try:
        sent = (await an.request("chat", text="  Em chào cô ạ!  "))["message"]
        assert sent["text"] == "Em chào cô ạ!" and sent["to"] is None
        assert sent["from"] == pid(an) and sent["name"] == "Nguyễn Văn An"
        assert await teacher.seen("chat") == sent
        assert await ngoc.seen("chat") == sent
        assert not an.saw("chat")  # the sender has it in the answer
        duc = await join_by_link(server, cls, "HS003")
        assert [m["id"] for m in duc.joined["chat"]] == [sent["id"]]
        await duc.close()
    finally:
        for c in (teacher, an, ngoc):
            await c.close()


async def test_private_messages_go_to_the_teacher_only_never_to_another_student(
    server: RunningServer,
) -> None:
    cls, teacher, an, ngoc = await lesson_of_three(server)
    try:
        private = (await an.request("chat", text="Cô ơi, em bị bắt nạt", to=pid(teacher)))[
            "message"
        ]
        assert private["to"] == pid(teacher)
        assert await teacher.seen("chat") == private
        # To another student: refused, and nobody receives it.
        error = await refused(an, "chat", text="bí mật", to=pid(ngoc))
        assert error.code == "forbidden"
        # A student made moderator is still a child: no private messages to students either.
        await teacher.request("set_moderator", participant=pid(ngoc), moderator=True)
        assert (await refused(ngoc, "chat", text="riêng", to=pid(an))).code == "forbidden"
        # The teacher may answer privately.
        reply = (await teacher.request("chat", text="Cô sẽ gọi em", to=pid(an)))["message"]
        assert await an.seen("chat") == reply
        await asyncio.sleep(0.3)
        assert ngoc.saw("chat") == []
        # Newcomers see lesson messages only; the student sees the private exchange.
        duc = await join_by_link(server, cls, "HS003")
        assert duc.joined["chat"] == []
        await duc.close()
        assert (await refused(an, "chat", text="x", to="p_nobody")).code == "not_found"
        # Private messages belong to the participant: a second device is a new participant.
        again = await join_by_link(server, cls, "HS001")
        assert again.joined["chat"] == []
        await again.close()
    finally:
        for c in (teacher, an, ngoc):
            await c.close()


async def test_chat_off_permissions_length_and_rate(server: RunningServer) -> None:
    _, teacher, an, ngoc = await lesson_of_three(server)
    try:
        await teacher.request("settings", chat=False)
        assert (await refused(an, "chat", text="alo")).code == "forbidden"
        assert (await refused(an, "chat", text="alo", to=pid(teacher))).code == "forbidden"
        await teacher.request("chat", text="Cô tắt chat để làm bài kiểm tra.")  # staff may
        await teacher.request("settings", chat=True, permissions=["chat", "unmute", "video"])
        assert (await refused(an, "chat", text="riêng", to=pid(teacher))).code == "forbidden"
        await an.request("chat", text="chung thì được")

        for bad in ("", "   ", "x" * 501, "xin\x07chào", "abc\u202edcba", "a" + "\n" * 12 + "b"):
            assert (await refused(ngoc, "chat", text=bad)).code in (
                "invalid_message",
                "malformed",
            ), repr(bad)
        assert (await ngoc.request("chat", text="Dòng 1\nDòng 2"))["message"]["text"] == (
            "Dòng 1\nDòng 2"
        )
        # 5 at once (one is used above), then a refusal that says when to try again.
        for i in range(4):
            await ngoc.request("chat", text=f"tin {i}")
        error = await refused(ngoc, "chat", text="một tin nữa")
        assert error.code == "rate_limited" and error.response["retry_after"] >= 1
    finally:
        for c in (teacher, an, ngoc):
            await c.close()


async def test_the_teacher_deletes_a_message_for_everyone_and_the_log_keeps_it(
    server: RunningServer,
) -> None:
    cls, teacher, an, ngoc = await lesson_of_three(server)
    try:
        bad = (await an.request("chat", text="lời lẽ xấu"))["message"]
        teachers = (await teacher.request("chat", text="Các em chú ý"))["message"]
        assert (await refused(ngoc, "delete_message", message=bad["id"])).code == "forbidden"
        await teacher.request("set_moderator", participant=pid(ngoc), moderator=True)
        assert (await refused(ngoc, "delete_message", message=teachers["id"])).code == "forbidden"
        deleted = asyncio.ensure_future(an.next_event("message_deleted"))
        assert await ngoc.request("delete_message", message=bad["id"]) == {"message": bad["id"]}
        assert (await deleted) == {"id": bad["id"], "by": pid(ngoc)}
        assert (await refused(teacher, "delete_message", message=bad["id"])).code == "not_found"
        own = (await teacher.request("chat", text="gõ nhầm"))["message"]
        assert await teacher.request("delete_message", message=own["id"]) == {"message": own["id"]}
        duc = await join_by_link(server, cls, "HS003")
        assert [m["id"] for m in duc.joined["chat"]] == [teachers["id"]]
        await duc.close()
        log = (await teacher.request("moderation_log"))["actions"]
        deletion = next(a for a in log if a["detail"].get("message", {}).get("id") == bad["id"])
        assert deletion["action"] == "delete_message"
        assert deletion["actor"]["participant"] == pid(ngoc)
        assert deletion["target"]["participant"] == pid(an)
        assert deletion["detail"]["message"]["text"] == "lời lẽ xấu"
    finally:
        for c in (teacher, an, ngoc):
            await c.close()


async def test_an_incident_reaches_staff_at_once_and_is_stored_with_its_context(
    tmp_path: Path,
) -> None:
    async with run_server(tmp_path, limits=Limits(chat_burst=30)) as server:
        await incident_with_context(server)


async def incident_with_context(server: RunningServer) -> None:
    cls, teacher, an, ngoc = await lesson_of_three(server)
    try:
        await teacher.request("set_moderator", participant=pid(ngoc), moderator=True)
        for i in range(22):
            await teacher.request("chat", text=f"tin nhắn {i}")
        await teacher.request("mute", participant=pid(an), kind="audio")
        report = await an.request(
            "report_incident", category="harassment", text="Có người nói bậy trong chat"
        )
        incident_id = report["incident"]
        seen = await teacher.seen("incident")
        assert seen["id"] == incident_id and seen["category"] == "harassment"
        assert seen["reporter"]["name"] == "Nguyễn Văn An"
        assert (await ngoc.seen("incident"))["id"] == incident_id  # moderators too

        safety = server.app.state.services.records.safety
        stored = await safety.incident(incident_id)
        assert stored is not None and stored.text == "Có người nói bậy trong chat"
        context = stored.context
        assert {p["name"] for p in context["participants"]} == {
            "Nguyễn Thị Lan",  # the class teacher, by name
            "Nguyễn Văn An",
            "Trần Thị Bích Ngọc",
        }
        assert [m["text"] for m in context["chat"]] == [f"tin nhắn {i}" for i in range(2, 22)]
        assert [a["action"] for a in context["recent_actions"]][-1] == "mute"
        assert context["lesson"]["code"] == cls.lesson.code

        assert (await refused(an, "report_incident", category="riot", text="x")).code == "malformed"
        assert (
            await refused(an, "report_incident", category="other", text="x" * 1001)
        ).code == "malformed"
        await an.request("report_incident", category="technical")
        await an.request("report_incident", category="other", text="lần ba")
        error = await refused(an, "report_incident", category="other", text="lần bốn")
        assert error.code == "rate_limited" and error.response["retry_after"] >= 1
    finally:
        for c in (teacher, an, ngoc):
            await c.close()


async def test_an_action_that_cannot_be_recorded_is_not_taken(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit row is written before the action and before "done"."""
    _, teacher, an, ngoc = await lesson_of_three(server)
    safety = server.app.state.services.records.safety
    written: list[Action] = []
    original = safety.record

    async def failing(lesson_id: str, actor: Any, action: Action, *args: Any, **kw: Any) -> Any:
        if action is Action.REMOVE:
            raise OSError("disk full")
        entry = await original(lesson_id, actor, action, *args, **kw)
        written.append(action)
        return entry

    monkeypatch.setattr(safety, "record", failing)
    try:
        error = await refused(teacher, "remove", participant=pid(an))
        assert error.code == "internal"
        await asyncio.sleep(0.3)
        assert an.close_code is None and not an.saw("removed")  # still in the lesson
        # A recorded action is in the log by the time its "ok" arrives.
        await teacher.request("mute", participant=pid(an), kind="audio")
        assert written == [Action.MUTE]
        log = (await teacher.request("moderation_log"))["actions"]
        assert [a["action"] for a in log] == ["mute"]
    finally:
        for c in (teacher, an, ngoc):
            await c.close()


async def test_the_school_reads_incidents_and_the_audit_log_through_the_api(
    server: RunningServer,
) -> None:
    cls, teacher, an, ngoc = await lesson_of_three(server)
    records = server.app.state.services.records
    await records.accounts.create_user("hieutruong", "Hiệu Trưởng", "mật khẩu hiệu trưởng", "admin")
    try:
        await teacher.request("mute", participant=pid(ngoc), kind="video")
        incident = (await an.request("report_incident", category="intruder", text="Người lạ"))[
            "incident"
        ]
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            assert (await http.get("/api/incidents")).status_code == 401
            token = (
                await http.post(
                    "/api/login",
                    json={"username": "hieutruong", "password": "mật khẩu hiệu trưởng"},
                )
            ).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            listed = (await http.get("/api/incidents", headers=auth)).json()
            assert [i["id"] for i in listed["incidents"]] == [incident]
            assert listed["incidents"][0]["lesson"]["title"] == cls.lesson.title
            one = (await http.get(f"/api/incidents/{incident}", headers=auth)).json()
            assert one["incident"]["text"] == "Người lạ"
            assert one["incident"]["context"]["recent_actions"][-1]["action"] == "stop_video"
            assert (await http.get("/api/incidents/i_unknown", headers=auth)).status_code == 404
            log = (await http.get(f"/api/lessons/{cls.lesson.id}/moderation", headers=auth)).json()
            assert [a["action"] for a in log["actions"]] == ["stop_video"]

            # The class's teacher sees her lessons' incidents; another teacher sees none.
            lan = (
                await http.post(
                    "/api/login", json={"username": "lan", "password": "mật khẩu cô Lan"}
                )
            ).json()["token"]
            mine = await http.get("/api/incidents", headers={"Authorization": f"Bearer {lan}"})
            assert [i["id"] for i in mine.json()["incidents"]] == [incident]
            await records.accounts.create_user(
                "hung", "Phạm Văn Hùng", "mật khẩu thầy Hùng", "teacher"
            )
            hung = (
                await http.post(
                    "/api/login", json={"username": "hung", "password": "mật khẩu thầy Hùng"}
                )
            ).json()["token"]
            theirs = await http.get("/api/incidents", headers={"Authorization": f"Bearer {hung}"})
            assert theirs.json()["incidents"] == []
            hidden = await http.get(
                f"/api/incidents/{incident}", headers={"Authorization": f"Bearer {hung}"}
            )
            assert hidden.status_code == 404
    finally:
        for c in (teacher, an, ngoc):
            await c.close()
