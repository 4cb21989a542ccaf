"""The server as its own process, browser contexts that keep their console, and test artefacts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, WebSocket

from loadtests.server import serve_command
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """``$LOPHOC_TEST_ARTIFACTS`` if set, else ``tests/e2e/artifacts/`` (git-ignored)."""
    configured = os.environ.get("LOPHOC_TEST_ARTIFACTS")
    path = Path(configured) if configured else Path(__file__).parent / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LophocServer:
    """``python -m web.cli serve`` on 127.0.0.1, media pinned to loopback; output in a file."""

    def __init__(self, data_dir: Path, *, waiting_room: str = "nobody") -> None:
        self.data_dir = data_dir
        self.waiting_room = waiting_room
        self.port = free_port()
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return serve_command(
            self.port, self.data_dir, log_level="info", waiting_room=self.waiting_room
        )

    async def start(self, timeout: float = 30.0) -> LophocServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command(), cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self.process.returncode}:\n{self.log_text()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/healthz", timeout=2)).status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no /healthz within {timeout} s:\n{self.log_text()}")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait, 10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_text(self, since: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    async def metrics(self) -> str:
        """The server's own counters (``lophoc_*`` lines of /metrics), for failure reports."""
        try:
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"{self.url}/metrics", timeout=5)).text
        except httpx.HTTPError as exc:
            return f"/metrics: {exc!r}"
        return "\n".join(
            line
            for line in text.splitlines()
            if line.startswith("lophoc_") and "_created" not in line
        )

    def failure_log(self, since: int, limit: int = 30_000) -> str:
        """The log since ``since`` without the static-file requests, for a failure report."""
        lines = [line for line in self.log_text(since).splitlines() if '"GET /static/' not in line]
        text = "\n".join(lines)[-limit:]
        if self.process is not None and self.process.poll() is not None:
            text += f"\n*** the server process exited with {self.process.returncode} ***"
        return text

    async def create_lesson(self, title: str, password: str) -> dict[str, Any]:
        """A lesson made through the HTTP API (for tests that need no teacher page)."""
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{self.url}/api/lessons", json={"title": title, "password": password}
            )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


# Both peer connections of a page, summarised: states and every RTP stream's counters.
PC_SUMMARY_JS = """
async () => {
  const pcs = window.lophoc && window.lophoc.pcs ? window.lophoc.pcs() : null;
  if (!pcs) return null;
  const out = {};
  for (const [name, pc] of Object.entries(pcs)) {
    if (!pc) { out[name] = null; continue; }
    const streams = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp') {
        streams.push(`out ${s.kind} mid=${s.mid} rid=${s.rid ?? '-'} bytes=${s.bytesSent}`
          + ` frames=${s.framesEncoded ?? '-'} ${s.frameWidth ?? ''}`
          + `${s.qualityLimitationReason ? ' limit=' + s.qualityLimitationReason : ''}`);
      } else if (s.type === 'inbound-rtp') {
        streams.push(`in ${s.kind} mid=${s.mid} packets=${s.packetsReceived}`
          + ` decoded=${s.framesDecoded ?? '-'} ${s.frameWidth ?? ''}`);
      }
    });
    out[name] = {connection: pc.connectionState, ice: pc.iceConnectionState,
                 signaling: pc.signalingState,
                 transceivers: pc.getTransceivers().map((t) => `${t.mid}:${t.currentDirection}`),
                 streams};
  }
  return out;
}
"""


def summarise_sdp(sdp: str) -> str:
    """``mid:kind/direction@msid-stream`` per m-section: what a failure report needs."""
    sections = []
    for section in re.split(r"\r?\nm=", sdp)[1:]:
        kind = section.split(" ", 1)[0]
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        direction = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\r?$", section, re.M)
        msid = re.search(r"^a=msid:(\S+)", section, re.M)
        port = section.split(" ", 2)[1] if " " in section else "?"
        sections.append(
            f"{mid.group(1) if mid else '?'}:{kind}/{direction.group(1) if direction else '?'}"
            + (f"@{msid.group(1)}" if msid else "")
            + (" (rejected)" if port == "0" else "")
        )
    return "[" + ", ".join(sections) + "]"


def summarise_frame(text: str, limit: int = 400) -> str:
    """A signaling frame for a failure report: SDP bodies reduced to their m-sections."""
    try:
        message = json.loads(text)
    except ValueError:
        return text[:limit]

    def shrink(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: summarise_sdp(v) if k == "sdp" and isinstance(v, str) else shrink(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [shrink(v) for v in value]
        return value

    return json.dumps(shrink(message), ensure_ascii=False)[:limit]


@dataclass
class Tab:
    """One browser context with one page, and what its page said."""

    label: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)
    sent_frames: list[tuple[str, str]] = field(default_factory=list)  # (socket url, frame)
    received_frames: list[tuple[str, str]] = field(default_factory=list)
    sockets: list[WebSocket] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def sent_messages(self) -> list[str]:
        return [frame for _, frame in self.sent_frames]


class Tabs:
    """Creates browser contexts for one test; on failure keeps screenshots and console logs."""

    def __init__(self, browser: Browser, test_name: str) -> None:
        self.browser = browser
        self.test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.tabs: list[Tab] = []

    async def open(self, label: str, **context_options: Any) -> Tab:
        options: dict[str, Any] = {"locale": "vi-VN", "viewport": {"width": 1280, "height": 800}}
        options.update(context_options)
        context = await self.browser.new_context(**options)
        context.set_default_timeout(20_000)
        page = await context.new_page()
        tab = Tab(label, context, page)
        started = time.monotonic()

        def stamp() -> str:
            return f"{time.monotonic() - started:7.2f}s"

        def on_console(message: ConsoleMessage) -> None:
            tab.console.append(f"{stamp()} {message.type}: {message.text}")

        def on_page_error(error: Any) -> None:
            tab.console.append(f"{stamp()} pageerror: {error}")

        def on_socket(socket: WebSocket) -> None:
            tab.sockets.append(socket)
            tab.console.append(f"{stamp()} websocket opened: {socket.url}")

            def on_frame(payload: Any) -> None:
                text = payload if isinstance(payload, str) else repr(payload)
                tab.sent_frames.append((socket.url, text))
                tab.console.append(f"{stamp()} ws> {summarise_frame(text)}")

            def on_received(payload: Any) -> None:
                text = payload if isinstance(payload, str) else repr(payload)
                tab.received_frames.append((socket.url, text))
                tab.console.append(f"{stamp()} ws< {summarise_frame(text)}")

            socket.on("framesent", on_frame)
            socket.on("framereceived", on_received)
            socket.on("close", lambda _: tab.console.append(f"{stamp()} websocket closed"))

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("websocket", on_socket)
        self.tabs.append(tab)
        return tab

    def clear_failure_screenshots(self, directory: Path) -> None:
        """Remove this test's screenshots from an earlier failed run."""
        for stale in directory.glob(f"{self.test_name}-*-failure.png"):
            stale.unlink()

    async def on_failure(self, directory: Path) -> str:
        """Screenshots of every page into ``directory``; returns the pages' console logs."""
        report = []
        for tab in self.tabs:
            shot = directory / f"{self.test_name}-{tab.label}-failure.png"
            with contextlib.suppress(Exception):
                await tab.page.screenshot(path=str(shot), full_page=True, timeout=5_000)
            state = "?"
            with contextlib.suppress(Exception):
                state = await tab.page.evaluate(
                    """() => JSON.stringify({url: location.href,
                          lophoc: window.lophoc ? {state: window.lophoc.state,
                            participantId: window.lophoc.participantId,
                            role: window.lophoc.role} : null,
                          testids: [...document.querySelectorAll('[data-testid]')]
                            .filter(e => e.offsetParent !== null || e.tagName === 'VIDEO')
                            .map(e => e.dataset.testid
                                 + (e.dataset.state ? '=' + e.dataset.state : '')
                                 + (e.dataset.code ? '!' + e.dataset.code : ''))})"""
                )
            media = "?"
            with contextlib.suppress(Exception):
                media = json.dumps(await tab.page.evaluate(PC_SUMMARY_JS))
            report.append(
                f"--- {tab.label}: {state}\n    peer connections: {media}\n"
                + "\n".join(tab.console[-150:])
            )
        return "\n".join(report)

    async def close(self) -> None:
        for tab in self.tabs:
            with contextlib.suppress(Exception):
                await tab.context.close()
        self.tabs.clear()
