"""Driving the lophoc pages through their ``data-testid`` contract (web/static)."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.async_api import Locator, Page, expect

from tests.e2e.harness import Tab

TIMEOUT = 20_000  # ms, for every expect() and wait_for_function()

# Letters that only Vietnamese text has (tone marks, ă, â, đ, ê, ô, ơ, ư).
VIETNAMESE_LETTER = re.compile(
    "[àáảãạăắằẳẵặâấầẩẫậđèéẻẽẹêếềểễệìíỉĩịòóỏõọôốồổỗộơớờởỡợùúủũụưứừửữựỳýỷỹỵ]",
    re.IGNORECASE,
)


def tid(page: Page, test_id: str) -> Locator:
    return page.get_by_test_id(test_id)


async def connection_state(page: Page) -> str | None:
    return await tid(page, "connection-state").get_attribute("data-state")


async def expect_connected(page: Page, timeout: float = TIMEOUT) -> None:
    await expect(tid(page, "connection-state")).to_have_attribute(
        "data-state", "connected", timeout=timeout
    )


async def handle(page: Page) -> dict[str, Any]:
    """``window.lophoc`` without the functions."""
    value: dict[str, Any] = await page.evaluate(
        """() => { const h = window.lophoc; if (!h) return {};
                   return {state: h.state, participantId: h.participantId, role: h.role,
                           lessonCode: h.lessonCode}; }"""
    )
    return value


async def participant_id(page: Page) -> str:
    await page.wait_for_function(
        "() => !!(window.lophoc && window.lophoc.participantId)", timeout=TIMEOUT
    )
    value = (await handle(page)).get("participantId")
    assert isinstance(value, str) and value, value
    return value


@dataclass(frozen=True)
class Lesson:
    link: str
    title: str
    password: str


async def create_lesson(
    teacher: Tab, base_url: str, title: str, password: str, page_size: int | None = None
) -> Lesson:
    """Create a lesson on ``/teach`` and start teaching (camera and microphone published)."""
    page = teacher.page
    query = f"?page_size={page_size}" if page_size is not None else ""
    await page.goto(f"{base_url}/teach{query}")
    await expect(tid(page, "create-form")).to_be_visible()
    await tid(page, "create-title").fill(title)
    await tid(page, "create-password").fill(password)
    await tid(page, "create-submit").click()
    link_input = tid(page, "lesson-link")
    await expect(link_input).to_have_value(re.compile(r"^https?://[^/]+/l/\S+$"), timeout=TIMEOUT)
    link = await link_input.input_value()
    await tid(page, "start-teaching").click()
    await expect(tid(page, "teacher-view")).to_be_visible()
    await expect_connected(page)
    return Lesson(link, title, password)


def via(link: str, base_url: str) -> str:
    """The same join link on another origin (e.g. through the test's proxy)."""
    return re.sub(r"^https?://[^/]+", base_url, link)


async def open_join_page(student: Tab, link: str) -> None:
    await student.page.goto(link)
    await expect(tid(student.page, "join-form")).to_be_visible()


async def submit_join(student: Tab, name: str, password: str) -> None:
    page = student.page
    await tid(page, "join-name").fill(name)
    await tid(page, "join-password").fill(password)
    await tid(page, "join-submit").click()


async def join_lesson(student: Tab, link: str, name: str, password: str) -> str:
    """Open the join link, join, wait until connected; returns the participant id."""
    await open_join_page(student, link)
    await submit_join(student, name, password)
    page = student.page
    await expect(tid(page, "student-view")).to_be_visible()
    await expect_connected(page)
    return await participant_id(page)


async def enable_sound_if_offered(page: Page) -> None:
    """``enable-sound`` is shown only when the browser blocked autoplay: click it then."""
    button = tid(page, "enable-sound")
    if await button.is_visible():
        await button.click()
        await expect(button).to_be_hidden()


async def accept_dialogs(tab: Tab) -> None:
    async def on_dialog(dialog: Any) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.accept()

    tab.page.on("dialog", on_dialog)


def phone(
    device: dict[str, Any], width: int | None = None, height: int | None = None
) -> dict[str, Any]:
    """Context options emulating a phone (a Playwright device), optionally at another size."""
    options = {k: v for k, v in device.items() if k != "default_browser_type"}
    if width is not None and height is not None:
        options["viewport"] = {"width": width, "height": height}
        options["screen"] = {"width": width, "height": height}
    return options


# Records every data-state an element with a data-testid takes (attribute changes and newly
# added elements), and whether the join form was ever visible, from now on.
_RECORDER_JS = """
() => {
  const seen = window.__e2eSeen = {states: [], joinFormShown: false};
  const note = (el) => {
    if (!(el instanceof Element) || !el.dataset || !el.dataset.testid || !el.dataset.state) return;
    seen.states.push({testid: el.dataset.testid, id: el.dataset.id || null,
                      state: el.dataset.state, t: performance.now()});
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') note(r.target);
      for (const n of r.addedNodes || []) {
        if (!(n instanceof Element)) continue;
        note(n);
        n.querySelectorAll('[data-testid][data-state]').forEach(note);
      }
    }
  }).observe(document.documentElement,
             {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state']});
  const form = () => document.querySelector('[data-testid="join-form"]');
  seen.timer = setInterval(() => {
    const f = form();
    if (f && f.checkVisibility()) seen.joinFormShown = true;
  }, 50);
}
"""


async def record_states(page: Page) -> None:
    await page.evaluate(_RECORDER_JS)


async def recorded_states(
    page: Page, testid: str, participant: str | None = None
) -> tuple[list[str], bool]:
    """The states recorded since :func:`record_states` for ``testid`` (and ``data-id``), and
    whether the join form was visible at any moment."""
    seen: dict[str, Any] = await page.evaluate(
        "() => ({states: window.__e2eSeen.states, joinFormShown: window.__e2eSeen.joinFormShown})"
    )
    states = [
        str(s["state"])
        for s in seen["states"]
        if s["testid"] == testid and (participant is None or s["id"] == participant)
    ]
    return states, bool(seen["joinFormShown"])


async def api_login(http: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    """Log in through the records API; the ``Authorization`` header for the session (the
    cookie the login also sets is dropped, so each request says who it is)."""
    response = await http.post("/api/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    http.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['token']}"}


# What a person sees: the element is drawn, wholly inside the viewport, not transparent, and
# the topmost element at several of its points is the element itself or one of its children
# (nothing covers it). Returns "" when seen, else what is wrong.
_SEEN_JS = """
(el) => {
  const name = (node) => !node ? 'nothing' : node.tagName.toLowerCase()
    + (node.dataset && node.dataset.testid ? `[data-testid=${node.dataset.testid}]` : '')
    + (typeof node.className === 'string' && node.className
       ? '.' + node.className.split(' ')[0] : '');
  const box = el.getBoundingClientRect();
  if (box.width < 1 || box.height < 1) return `no size (${box.width}x${box.height})`;
  const w = window.innerWidth, h = window.innerHeight;
  if (box.left < -0.5 || box.top < -0.5 || box.right > w + 0.5 || box.bottom > h + 0.5) {
    return `not wholly on screen: ${Math.round(box.left)},${Math.round(box.top)} `
      + `${Math.round(box.width)}x${Math.round(box.height)} in ${w}x${h}`;
  }
  for (let node = el; node; node = node.parentElement) {
    const style = getComputedStyle(node);
    if (style.visibility !== 'visible' || Number(style.opacity) < 0.5) {
      return `${name(node)} is ${style.visibility}, opacity ${style.opacity}`;
    }
  }
  for (const [fx, fy] of [[0.5, 0.5], [0.15, 0.5], [0.85, 0.5], [0.5, 0.2], [0.5, 0.8]]) {
    const x = box.left + box.width * fx, y = box.top + box.height * fy;
    const hit = document.elementFromPoint(x, y);
    if (!hit || !(hit === el || el.contains(hit))) {
      return `covered at ${Math.round(x)},${Math.round(y)} by ${name(hit)}`;
    }
  }
  return '';
}
"""


async def expect_seen(locator: Locator, timeout: float = TIMEOUT) -> None:
    """``locator`` is visible to a person: on screen, opaque, and covered by nothing."""
    await expect(locator).to_be_visible(timeout=timeout)
    deadline = time.monotonic() + timeout / 1000
    while True:
        problem = str(await locator.evaluate(_SEEN_JS))
        if not problem:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{locator} is not seen: {problem}")
        await asyncio.sleep(0.2)
