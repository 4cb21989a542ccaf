"""The newcomer's lesson on a real (namespaced) LAN: ``make serve``, a laptop, phones.

Pass criterion: a newcomer who runs ``make serve`` can open the printed URL on a laptop as
teacher and on a phone on the same network as student, and see and hear each other.

Every other browser test pins the server and Chromium to 127.0.0.1 and turns off Chromium's
mDNS hiding of local addresses. Here nothing is pinned: network namespaces on a private bridge
(``tests/e2e/netns.py``) stand for the server machine, the teacher's laptop and two students'
phones.

* The server runs ``lophoc serve`` with no option at all — what ``make serve`` runs — in its
  own namespace: it listens on 0.0.0.0:8443 with its self-signed certificate, gathers on the
  non-loopback address it has (10.77.0.1) and accepts candidates from anywhere. The browsers
  open the LAN address the server *printed*.
* Chromium runs inside the laptop's and the phones' namespaces (Playwright's executable is an
  ``ip netns exec`` wrapper) with the fake camera and no Google look-ups, but with Chromium's
  ``--disable-features`` list untouched: ``WebRtcHideLocalIpsWithMdns`` is on, as on a real
  phone. Chromium then hides a page's addresses behind ``<uuid>.local`` names *unless the page
  was given the camera or microphone* — so:

  - the phone that allows its camera offers its real address, like Chrome on Android after
    "Allow"; it publishes, and the teacher must see it;
  - the phone that refuses the camera (``--use-fake-ui-for-media-stream=deny``) only listens,
    and offers nothing but mDNS names, which the server cannot resolve and drops. Its lesson
    works only from the peer-reflexive candidate the server learns from its connectivity
    checks: the test asserts exactly that.

  Phone contexts emulate a Pixel 5 and accept the self-signed certificate, as a student taps
  "proceed" once.

Packets go only between these namespaces (the network rule): this machine's own interfaces are
never used, and the "router" namespace has no link beyond the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import pytest_asyncio
from cryptography import x509
from playwright.async_api import Browser, Playwright

from tests.e2e.browser import (
    BASE_ARGS,
    CHROMIUM,
    HOST_RESOLVER_RULES,
    Flow,
    PcName,
    browser_command_line,
    ice_report,
    playwright_default_switch,
    video_has_size,
    wait_for_flows,
)
from tests.e2e.harness import REPO, Tab, Tabs
from tests.e2e.netns import Lan, unavailable_reason
from tests.e2e.pages import (
    create_lesson,
    enable_sound_if_offered,
    expect_connected,
    open_join_page,
    participant_id,
    phone,
    submit_join,
)
from tests.unavailable import unavailable

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SERVER = "10.77.0.1"
DEFAULT_PORT = 8443  # `make serve`'s port: free, since the namespace has its own ports
TEACHER_VIDEO = '[data-testid="teacher-video"]'
MDNS_NAME = re.compile(r"^[0-9a-f-]+\.local$", re.IGNORECASE)
FAKE_UI = "--use-fake-ui-for-media-stream"
TEACHER_CLICKS = asyncio.Lock()

# Every candidate line the page's peer connections produce (the client drops `.local` ones
# before signaling them, so the WebSocket frames alone do not show what the browser hid).
RECORDER_JS = """
(() => {
  const NativePc = window.RTCPeerConnection;
  const candidates = window.__e2eCandidates = [];
  function RecordedPc(...args) {
    const pc = new NativePc(...args);
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && e.candidate.candidate) candidates.push(e.candidate.candidate);
    });
    return pc;
  }
  RecordedPc.prototype = NativePc.prototype;
  Object.setPrototypeOf(RecordedPc, NativePc);
  window.RTCPeerConnection = RecordedPc;
})();
"""


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lan]:
    reason = unavailable_reason()
    if reason is not None:
        unavailable(f"the LAN test {reason}")
    with Lan(tmp_path_factory.mktemp("lan")) as network:
        yield network


def lophoc_command() -> list[str]:
    """What ``make serve`` runs (``$(BIN)/lophoc serve``), without a single option."""
    script = Path(sys.executable).parent / "lophoc"
    if script.is_file():
        return [str(script), "serve"]
    return [sys.executable, "-c", "import sys; from web.cli import main; main(sys.argv[1:])"]


@dataclass
class NamespacedServer:
    cwd: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def text(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def printed_urls(self) -> list[str]:
        return re.findall(r"^\s+(https?://\S+)$", self.text(), re.M)

    def learnt(self) -> list[str]:
        """The peer-reflexive candidates aioice learnt from incoming checks."""
        return re.findall(r"Discovered peer reflexive candidate Candidate\((.*?)\)", self.text())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(
    lan: Lan, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NamespacedServer]:
    # A fresh working directory: `./var` (database, certificate) lands there.
    cwd = tmp_path_factory.mktemp("newcomer")
    log_path = cwd / "serve.log"
    log = log_path.open("wb")
    command = lophoc_command()
    if command[0] == sys.executable:
        command.append("serve")
    process = subprocess.Popen(
        lan.command("srv", *command),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
    )
    running = NamespacedServer(cwd, process, log_path, log)
    try:
        deadline = time.monotonic() + 30
        while "Uvicorn running on" not in running.text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`lophoc serve` did not start:\n{running.text()}")
            await asyncio.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)
        log.close()


def lan_browser_args(camera: bool) -> list[str]:
    """BROWSER-TESTING's flags for a machine on the LAN: fake devices, no Google look-ups (every
    name resolves to nothing; the server is an IP literal), no loopback candidates, and no
    ``--disable-features`` of ours, so Playwright's own list applies and mDNS hiding stays on.
    ``camera=False``: the student refuses the camera and microphone."""
    rules = HOST_RESOLVER_RULES + f" , EXCLUDE {SERVER}"
    dropped = (HOST_RESOLVER_RULES, "--allow-loopback-in-peer-connection", FAKE_UI)
    args = [arg for arg in BASE_ARGS if arg not in dropped] + [rules]
    return [*args, FAKE_UI if camera else f"{FAKE_UI}=deny"]


async def launch_in(pw: Playwright, lan: Lan, host: str, camera: bool) -> Browser:
    browser = await pw.chromium.launch(
        executable_path=str(lan.wrapper(host, CHROMIUM)),
        headless=True,
        args=lan_browser_args(camera),
    )
    try:
        command_line = await browser_command_line(browser)
        switches = re.findall(r"(?:^|\s)(--disable-features=\S*)", command_line)
        assert switches == [playwright_default_switch()], command_line
        assert "WebRtcHideLocalIpsWithMdns" not in command_line, command_line
    except BaseException:
        await browser.close()
        raise
    return browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browsers(playwright_driver: Playwright, lan: Lan) -> AsyncIterator[dict[str, Browser]]:
    launched: dict[str, Browser] = {}
    try:
        for host, camera in (("laptop", True), ("phone", True), ("listener", False)):
            launched[host] = await launch_in(playwright_driver, lan, host, camera)
        yield launched
    finally:
        for browser in launched.values():
            with contextlib.suppress(Exception):
                await browser.close()


def describe(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    return f"{entry['candidateType']} {entry['address']}:{entry['port']}"


def certificate_addresses(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(a) for a in names.get_values_for_type(x509.IPAddress)]


async def host_candidates(tab: Tab) -> list[str]:
    """The addresses of the page's host candidates, as the page (and the server) saw them."""
    lines: list[str] = await tab.page.evaluate("() => window.__e2eCandidates")
    return [line.split()[4] for line in lines if " typ host" in line]


def join_response(tab: Tab) -> dict[str, Any] | None:
    for _, frame in tab.received_frames:
        with contextlib.suppress(ValueError):
            message = json.loads(frame)
            if message.get("type") == "ok" and "participant" in message.get("data", {}):
                data: dict[str, Any] = message["data"]
                return data
    return None


async def join_through_lan(teacher: Tab, student: Tab, link: str, name: str, password: str) -> str:
    """Join through the page; let the student in if the (default) waiting room holds them.
    Returns the participant id once the page is connected."""
    await open_join_page(student, link)
    await submit_join(student, name, password)
    deadline = time.monotonic() + 20
    while (response := join_response(student)) is None:
        assert time.monotonic() < deadline, f"{student.label}: no join response"
        await asyncio.sleep(0.05)
    if response.get("waiting"):
        knocking = response["participant"]["id"]
        knock = teacher.page.locator(f'[data-testid="knock"][data-id="{knocking}"]')
        # One teacher, one mouse: two clicks at once on one page race (one's scroll moves the
        # other's target under the pointer), which a person never does.
        async with TEACHER_CLICKS:
            await knock.get_by_test_id("knock-admit").click(timeout=20_000)
    await expect_connected(student.page)
    return await participant_id(student.page)


async def selected_pairs(tab: Tab, pcs: list[PcName]) -> dict[PcName, dict[str, Any]]:
    pairs: dict[PcName, dict[str, Any]] = {}
    for which in pcs:
        report = await ice_report(tab.page, which)
        selected = report.get("selected")
        assert selected and selected["state"] == "succeeded", f"{tab.label} {which}: {report}"
        pairs[which] = selected
    return pairs


async def test_newcomer_lesson_on_a_lan(
    request: pytest.FixtureRequest,
    lan: Lan,
    server: NamespacedServer,
    browsers: dict[str, Browser],
    playwright_driver: Playwright,
    artifacts: Path,
) -> None:
    # `make serve`'s defaults: HTTPS on every address, port 8443, a certificate naming the LAN
    # address, and the LAN address among the printed ones (what the newcomer types).
    log = server.text()
    assert f"Uvicorn running on https://0.0.0.0:{DEFAULT_PORT}" in log, log
    urls = server.printed_urls()
    lan_url = f"https://{SERVER}:{DEFAULT_PORT}/"
    assert lan_url in urls, f"`lophoc serve` printed {urls}, not {lan_url}:\n{log}"
    assert SERVER in certificate_addresses(server.cwd / "var" / "tls" / "self-signed.crt")
    base = lan_url.rstrip("/")

    pixel5 = phone(playwright_driver.devices["Pixel 5"])
    all_tabs = {host: Tabs(browser, request.node.name) for host, browser in browsers.items()}
    failed = True
    try:
        teacher = await all_tabs["laptop"].open("laptop-teacher", ignore_https_errors=True)
        anh = await all_tabs["phone"].open("phone-camera", ignore_https_errors=True, **pixel5)
        binh = await all_tabs["listener"].open(
            "phone-no-camera", ignore_https_errors=True, **pixel5
        )
        for tab in (teacher, anh, binh):
            await tab.page.add_init_script(RECORDER_JS)

        lesson = await create_lesson(teacher, base, "Khoa học 5A — trên mạng LAN", "mật-khẩu-5A")
        assert lesson.link.startswith(f"{base}/l/"), lesson.link
        teacher_id = await participant_id(teacher.page)

        async def join_and_watch(student: Tab, name: str) -> tuple[str, float]:
            tapped = time.monotonic()
            joined = await join_through_lan(teacher, student, lesson.link, name, lesson.password)
            await video_has_size(student.page, TEACHER_VIDEO, timeout=25)
            return joined, time.monotonic() - tapped

        (anh_id, anh_first), (binh_id, binh_first) = await asyncio.gather(
            join_and_watch(anh, "Phạm Minh Anh"), join_and_watch(binh, "Lê Văn Bình")
        )
        assert len({teacher_id, anh_id, binh_id}) == 3

        # Both phones see and hear the teacher; the teacher sees the phone with a camera.
        for student in (anh, binh):
            await enable_sound_if_offered(student.page)
        await asyncio.gather(
            *(
                wait_for_flows(
                    student.page,
                    [Flow(teacher_id, "video"), Flow(teacher_id, "audio", "bytesReceived")],
                    label=student.label,
                )
                for student in (anh, binh)
            )
        )
        await wait_for_flows(teacher.page, [Flow(anh_id, "video")], label="laptop")
        await video_has_size(
            teacher.page, f'[data-testid="tile"][data-participant="{anh_id}"] video'
        )

        # Every selected pair runs between the device's LAN address and the server's.
        both: list[PcName] = ["publish", "subscribe"]
        seen: dict[str, Any] = {}
        for tab, host, pcs in ((teacher, "laptop", both), (anh, "phone", both)):
            for which, pair in (await selected_pairs(tab, pcs)).items():
                where = f"{host} {which}: {pair}"
                assert pair["remote"]["address"] == SERVER, where
                assert pair["local"]["address"] == lan.address(host), where
                seen[f"{host} {which}"] = f"{describe(pair['local'])} -> {describe(pair['remote'])}"
            seen[f"{host} host candidates"] = await host_candidates(tab)

        # The phone without a camera offered only mDNS names (dropped by the server), and its
        # lesson runs on the candidate the server learnt from its checks.
        hidden = await host_candidates(binh)
        assert hidden and all(MDNS_NAME.match(a) for a in hidden), (
            f"the phone without a camera offered its address, not mDNS names: {hidden}"
        )
        assert lan.address("listener") not in json.dumps(binh.sent_frames)
        pair = (await selected_pairs(binh, ["subscribe"]))["subscribe"]
        assert pair["remote"]["address"] == SERVER, pair
        learnt = server.learnt()
        as_server_knows_it = f"{lan.address('listener')} {pair['local']['port']} typ prflx"
        assert any(line.endswith(as_server_knows_it) for line in learnt), (
            f"the server did not learn {as_server_knows_it}: {learnt}"
        )
        seen["listener subscribe"] = f"{describe(pair['local'])} -> {describe(pair['remote'])}"
        seen["listener host candidates"] = hidden
        seen["server learnt (prflx)"] = learnt

        print(
            f"\nfirst teacher frame after tapping join: {anh_first:.2f} s on the phone with a "
            f"camera, {binh_first:.2f} s on the one without"
        )
        print(json.dumps(seen, indent=2, ensure_ascii=False))
        for tab in (teacher, anh, binh):
            await tab.page.screenshot(path=str(artifacts / f"lan-{tab.label}.png"))
        failed = False
    finally:
        if failed:
            for tabs in all_tabs.values():
                print(await tabs.on_failure(artifacts))
            print(f"\n===== `lophoc serve` in {lan.ns('srv')} =====\n{server.text()[-30_000:]}")
        for tabs in all_tabs.values():
            await tabs.close()
