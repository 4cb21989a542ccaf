"""Long Vietnamese names in the teacher's console, as the teacher sees them.

Many students of a class share a family name, and people are called by their given name, the
last word: a list that cuts "Nguyễn Thị Bích Ngọc Trâm" to "Nguyễn Thị B…" and draws an "N" for
every Nguyễn tells the teacher nothing. Pass criterion: in the participant list the whole name
is shown (on screen, not clipped; this one in at most three lines) with the given name's
initial; on the student's tile the name's end, the given name, is the part that shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.e2e.harness import LophocServer, Tabs
from tests.e2e.pages import create_lesson, expect_seen, join_lesson, participant_id, tid

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

LONG_NAME = "Nguyễn Thị Bích Ngọc Trâm Anh"

_CLIPPED_JS = """
(el) => ({
  clipped: el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1,
  lines: Math.round(el.getBoundingClientRect().height /
                    parseFloat(getComputedStyle(el).lineHeight)),
})
"""

# The end of a one-line name is inside its box (the start may overflow to the left).
_END_SHOWN_JS = """
(el) => {
  const box = el.getBoundingClientRect();
  const text = el.querySelector('bdi').getBoundingClientRect();
  return {end_inside: text.right <= box.right + 1 && text.right > box.left,
          overflows: text.width > box.width + 1, direction: getComputedStyle(el).direction};
}
"""


@pytest.mark.parametrize("width", [1280, 800])
async def test_the_console_shows_long_names_whole_and_by_their_given_name(
    tabs: Tabs, lophoc: LophocServer, artifacts: Path, width: int
) -> None:
    teacher = await tabs.open("teacher", viewport={"width": width, "height": 800})
    student = await tabs.open("student")
    lesson = await create_lesson(teacher, lophoc.url, "Ngữ văn 8C", "mật-khẩu-8c")
    student_id = await join_lesson(student, lesson.link, LONG_NAME, lesson.password)
    assert student_id != await participant_id(teacher.page)

    row = teacher.page.locator(f'[data-testid="participant"][data-id="{student_id}"]')
    toggle = tid(teacher.page, "toggle-participants")
    if await toggle.count() and not await row.is_visible():
        await toggle.click()
    name = row.locator(".participant-name")
    await expect_seen(name)
    await expect(name).to_have_text(LONG_NAME)
    shape = await name.evaluate(_CLIPPED_JS)
    await teacher.page.screenshot(path=str(artifacts / f"names-console-{width}.png"))
    assert not shape["clipped"] and shape["lines"] <= 3, shape
    await expect(row.locator(".participant-avatar")).to_have_text("A")

    tile_name = teacher.page.locator(
        f'[data-testid="tile"][data-participant="{student_id}"] .tile-name'
    )
    await expect(tile_name).to_have_text(LONG_NAME)
    end = await tile_name.evaluate(_END_SHOWN_JS)
    assert end["end_inside"] and end["direction"] == "rtl", end
    await teacher.page.screenshot(path=str(artifacts / f"names-console-{width}.png"))
