"""``python -m loadtests.weaklink``: what a student on a weak phone link sees and hears.

A real lesson on a private namespace LAN (``loadtests/netem.py``): ``lophoc serve`` in the
server's namespace (self-signed TLS, ICE gathered on its LAN address, only the LAN accepted, no
waiting room), a teacher in Debian's Chromium on ``/teach`` (fake camera, 640×480 at 20 fps,
capped by the page at 600 kbit/s; the fake microphone plays a continuous tone from a WAV file, so
every gap in what the student hears is concealment), and per condition one phone-sized Chromium
student (Pixel 5) on the real join link, behind the weak link. The student allows no camera or
microphone: it only listens, so the server's ``lophoc_rtp_forwarded_bytes_total`` counts exactly
what the server sent that student.

Per condition: the student joins on an unlimited link and waits for the teacher's picture, a
short warm-up passes, the condition is applied, ``--seconds`` are measured, the link is lifted,
and up to ``--recovery`` seconds show whether (and when) video and ``data-downlink="ok"``
come back. The student page is read every 100 ms (``loadtests/studentview.py``).

Conditions are named by what they do: ``unlimited``, ``300k``, ``300k+5%``, ``150k``,
``300k+200ms``, ``300k+5%+200ms``, ``1m+5%``, and ``teacher-10%`` (10 % of the teacher's UDP
dropped on its way to the server; the student unlimited). Rates in kbit/s (``k``) or Mbit/s
(``m``), loss in %, added round-trip time in ms.

Output: a table (one row per condition), then one JSON line; ``--json`` prints only the JSON.
Needs root (namespaces), iproute2's ``ip`` and ``tc``, ``nft`` (nftables), ``ethtool`` and
Debian's Chromium (``/usr/bin/chromium`` or ``$LOPHOC_CHROMIUM``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

from loadtests.chromium import (
    BASE_ARGS,
    CHROMIUM,
    HOST_RESOLVER_RULES,
    merged_disable_features,
    playwright_default_switch,
)
from loadtests.netem import UNLIMITED, Shaping, WeakLan, weak_link_unavailable_reason
from loadtests.stats import parse_prometheus_counter
from loadtests.studentview import MONITOR_JS, first_time, summarise

__all__ = [
    "CONDITIONS",
    "Condition",
    "Rig",
    "Student",
    "format_table",
    "main",
    "parse_condition",
    "run",
]

REPO = Path(__file__).resolve().parents[1]
HOSTS = {"srv": "10.78.0.1", "phone": "10.78.0.2", "teacher": "10.78.0.3", "other": "10.78.0.4"}
PHONES = ("phone", "other")
PREFIX = "lophoc-wl"
ROUTER = "10.78.0.254"
SERVER = HOSTS["srv"]
PORT = 8443
FORWARDED_BYTES = "lophoc_rtp_forwarded_bytes_total"
FAKE_UI = "--use-fake-ui-for-media-stream"
TONE_HZ = 440
TEACHER_VIDEO = '[data-testid="teacher-video"]'
STUDENT_VIEW = '[data-testid="student-view"]'


# -- conditions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A named link: the student's downlink, and loss on the teacher's uplink."""

    name: str
    student: Shaping = UNLIMITED
    teacher_uplink_loss: float = 0.0

    def describe(self) -> str:
        if self.teacher_uplink_loss:
            return f"teacher uplink {self.teacher_uplink_loss:g} % loss"
        return self.student.describe()


def parse_condition(name: str) -> Condition:
    """``unlimited``, ``teacher-10%``, or ``+``-joined parts: ``300k``, ``1m``, ``5%``,
    ``200ms``."""
    text = name.strip().lower()
    if text == "unlimited":
        return Condition(text)
    teacher = re.fullmatch(r"teacher-(\d+(?:\.\d+)?)%", text)
    if teacher:
        return Condition(text, teacher_uplink_loss=float(teacher.group(1)))
    rate: int | None = None
    loss = rtt = 0.0
    for part in text.split("+"):
        if m := re.fullmatch(r"(\d+)k", part):
            rate = int(m.group(1))
        elif m := re.fullmatch(r"(\d+(?:\.\d+)?)m", part):
            rate = round(float(m.group(1)) * 1000)
        elif m := re.fullmatch(r"(\d+(?:\.\d+)?)%", part):
            loss = float(m.group(1))
        elif m := re.fullmatch(r"(\d+)ms", part):
            rtt = float(m.group(1))
        else:
            raise ValueError(f"unknown condition part {part!r} in {name!r}")
    return Condition(text, Shaping(rate, loss, rtt))


CONDITIONS = tuple(
    parse_condition(n)
    for n in (
        "unlimited",
        "300k",
        "300k+5%",
        "150k",
        "300k+200ms",
        "300k+5%+200ms",
        "1m+5%",
        "teacher-10%",
    )
)


# -- the rig: LAN, server, browsers -------------------------------------------------------------


def write_tone(path: Path, seconds: float = 10.0, rate: int = 48_000) -> Path:
    """A continuous sine (−12 dBFS, mono, 16 bit) for Chromium's fake microphone."""
    frames = int(seconds * rate)
    amplitude = 0.25 * 32767
    # a whole number of periods, so the file loops without a click
    periods = round(TONE_HZ * seconds)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", round(amplitude * math.sin(2 * math.pi * periods * i / frames)))
                for i in range(frames)
            )
        )
    return path


def browser_args(tone: Path | None, camera: bool) -> list[str]:
    """Chromium on a LAN host: no name look-ups but the server's literal address, real host
    candidates (mDNS hiding off), fake devices; ``camera=False`` refuses camera and
    microphone (a listening phone)."""
    rules = HOST_RESOLVER_RULES + f" , EXCLUDE {SERVER}"
    dropped = (HOST_RESOLVER_RULES, "--allow-loopback-in-peer-connection", FAKE_UI)
    args = [a for a in BASE_ARGS if a not in dropped]
    args += [rules, merged_disable_features(), FAKE_UI if camera else f"{FAKE_UI}=deny"]
    if tone is not None:
        args.append(f"--use-file-for-fake-audio-capture={tone}")
    return args


@dataclass
class Student:
    host: str
    label: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)

    async def now(self) -> float:
        """The page's ``performance.now()`` (ms): the clock of its readings."""
        value: float = await self.page.evaluate("() => performance.now()")
        return value

    async def readings(self) -> tuple[list[dict[str, Any]], list[float]]:
        data: dict[str, Any] = await self.page.evaluate(
            "() => ({samples: window.__wl.samples, paints: window.__wl.paints})"
        )
        return list(data["samples"]), [float(p) for p in data["paints"]]

    async def latest(self) -> dict[str, Any] | None:
        sample: dict[str, Any] | None = await self.page.evaluate(
            "() => window.__wl.samples.length ? window.__wl.samples.at(-1) : null"
        )
        return sample

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.context.close()


class Rig:
    """The LAN, the server, the teacher's lesson and the students' browsers of one run.

    ``async with Rig(workdir) as rig:`` builds everything and tears it down (also on failure);
    :meth:`join` adds a student, ``rig.lan`` shapes links."""

    def __init__(self, workdir: Path, say: Callable[[str], None] = lambda _: None) -> None:
        self.workdir = workdir
        self.say = say
        self.lan = WeakLan(
            workdir, hosts=dict(HOSTS), prefix=PREFIX, router_address=ROUTER, phones=PHONES
        )
        self.base = f"https://{SERVER}:{PORT}"
        self.metrics_token = secrets.token_urlsafe(24)
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log_path = workdir / "serve.log"
        self._server_log: IO[bytes] | None = None
        self._pw_cm: Any = None
        self.pw: Playwright | None = None
        self.browsers: dict[str, Browser] = {}
        self.teacher: Page | None = None
        self.teacher_console: list[str] = []
        self.link = ""
        self.password = "mật-khẩu-yếu"
        self.students: list[Student] = []

    async def __aenter__(self) -> Rig:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        reason = weak_link_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"the weak link cannot be built here: {reason}")
        await asyncio.to_thread(self.lan.up)
        self.say(f"LAN up ({self.lan.subnet}), starting `lophoc serve` in {self.lan.ns('srv')}")
        await self._start_server()
        self._pw_cm = async_playwright()
        self.pw = await self._pw_cm.__aenter__()
        tone = write_tone(self.workdir / "tone.wav")
        self.browsers["teacher"] = await self._launch("teacher", tone, camera=True)
        for host in PHONES:
            self.browsers[host] = await self._launch(host, None, camera=False)
        await self._create_lesson()
        self.say(f"teacher is teaching: {self.link}")

    def server_command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "web.cli", "serve", "--host", SERVER, "--port", str(PORT)),
            *("--data-dir", str(self.workdir / "data")),
            *("--ice-address", SERVER, "--ice-accept", self.lan.subnet),
            *("--waiting-room", "nobody", "--log-level", "info", "--trace-media"),
        ]

    def _spawn_server(self) -> subprocess.Popen[bytes]:
        self._server_log = self.server_log_path.open("wb")
        return subprocess.Popen(
            self.lan.command("srv", *self.server_command()),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._server_log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(REPO),
                # /metrics answers another host only with the token.
                "LOPHOC_METRICS_TOKEN": self.metrics_token,
            },
        )

    async def _start_server(self) -> None:
        self.server = self._spawn_server()
        deadline = time.monotonic() + 30
        while "Uvicorn running on" not in self.server_log():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`lophoc serve` did not start:\n{self.server_log()[-5000:]}")
            await asyncio.sleep(0.1)

    def server_log(self) -> str:
        if not self.server_log_path.exists():
            return ""
        return self.server_log_path.read_bytes().decode("utf-8", "replace")

    async def _launch(self, host: str, tone: Path | None, camera: bool) -> Browser:
        assert self.pw is not None
        browser = await self.pw.chromium.launch(
            executable_path=str(self.lan.wrapper(host, CHROMIUM)),
            headless=True,
            args=browser_args(tone, camera),
            ignore_default_args=[playwright_default_switch()],
        )
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto("chrome://version")
            command_line = await page.inner_text("#command_line")
        finally:
            await context.close()
        switches = re.findall(r"(?:^|\s)(--disable-features=\S*)", command_line)
        if switches != [merged_disable_features()]:
            await browser.close()
            raise RuntimeError(f"Chromium in {host} got {switches}: {command_line}")
        return browser

    async def _create_lesson(self) -> None:
        context = await self.browsers["teacher"].new_context(
            ignore_https_errors=True, locale="vi-VN", viewport={"width": 1280, "height": 800}
        )
        page = self.teacher = await context.new_page()
        page.on("console", lambda m: self.teacher_console.append(f"{m.type}: {m.text}"))
        await page.goto(f"{self.base}/teach")
        await page.get_by_test_id("create-title").fill("Toán 5A — mạng yếu")
        await page.get_by_test_id("create-password").fill(self.password)
        await page.get_by_test_id("create-submit").click()
        link = page.get_by_test_id("lesson-link")
        await page.wait_for_function(
            "() => /^https?:\\/\\/[^/]+\\/l\\/\\S+$/.test("
            "document.querySelector('[data-testid=\"lesson-link\"]').value)",
            timeout=20_000,
        )
        self.link = await link.input_value()
        await page.get_by_test_id("start-teaching").click()
        await page.wait_for_selector(
            '[data-testid="connection-state"][data-state="connected"]', timeout=20_000
        )

    async def join(self, host: str, label: str, within: float = 30.0) -> Student:
        """A Pixel 5 student in ``host`` joins by the link and waits for the teacher's picture
        and sound."""
        assert self.pw is not None
        device = {
            k: v for k, v in self.pw.devices["Pixel 5"].items() if k != "default_browser_type"
        }
        context = await self.browsers[host].new_context(
            **device, ignore_https_errors=True, locale="vi-VN"
        )
        page = await context.new_page()
        student = Student(host, label, context, page)
        page.on("console", lambda m: student.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: student.console.append(f"pageerror: {e}"))
        self.students.append(student)
        await context.add_init_script(MONITOR_JS)
        await page.goto(self.link)
        await page.get_by_test_id("join-name").fill(label)
        await page.get_by_test_id("join-password").fill(self.password)
        await page.get_by_test_id("join-submit").click()
        await page.wait_for_selector(STUDENT_VIEW, state="visible", timeout=within * 1000)
        enable = page.get_by_test_id("enable-sound")
        # A phone without camera and microphone is told so once; the student dismisses it.
        banner = page.get_by_test_id("media-error-close")
        with contextlib.suppress(Exception):
            await banner.wait_for(state="visible", timeout=3_000)
            await banner.click()
        with contextlib.suppress(Exception):
            await page.wait_for_function(
                "() => { const s = window.__wl.samples.at(-1); return !!(s && s.pc"
                " && s.pc.v.framesDecoded > 0 && s.pc.a.totalSamplesReceived > 0"
                " && window.__wl.paints.length > 0); }",
                timeout=5_000,
            )
        if await enable.is_visible():
            await enable.click()
        await page.wait_for_function(
            "() => { const s = window.__wl.samples.at(-1); return !!(s && s.pc"
            " && s.pc.v.framesDecoded > 0 && s.pc.a.totalSamplesReceived > 0"
            " && window.__wl.paints.length > 0); }",
            timeout=within * 1000,
        )
        return student

    async def leave(self, student: Student) -> None:
        await student.close()
        if student in self.students:
            self.students.remove(student)

    async def metric(self, name: str = FORWARDED_BYTES) -> float | None:
        """A counter of the server's ``/metrics``, fetched by the teacher's page (the teacher's
        own link: never the student's shaped one)."""
        assert self.teacher is not None
        text: str = await self.teacher.evaluate(
            """async (token) => (await fetch('/metrics', {
                 cache: 'no-store', headers: {Authorization: `Bearer ${token}`},
               })).text()""",
            self.metrics_token,
        )
        return parse_prometheus_counter(text, name)

    async def media_counters(self) -> dict[str, float]:
        """Every ``lophoc_rtp_*_total`` counter of the server's ``/metrics`` (by the teacher's
        page, as ``metric``), keyed without the prefix and suffix."""
        assert self.teacher is not None
        text: str = await self.teacher.evaluate(
            "async () => (await fetch('/metrics', {cache: 'no-store'})).text()"
        )
        return media_counters(text)

    async def teacher_sent_bytes(self) -> int:
        assert self.teacher is not None
        sent: int = await self.teacher.evaluate(
            """async () => {
                 const pc = window.lophoc.pcs().publish;
                 let n = 0;
                 if (pc) (await pc.getStats()).forEach((s) => {
                   if (s.type !== 'outbound-rtp') return;
                   n += (s.bytesSent || 0) + (s.headerBytesSent || 0);
                 });
                 return n;
               }"""
        )
        return sent

    async def stop(self) -> None:
        for student in self.students:
            await student.close()
        self.students.clear()
        for browser in self.browsers.values():
            with contextlib.suppress(Exception):
                await browser.close()
        self.browsers.clear()
        if self._pw_cm is not None:
            with contextlib.suppress(Exception):
                await self._pw_cm.__aexit__(None, None, None)
            self._pw_cm = None
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.server.wait, 10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                await asyncio.to_thread(self.server.wait, 10)
        if self._server_log is not None:
            self._server_log.close()
            self._server_log = None
        await asyncio.to_thread(self.lan.down)


def media_counters(text: str) -> dict[str, float]:
    """The ``lophoc_rtp_<name>_total`` samples of a Prometheus text, as ``{name: value}``."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"lophoc_rtp_(\w+)_total(?:\{[^}]*\})?\s+(\S+)", line.strip())
        if m:
            with contextlib.suppress(ValueError):
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


# -- one condition ------------------------------------------------------------------------------


async def apply(rig: Rig, host: str, condition: Condition) -> None:
    if condition.teacher_uplink_loss:
        await asyncio.to_thread(
            rig.lan.uplink_loss, "teacher", condition.teacher_uplink_loss, "srv"
        )
    await asyncio.to_thread(rig.lan.shape, host, condition.student)


async def lift(rig: Rig, host: str) -> None:
    await asyncio.to_thread(rig.lan.uplink_loss, "teacher", 0.0, "srv")
    await asyncio.to_thread(rig.lan.lift, host)


def _video_back(samples: list[dict[str, Any]], paints: list[float], since: float) -> float | None:
    """Seconds from ``since`` until the teacher's picture moves again: ten painted frames
    within one second."""
    after = [p for p in paints if p >= since]
    for i in range(len(after) - 9):
        if after[i + 9] - after[i] <= 1000:
            return round((after[i] - since) / 1000, 2)
    return None


async def measure(
    rig: Rig,
    condition: Condition,
    seconds: float,
    *,
    warmup: float = 3.0,
    recovery: float = 15.0,
    host: str = "phone",
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """One condition on a fresh student: join, warm up, apply, measure, lift, recover."""
    student = await rig.join(host, f"Học sinh {condition.name}")
    try:
        await asyncio.sleep(warmup)
        before_links = await asyncio.to_thread(rig.lan.link_counters, host)
        forwarded_0 = await rig.metric()
        counters_0 = await rig.media_counters()
        teacher_0 = await rig.teacher_sent_bytes()
        start = await student.now()
        applied_at = time.time()
        await apply(rig, host, condition)
        say(f"{condition.name}: {condition.describe()} for {seconds:g} s")
        await asyncio.sleep(seconds)
        end = await student.now()
        forwarded_1 = await rig.metric()
        counters_1 = await rig.media_counters()
        teacher_1 = await rig.teacher_sent_bytes()
        after_links = await asyncio.to_thread(rig.lan.link_counters, host)
        await lift(rig, host)
        lifted = await student.now()
        deadline = time.monotonic() + recovery
        while time.monotonic() < deadline:
            samples, paints = await student.readings()
            downlink = samples[-1].get("downlink") if samples else None
            if _video_back(samples, paints, lifted) is not None and downlink in (None, "ok"):
                break
            await asyncio.sleep(0.5)
        samples, paints = await student.readings()
    finally:
        await rig.leave(student)
    window = end - start
    result = summarise(samples, paints, start, end)
    server_kbps = (
        round((forwarded_1 - forwarded_0) * 8 / (window / 1000) / 1000, 1)
        if forwarded_0 is not None and forwarded_1 is not None
        else None
    )
    has_downlink = any(s.get("downlink") is not None for s in samples)
    result.update(
        {
            "condition": condition.name,
            "describe": condition.describe(),
            "applied_at": round(applied_at, 3),
            "server_counters": {
                k: v - counters_0.get(k, 0.0)
                for k, v in sorted(counters_1.items())
                if v - counters_0.get(k, 0.0)
            },
            "server_kbps": server_kbps,
            "teacher_kbps": round((teacher_1 - teacher_0) * 8 / (window / 1000) / 1000, 1),
            "link": {k: after_links[k] - before_links.get(k, 0) for k in after_links},
            "downlink_attribute": has_downlink,
            "to_audio_only_s": first_time(samples, start, "audio_only", end)
            if has_downlink
            else None,
            "back_to_ok_s": first_time(samples, lifted, "ok") if has_downlink else None,
            "video_back_s": _video_back(samples, paints, lifted),
        }
    )
    return result


# -- report ------------------------------------------------------------------------------------

_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("condition", "condition", 14),
    ("fps", "fps", 6),
    ("painted_fps", "painted", 7),
    ("freezes", "frz", 4),
    ("freeze_s", "frz s", 6),
    ("longest_paint_gap_s", "gap s", 6),
    ("audio_concealed_pct", "conc %", 7),
    ("longest_audio_gap_s", "a-gap s", 7),
    ("video_lost", "v lost", 6),
    ("audio_lost", "a lost", 6),
    ("server_kbps", "srv kb/s", 8),
    ("rx_kbps", "rx kb/s", 7),
    ("rtt_ms", "rtt ms", 6),
    ("dropped", "drop", 5),
    ("to_audio_only_s", "→a-only", 7),
    ("back_to_ok_s", "→ok", 5),
    ("video_back_s", "→video", 6),
)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_table(report: dict[str, Any]) -> str:
    header = "  ".join(f"{title:>{width}}" for _, title, width in _COLUMNS)
    lines = [header, "-" * len(header)]
    for row in report["conditions"]:
        lines.append(
            "  ".join(f"{_cell(row.get(key)):>{width}}" for key, _, width in _COLUMNS).rstrip()
        )
    lines.append(
        f"{report['seconds_per_condition']:g} s per condition; fps = frames decoded, painted ="
        " frames painted (requestVideoFrameCallback), gap = longest time without a new frame,"
        " conc = audio samples concealed, a-gap = longest run of mostly concealed 100 ms,"
        " srv = what the server sent the student, rx = what it received (headers included),"
        " →a-only / →ok = seconds to data-downlink audio_only after the condition / ok after"
        " it is lifted (— without the attribute), →video = seconds to moving video after it."
    )
    if any(v for v in report["guard_escaped"].values()):
        lines.append(
            f"GUARD: packets tried to leave the LAN: {report['guard_escaped']}"
            f" ({report.get('guard_escaped_to')})"
        )
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.weaklink",
        description="A real Chromium student behind an emulated weak phone link, measured.",
    )
    parser.add_argument("--seconds", type=float, default=60, help="measured per condition (s)")
    parser.add_argument("--warmup", type=float, default=3, help="unshaped time before it (s)")
    parser.add_argument(
        "--recovery", type=float, default=15, help="at most this long after lifting (s)"
    )
    parser.add_argument(
        "--conditions",
        nargs="+",
        default=[c.name for c in CONDITIONS],
        help="e.g. unlimited 300k 300k+5%% 150k 300k+200ms 1m+5%% teacher-10%%",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line on stdout")
    parser.add_argument("--keep-dir", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 3600 or not 0 <= args.warmup <= 60 or args.recovery < 0:
        parser.error("--seconds within [1, 3600], --warmup within [0, 60], --recovery ≥ 0")
    try:
        args.parsed = [parse_condition(c) for c in args.conditions]
    except ValueError as exc:
        parser.error(str(exc))
    return args


class _Progress:
    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {message}", file=self.stream, flush=True)


async def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="lophoc-weaklink-"))
    rows = []
    try:
        async with Rig(workdir, say) as rig:
            for condition in args.parsed:
                row = await measure(
                    rig,
                    condition,
                    args.seconds,
                    warmup=args.warmup,
                    recovery=args.recovery,
                    say=say,
                )
                say(json.dumps({k: row[k] for k in ("condition", "fps", "audio_concealed_pct")}))
                rows.append(row)
            escaped = await asyncio.to_thread(rig.lan.escaped)
            escaped_to = await asyncio.to_thread(rig.lan.escaped_to)
    finally:
        if not args.keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    return {
        "benchmark": "weaklink",
        "seconds_per_condition": args.seconds,
        "guard_escaped": escaped,
        "guard_escaped_to": escaped_to,
        "conditions": rows,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say = _Progress()
    try:
        report = asyncio.run(run(args, say))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        say(f"weaklink failed: {type(exc).__name__}: {exc}")
        return 1
    if not args.json:
        print(format_table(report))
    print(json.dumps(report, ensure_ascii=False, separators=(", ", ": ")))
    return 0 if not any(report["guard_escaped"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
