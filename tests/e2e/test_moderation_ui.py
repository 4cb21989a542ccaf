"""Moderation in real browsers, through the pages only: the waiting room (admit, deny), removing
and banning a guest, the chat (lesson-wide, deleted, private to the teacher), raised hands,
muting and asking to unmute, a moderator on the student page, and an incident report.

The server runs as the product does by default: guests wait (``--waiting-room guests``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, Playwright, expect

from tests.e2e.browser import Flow, video_advancing, video_has_size, wait_for_flows
from tests.e2e.harness import LophocServer, Tab, Tabs
from tests.e2e.pages import (
    TIMEOUT,
    VIETNAMESE_LETTER,
    Lesson,
    create_lesson,
    enable_sound_if_offered,
    expect_connected,
    open_join_page,
    participant_id,
    phone,
    submit_join,
    tid,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

TEACHER_VIDEO = '[data-testid="teacher-video"]'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lophoc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LophocServer]:
    """One server for the module, with the product's default waiting room."""
    server = LophocServer(tmp_path_factory.mktemp("lophoc") / "data", waiting_room="guests")
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


# -- helpers ------------------------------------------------------------------------------------


async def knock(guest: Tab, lesson: Lesson, name: str) -> None:
    """Join with the lesson password and land in the waiting room."""
    await open_join_page(guest, lesson.link)
    await submit_join(guest, name, lesson.password)
    await expect(tid(guest.page, "waiting-view")).to_be_visible(timeout=TIMEOUT)
    await expect(tid(guest.page, "waiting-lesson-title")).to_have_text(lesson.title)


def knock_of(teacher: Page, name: str) -> Locator:
    return tid(teacher, "knock").filter(has_text=name)


def row_of(page: Page, participant: str) -> Locator:
    return page.locator(f'[data-testid="participant"][data-id="{participant}"]')


async def admit(teacher: Tab, guest: Tab, name: str) -> str:
    """The teacher admits ``name`` from the waiting room; returns the guest's participant id."""
    item = knock_of(teacher.page, name)
    await expect(item).to_have_count(1, timeout=TIMEOUT)
    await item.get_by_test_id("knock-admit").click()
    await expect(tid(guest.page, "student-view")).to_be_visible(timeout=TIMEOUT)
    await expect_connected(guest.page)
    return await participant_id(guest.page)


async def admit_all(teacher: Tab, guests: list[tuple[Tab, str]]) -> list[str]:
    """Everyone knocks, the teacher clicks "Admit all"; returns their participant ids."""
    for _, name in guests:
        await expect(knock_of(teacher.page, name)).to_have_count(1, timeout=TIMEOUT)
    await expect(tid(teacher.page, "waiting-count")).to_have_text(str(len(guests)))
    await tid(teacher.page, "waiting-admit-all").click()
    ids = []
    for guest, _ in guests:
        await expect(tid(guest.page, "student-view")).to_be_visible(timeout=TIMEOUT)
        await expect_connected(guest.page)
        ids.append(await participant_id(guest.page))
    await expect(tid(teacher.page, "waiting-panel")).to_be_hidden()
    return ids


async def participant_action(page: Page, participant: str, action: str) -> None:
    """Open a participant's menu in the list and choose an action."""
    row = row_of(page, participant)
    await row.get_by_test_id("participant-menu").click()
    await row.get_by_test_id(action).click()


async def confirm(page: Page) -> None:
    dialog = tid(page, "confirm-dialog")
    await expect(dialog).to_be_visible()
    await expect(tid(page, "confirm-message")).to_have_text(re.compile(r"\w"))
    await tid(page, "confirm-ok").click()
    await expect(dialog).to_be_hidden()


async def send_chat(page: Page, text: str, to: str | None = None) -> None:
    if await tid(page, "chat-panel").is_hidden():
        await tid(page, "toggle-chat").click()
    await tid(page, "chat-to").select_option(to or "")
    await tid(page, "chat-input").fill(text)
    await tid(page, "chat-send").click()
    await expect(tid(page, "chat-input")).to_have_value("")


def message(page: Page, text: str) -> Locator:
    return tid(page, "chat-message").filter(has_text=text)


async def nothing_of_the_lesson(guest: Tab) -> None:
    """While waiting: no peer connection, no camera or microphone, nobody else, no media
    request sent."""
    seen = await guest.page.evaluate(
        """() => { const pcs = window.lophoc.pcs();
                   const preview = document.querySelector('[data-testid="self-preview"]');
                   return {state: window.lophoc.state, people: window.lophoc.participants.size,
                           publish: !!pcs.publish, subscribe: !!pcs.subscribe,
                           preview: !!(preview && preview.srcObject)}; }"""
    )
    assert seen == {
        "state": "waiting",
        "people": 0,
        "publish": False,
        "subscribe": False,
        "preview": False,
    }, seen
    sent = [json.loads(frame).get("type") for frame in guest.sent_messages()]
    assert not {"publish", "subscribe", "chat"} & set(sent), sent


# -- the tests ----------------------------------------------------------------------------------


async def test_waiting_room_admit_and_deny(
    tabs: Tabs, lophoc: LophocServer, playwright_driver: Playwright, artifacts: Path
) -> None:
    pixel5 = playwright_driver.devices["Pixel 5"]
    teacher = await tabs.open("teacher")
    chau = await tabs.open("guest-360x640", **phone(pixel5, 360, 640))
    stranger = await tabs.open("guest-denied")
    lesson = await create_lesson(teacher, lophoc.url, "Toán 6A — Phân số", "mật-khẩu-6A")
    teacher_id = await participant_id(teacher.page)

    await knock(chau, lesson, "Phạm Minh Châu")
    await expect(tid(chau.page, "waiting-heading")).to_have_text(VIETNAMESE_LETTER)
    await expect(tid(chau.page, "student-view")).to_be_hidden()
    item = knock_of(teacher.page, "Phạm Minh Châu")
    await expect(item).to_have_count(1, timeout=TIMEOUT)
    await expect(item).to_have_attribute("data-on-list", "false")  # a guest with the password
    await expect(tid(teacher.page, "waiting-panel")).to_be_visible()
    await expect(tid(teacher.page, "waiting-count")).to_have_text("1")
    await nothing_of_the_lesson(chau)
    await chau.page.screenshot(path=str(artifacts / "moderation-waiting-room-360x640.png"))
    await teacher.page.screenshot(path=str(artifacts / "moderation-teacher-knock.png"))

    # The socket drops while waiting: the page knocks again with the same name and password
    # (there is no resume token in the waiting room), and the teacher sees the new knock.
    first = await chau.page.evaluate("() => window.lophoc.participantId")
    await chau.page.evaluate("() => window.lophoc.socket().close()")
    await chau.page.wait_for_function(
        "(old) => window.lophoc.state === 'waiting' && window.lophoc.participantId !== old",
        arg=first,
        timeout=TIMEOUT,
    )
    again = await chau.page.evaluate("() => window.lophoc.participantId")
    await expect(item).to_have_attribute("data-id", again)
    await expect(item).to_have_count(1)
    await expect(tid(chau.page, "waiting-view")).to_be_visible()

    chau_id = await admit(teacher, chau, "Phạm Minh Châu")
    assert chau_id == again
    await expect(item).to_have_count(0)
    await expect(tid(teacher.page, "waiting-panel")).to_be_hidden()
    await video_has_size(chau.page, TEACHER_VIDEO)
    await enable_sound_if_offered(chau.page)
    await video_advancing(chau.page, TEACHER_VIDEO)
    await wait_for_flows(chau.page, [Flow(teacher_id, "video")], label="admitted guest")
    row = row_of(teacher.page, chau_id)
    await expect(row).to_contain_text("Phạm Minh Châu")
    await expect(row).to_have_attribute("data-role", "guest")

    await knock(stranger, lesson, "Người Lạ")
    denied = knock_of(teacher.page, "Người Lạ")
    await expect(denied).to_have_count(1, timeout=TIMEOUT)
    await denied.get_by_test_id("knock-deny").click()
    closed = tid(stranger.page, "closed-view")
    await expect(closed).to_be_visible(timeout=TIMEOUT)
    await expect(closed).to_have_attribute("data-reason", "denied")
    await expect(closed).to_have_attribute("data-banned", "false")
    await expect(tid(stranger.page, "closed-title")).to_have_text(VIETNAMESE_LETTER)
    await expect(denied).to_have_count(0)
    await expect(tid(stranger.page, "student-view")).to_be_hidden()


async def test_remove_and_ban(tabs: Tabs, lophoc: LophocServer) -> None:
    teacher = await tabs.open("teacher")
    guest = await tabs.open("guest")
    lesson = await create_lesson(teacher, lophoc.url, "Tin học 8A", "mật-khẩu-8A")
    await knock(guest, lesson, "Kẻ Phá Rối")
    guest_id = await admit(teacher, guest, "Kẻ Phá Rối")
    await wait_for_flows(teacher.page, [Flow(guest_id, "video")], label="teacher, before")

    await participant_action(teacher.page, guest_id, "action-ban")
    await confirm(teacher.page)
    closed = tid(guest.page, "closed-view")
    await expect(closed).to_be_visible(timeout=TIMEOUT)
    await expect(closed).to_have_attribute("data-reason", "removed")
    await expect(closed).to_have_attribute("data-banned", "true")
    await expect(tid(guest.page, "closed-reason")).to_have_text(VIETNAMESE_LETTER)
    await expect(row_of(teacher.page, guest_id)).to_have_count(0)
    await wait_for_flows(
        teacher.page, [Flow(guest_id, "video", moving=False)], label="teacher, after removal"
    )

    # The same browser, another name: the device key is banned.
    await open_join_page(guest, lesson.link)
    await submit_join(guest, "Một Cái Tên Khác", lesson.password)
    error = tid(guest.page, "join-error")
    await expect(error).to_be_visible(timeout=TIMEOUT)
    await expect(error).to_have_attribute("data-code", "banned")
    await expect(error).to_have_text(VIETNAMESE_LETTER)
    await expect(tid(guest.page, "waiting-view")).to_be_hidden()

    # The ban is listed in the console, and lifting it lets the browser knock again.
    await tid(teacher.page, "open-bans").click()
    ban = tid(teacher.page, "ban-item").filter(has_text="Kẻ Phá Rối")
    await expect(ban).to_have_count(1)
    await ban.get_by_test_id("unban").click()
    await expect(tid(teacher.page, "bans-empty")).to_be_visible()
    await tid(teacher.page, "bans-dialog-close").click()
    await submit_join(guest, "Một Cái Tên Khác", lesson.password)
    await expect(tid(guest.page, "waiting-view")).to_be_visible(timeout=TIMEOUT)


async def test_chat(
    tabs: Tabs, lophoc: LophocServer, playwright_driver: Playwright, artifacts: Path
) -> None:
    pixel5 = playwright_driver.devices["Pixel 5"]
    teacher = await tabs.open("teacher")
    an = await tabs.open("student-360x640", **phone(pixel5, 360, 640))
    binh = await tabs.open("student-b")
    lesson = await create_lesson(teacher, lophoc.url, "Ngữ văn 7C", "mật-khẩu-7C")
    teacher_id = await participant_id(teacher.page)
    await knock(an, lesson, "Lê Văn An")
    await knock(binh, lesson, "Đỗ Thị Bình")
    an_id, binh_id = await admit_all(teacher, [(an, "Lê Văn An"), (binh, "Đỗ Thị Bình")])

    # A lesson-wide message: everyone sees it; Bình's closed drawer counts it as unread.
    await send_chat(an.page, "Em chào cô ạ!")
    await expect(message(teacher.page, "Em chào cô ạ!")).to_have_count(1, timeout=TIMEOUT)
    await expect(message(binh.page, "Em chào cô ạ!")).to_have_count(1, timeout=TIMEOUT)
    await expect(tid(binh.page, "chat-unread")).to_have_text("1")
    await expect(message(teacher.page, "Em chào cô ạ!")).to_have_attribute("data-private", "false")

    # The teacher deletes it: it disappears everywhere.
    await message(teacher.page, "Em chào cô ạ!").get_by_test_id("chat-delete").click()
    await confirm(teacher.page)
    for tab in (teacher, an, binh):
        await expect(message(tab.page, "Em chào cô ạ!")).to_have_count(0, timeout=TIMEOUT)

    # Private to the teacher: only the teacher (and An) see it, marked as private.
    private = "Cô ơi, em xin phép tắt camera vì mạng yếu."
    await send_chat(an.page, private, to=teacher_id)
    received = message(teacher.page, private)
    await expect(received).to_have_count(1, timeout=TIMEOUT)
    await expect(received).to_have_attribute("data-private", "true")
    await expect(received.get_by_test_id("chat-private")).to_be_visible()
    await expect(message(an.page, private)).to_have_attribute("data-private", "true")

    # The teacher answers An privately: Bình sees neither message.
    answer = "Được em, cô đồng ý."
    await received.get_by_test_id("chat-reply").click()
    await expect(tid(teacher.page, "chat-to")).to_have_value(an_id)
    await tid(teacher.page, "chat-input").fill(answer)
    await tid(teacher.page, "chat-send").click()
    await expect(message(an.page, answer)).to_have_count(1, timeout=TIMEOUT)
    await expect(message(an.page, answer)).to_have_attribute("data-private", "true")
    lesson_wide = "Cả lớp mở sách trang 42."
    await send_chat(teacher.page, lesson_wide)
    await expect(message(binh.page, lesson_wide)).to_have_count(1, timeout=TIMEOUT)
    await expect(message(binh.page, private)).to_have_count(0)
    await expect(message(binh.page, answer)).to_have_count(0)
    await tid(binh.page, "toggle-chat").click()
    await expect(tid(binh.page, "chat-unread")).to_be_hidden()
    await expect(tid(binh.page, "chat-list")).not_to_contain_text(private)
    overflow = await an.page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert overflow[0] <= overflow[1], f"page is {overflow[0]} px wide on a {overflow[1]} px phone"
    await an.page.screenshot(path=str(artifacts / "moderation-chat-360x640.png"))
    await teacher.page.screenshot(path=str(artifacts / "moderation-teacher-chat.png"))

    # Chat off: the students' box is disabled and says why.
    await tid(teacher.page, "open-settings").click()
    await tid(teacher.page, "setting-chat").uncheck()
    await expect(tid(an.page, "chat-input")).to_be_disabled(timeout=TIMEOUT)
    await expect(tid(an.page, "chat-disabled")).to_be_visible()
    await expect(tid(teacher.page, "chat-off-chip")).to_be_visible()

    # Cameras not allowed: a camera turned off cannot be turned on again, and the page says why.
    await tid(teacher.page, "setting-perm-video").uncheck()
    await tid(teacher.page, "settings-dialog-close").click()
    await an.page.wait_for_function(
        "() => !window.lophoc.controls.permissions.includes('video')", timeout=TIMEOUT
    )
    camera = tid(an.page, "toggle-camera")
    await expect(camera).to_be_enabled()  # still on: it may be turned off
    await camera.click()
    await expect(camera).to_have_attribute("data-state", "off")
    await expect(camera).to_be_disabled()
    await expect(camera).to_have_attribute("data-locked", "true")
    await expect(tid(an.page, "permission-hint")).to_have_text(VIETNAMESE_LETTER)
    await an.page.screenshot(path=str(artifacts / "moderation-chat-off-360x640.png"))
    await tid(an.page, "side-panel-close").click()
    await expect(tid(an.page, "side-panel")).to_be_hidden()
    assert binh_id != an_id


async def test_hands_mute_moderator_and_incident(
    tabs: Tabs, lophoc: LophocServer, artifacts: Path
) -> None:
    teacher = await tabs.open("teacher")
    hoa = await tabs.open("student")
    latecomer = await tabs.open("latecomer")
    lesson = await create_lesson(teacher, lophoc.url, "Vật lý 9B", "mật-khẩu-9B")
    await knock(hoa, lesson, "Trịnh Thu Hoà")
    hoa_id = await admit(teacher, hoa, "Trịnh Thu Hoà")

    # A raised hand reaches the teacher's queue; the teacher lowers it.
    await tid(hoa.page, "raise-hand").click()
    await expect(tid(hoa.page, "raise-hand")).to_have_attribute("aria-pressed", "true")
    hand = tid(teacher.page, "hand")
    await expect(hand).to_have_count(1, timeout=TIMEOUT)
    await expect(hand).to_have_attribute("data-id", hoa_id)
    await expect(hand).to_contain_text("Trịnh Thu Hoà")
    await expect(row_of(teacher.page, hoa_id)).to_have_attribute("data-hand", "true")
    await hand.get_by_test_id("hand-lower").click()
    await expect(tid(hoa.page, "raise-hand")).to_have_attribute("aria-pressed", "false")
    await expect(tid(teacher.page, "hands-panel")).to_be_hidden()

    # Muted by the teacher, then asked to unmute: the prompt turns the microphone back on.
    await expect(row_of(teacher.page, hoa_id)).to_have_attribute("data-audio", "on")
    await participant_action(teacher.page, hoa_id, "action-mute-audio")
    await expect(tid(hoa.page, "toggle-mic")).to_have_attribute("data-state", "off")
    await expect(row_of(teacher.page, hoa_id)).to_have_attribute("data-audio", "off")
    await participant_action(teacher.page, hoa_id, "action-ask-unmute")
    await expect(tid(hoa.page, "unmute-prompt")).to_be_visible(timeout=TIMEOUT)
    await tid(hoa.page, "unmute-accept").click()
    await expect(tid(hoa.page, "toggle-mic")).to_have_attribute("data-state", "on")
    await expect(row_of(teacher.page, hoa_id)).to_have_attribute("data-audio", "on")

    # Made moderator, Hoà admits a latecomer from the student page.
    await participant_action(teacher.page, hoa_id, "action-make-moderator")
    await expect(row_of(teacher.page, hoa_id)).to_have_attribute("data-role", "moderator")
    await hoa.page.wait_for_function(
        "() => window.lophoc.selfRole === 'moderator'", timeout=TIMEOUT
    )
    await expect(tid(hoa.page, "notice")).to_have_text(VIETNAMESE_LETTER)
    await knock(latecomer, lesson, "Hồ Quang Hiếu")
    await expect(tid(hoa.page, "knock-badge")).to_have_text("1", timeout=TIMEOUT)
    await tid(hoa.page, "toggle-chat").click()
    await expect(tid(hoa.page, "tab-moderation")).to_be_visible()
    await tid(hoa.page, "tab-moderation").click()
    await expect(knock_of(hoa.page, "Hồ Quang Hiếu")).to_have_count(1)
    await knock_of(hoa.page, "Hồ Quang Hiếu").get_by_test_id("knock-admit").click()
    await expect(tid(latecomer.page, "student-view")).to_be_visible(timeout=TIMEOUT)
    await expect(knock_of(teacher.page, "Hồ Quang Hiếu")).to_have_count(0)
    latecomer_id = await participant_id(latecomer.page)
    await expect(row_of(hoa.page, latecomer_id)).to_have_count(1)

    # An incident report from the latecomer reaches the teacher console (and the moderator).
    await tid(latecomer.page, "report-problem").click()
    await expect(tid(latecomer.page, "report-dialog")).to_be_visible()
    await tid(latecomer.page, "report-category-intruder").check()
    await tid(latecomer.page, "report-text").fill("Có người lạ nói bậy trong lớp.")
    await tid(latecomer.page, "report-submit").click()
    await expect(tid(latecomer.page, "report-sent")).to_be_visible(timeout=TIMEOUT)
    await expect(tid(latecomer.page, "report-sent")).to_contain_text(VIETNAMESE_LETTER)
    incident = tid(teacher.page, "incident")
    await expect(incident).to_have_count(1, timeout=TIMEOUT)
    await expect(incident).to_have_attribute("data-category", "intruder")
    await expect(incident).to_contain_text("Hồ Quang Hiếu")
    await expect(incident).to_contain_text("Có người lạ nói bậy trong lớp.")
    await expect(tid(hoa.page, "incident")).to_have_count(1, timeout=TIMEOUT)
    await tid(latecomer.page, "report-done").click()
    await teacher.page.screenshot(path=str(artifacts / "moderation-teacher-incident.png"))
    await hoa.page.screenshot(path=str(artifacts / "moderation-moderator-tab.png"))

    # The moderation log lists what happened.
    await tid(teacher.page, "open-log").click()
    entries = tid(teacher.page, "log-entry")
    await expect(entries.first).to_be_visible(timeout=TIMEOUT)
    actions = set(await entries.evaluate_all("(es) => es.map((e) => e.dataset.action)"))
    assert {"admit", "mute", "ask_unmute", "make_moderator", "lower_hand"} <= actions, actions


async def test_knocks_made_before_the_teacher_arrives_are_in_the_console(
    tabs: Tabs, lophoc: LophocServer
) -> None:
    """Nobody is let in before a teacher; the console lists who was already knocking."""
    teacher = await tabs.open("teacher-late")
    early = await tabs.open("guest-early")
    page = teacher.page
    await page.goto(f"{lophoc.url}/teach")
    await tid(page, "create-title").fill("Văn 8A — Thơ")
    await tid(page, "create-password").fill("mật-khẩu-8A")
    await tid(page, "create-submit").click()
    link_input = tid(page, "lesson-link")
    await expect(link_input).to_have_value(re.compile(r"/l/\S+$"), timeout=TIMEOUT)
    lesson = Lesson(await link_input.input_value(), "Văn 8A — Thơ", "mật-khẩu-8A")
    await knock(early, lesson, "Đến Sớm")  # the teacher has not started teaching yet

    await tid(page, "start-teaching").click()
    await expect_connected(page)
    await expect(knock_of(page, "Đến Sớm")).to_have_count(1, timeout=TIMEOUT)
    await expect(tid(page, "waiting-count")).to_have_text("1")
    await admit(teacher, early, "Đến Sớm")
