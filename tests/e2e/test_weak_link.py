"""A student on a weak phone link: switched to audio-only in time, and nobody else pays for it.

The lesson runs on the weak-link rig of ``python -m loadtests.weaklink`` (``loadtests/netem.py``):
``lophoc serve`` in a namespace of its own, a teacher on ``/teach`` in Chromium (fake camera at
the page's 600 kbit/s cap, a continuous tone as microphone), and phone-sized Chromium students
(Pixel 5) who only listen, each behind a delay line and a shaper that the test changes while the
lesson runs. What the student experiences is read from inside the student page every 100 ms
(``loadtests/studentview.py``).

The contract read from the student page:

* ``[data-testid="student-view"]`` carries ``data-downlink``: ``ok``, ``weak`` or
  ``audio_only`` — the server's verdict on this student's downlink;
* while it is ``audio_only`` a notice is *on screen* (rendered, inside the viewport, not empty):
  the page's notice line ``[data-testid="notice"]`` or a ``[data-testid="downlink-notice"]``,
  other than any notice already shown before the link turned weak.

Screenshots of the student page in each state go to the e2e artefacts directory
(``weak-link-*.png``). Every namespace's guard counter (packets addressed beyond the LAN) must
stay 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from playwright.async_api import expect

from loadtests.netem import Shaping, weak_link_unavailable_reason
from loadtests.studentview import summarise
from loadtests.weaklink import Rig, Student
from tests.e2e.harness import artifacts_dir
from tests.unavailable import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SWITCH_WITHIN = 5.0  # s: 150 kbit/s → audio-only
RECOVER_WITHIN = 10.0  # s: link lifted → video and "ok" again
MAX_CONCEALED_PCT = 2.0  # audio concealed after the switch
KEEP_FPS = 0.9  # the unshaped student keeps this share of its frame rate


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    reason = weak_link_unavailable_reason()
    if reason is not None:
        unavailable(f"the weak-link tests {reason}")
    async with Rig(tmp_path_factory.mktemp("weaklink")) as running:
        yield running
        escaped = await asyncio.to_thread(running.lan.escaped)
        assert not any(escaped.values()), (
            f"packets addressed beyond the LAN: {escaped} {running.lan.escaped_to()}"
        )


async def shot(student: Student, name: str) -> Path:
    path = artifacts_dir() / f"weak-link-{name}.png"
    await student.page.screenshot(path=str(path))
    return path


def describe(samples: list[dict[str, Any]], since: float) -> str:
    """What the page showed after ``since``: downlink states and notices, briefly."""
    after = [s for s in samples if s["t"] >= since]
    states = sorted({str(s.get("downlink")) for s in after})
    notices = sorted({n["text"][:80] for s in after for n in s.get("notices", [])})
    last = after[-1] if after else {}
    pc = last.get("pc") or {}
    return (
        f"data-downlink seen: {states} (None: the page has no such attribute); notices on "
        f"screen: {notices}; last reading: connection {pc.get('state')}, frames decoded "
        f"{(pc.get('v') or {}).get('framesDecoded')}, audio samples "
        f"{(pc.get('a') or {}).get('totalSamplesReceived')}"
    )


async def diagnostics(rig: Rig, *students: Student) -> str:
    parts = []
    for student in students:
        with contextlib.suppress(Exception):
            samples, _ = await student.readings()
            parts.append(f"--- {student.label}: {describe(samples, 0)}")
            parts.append("\n".join(student.console[-40:]))
    lines = [line for line in rig.server_log().splitlines() if '"GET /static/' not in line]
    parts.append("--- server log (tail)\n" + "\n".join(lines[-60:]))
    return "\n".join(parts)


async def wait_in_page(student: Student, condition: str, arg: Any, within: float) -> bool:
    try:
        await student.page.wait_for_function(condition, arg=arg, polling=100, timeout=within * 1000)
    except PlaywrightTimeoutError:
        return False
    return True


async def test_150_kbps_switches_to_audio_only_and_back(rig: Rig) -> None:
    student = await rig.join("phone", "Phạm Minh Anh")
    try:
        await asyncio.sleep(2.0)  # the picture is moving before the link turns weak
        await shot(student, "150k-before")
        before, _ = await student.readings()
        earlier_notices = sorted({n["text"] for n in before[-1].get("notices", [])})
        weak_at = await student.now()
        await asyncio.to_thread(rig.lan.shape, "phone", Shaping(rate_kbit=150))

        # Within 5 s: data-downlink="audio_only", and a new notice on screen.
        switched = await wait_in_page(
            student,
            """([since, earlier]) => window.__wl.samples.some((s) => s.t >= since
                 && s.downlink === 'audio_only'
                 && s.notices.some((n) => !earlier.includes(n.text)))""",
            [weak_at, earlier_notices],
            SWITCH_WITHIN,
        )
        samples, _ = await student.readings()
        await shot(student, "150k-weak")
        assert switched, (
            f"at 150 kbit/s the student was not switched to audio-only with a notice on screen "
            f"within {SWITCH_WITHIN:g} s: {describe(samples, weak_at)}\n"
            f"{await diagnostics(rig, student)}"
        )
        switch_at = next(
            s["t"] for s in samples if s["t"] >= weak_at and s.get("downlink") == "audio_only"
        )
        notice = next(
            n["testid"]
            for s in samples
            if s["t"] >= switch_at
            for n in s["notices"]
            if n["text"] not in earlier_notices
        )
        await expect(student.page.get_by_test_id(notice).first).to_be_in_viewport()
        await shot(student, "150k-audio-only")

        # Still hearing the teacher: samples keep arriving, almost none concealed.
        await asyncio.sleep(3.5)
        samples, paints = await student.readings()
        heard = summarise(samples, paints, switch_at + 500, await student.now())
        assert heard["audio_samples"] > 0.8 * 48_000 * (heard["seconds"]), heard
        assert heard["audio_concealed_pct"] is not None, heard
        assert heard["audio_concealed_pct"] <= MAX_CONCEALED_PCT, (
            f"audio after the switch to audio-only: {heard}"
        )

        # Lifted: within 10 s video moves again and data-downlink is "ok".
        lifted_at = await student.now()
        frames = samples[-1]["pc"]["v"]["framesDecoded"]
        await asyncio.to_thread(rig.lan.lift, "phone")
        back = await wait_in_page(
            student,
            """([since, frames]) => window.__wl.samples.some((s) => s.t >= since
                 && s.downlink === 'ok' && s.pc && s.pc.v.framesDecoded >= frames + 10)""",
            [lifted_at, frames],
            RECOVER_WITHIN,
        )
        samples, _ = await student.readings()
        await shot(student, "150k-recovered")
        assert back, (
            f"video did not come back within {RECOVER_WITHIN:g} s of lifting the link: "
            f"{describe(samples, lifted_at)}"
        )
    finally:
        await asyncio.to_thread(rig.lan.lift, "phone")
        await rig.leave(student)


async def test_a_weak_student_costs_the_others_nothing(rig: Rig) -> None:
    weak = await rig.join("phone", "Trần Văn Yếu")
    strong = await rig.join("other", "Lê Thị Khỏe")
    try:
        # The unshaped run: both links unlimited.
        await asyncio.sleep(1.0)
        start = await strong.now()
        await asyncio.sleep(6.0)
        samples, paints = await strong.readings()
        unshaped = summarise(samples, paints, start, await strong.now())

        await asyncio.to_thread(rig.lan.shape, "phone", Shaping(rate_kbit=300, loss_percent=5))
        await asyncio.sleep(2.0)
        start = await strong.now()
        await asyncio.sleep(8.0)
        samples, paints = await strong.readings()
        shaped = summarise(samples, paints, start, await strong.now())
        await shot(weak, "shared-weak-student")
        await shot(strong, "shared-unshaped-student")
        weak_samples, _ = await weak.readings()
        print(
            f"unshaped student: {unshaped['fps']} fps with both links unlimited, "
            f"{shaped['fps']} fps while the other was at 300 kbit/s + 5 % loss"
        )

        assert unshaped["fps"] and unshaped["fps"] > 10, f"no video to compare: {unshaped}"
        assert shaped["fps"] is not None and shaped["fps"] >= KEEP_FPS * unshaped["fps"], (
            f"the unshaped student's frame rate fell from {unshaped['fps']} to {shaped['fps']} "
            f"fps while another student was at 300 kbit/s + 5 % loss:\n"
            f"unshaped: {json.dumps(unshaped)}\nshaped: {json.dumps(shaped)}"
        )
        assert not shaped["dropped"], shaped
        seen = [s.get("downlink") for s in samples if s["t"] >= start]
        assert seen and None not in seen, (
            "the unshaped student's page says nothing about its downlink (no data-downlink on "
            f"the student view), so it cannot show that it was never switched to audio-only; "
            f"the weak student's page: {describe(weak_samples, 0)}"
        )
        assert "audio_only" not in seen, (
            f"the unshaped student went audio-only: {sorted(str(s) for s in set(seen))}"
        )
    finally:
        await asyncio.to_thread(rig.lan.lift, "phone")
        await rig.leave(weak)
        await rig.leave(strong)
