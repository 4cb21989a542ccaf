"""A student behind a firewall that drops all UDP still gets the lesson, through coturn over TCP.

Network namespaces on a private bridge (``loadtests/netem.py``'s guarded LAN, 10.79.0.0/24)
stand for the lophoc server (10.79.0.1), the school's TURN relay (10.79.0.2), the teacher's
laptop (10.79.0.3) and a student's phone (10.79.0.4). The phone's namespace drops every UDP
packet in and out (nftables, counted). coturn runs with the configuration lophoc ships
(docs/turnserver.conf: the secret, the lophoc server's address as the one allowed peer),
``lophoc serve`` with ``--turn-url turn:10.79.0.2:3478?transport=tcp`` and the secret file.

Pass criterion: the phone's Chromium joins, sees and hears the teacher, and its connections'
selected candidate pairs are relayed (local candidate type ``relay``) to the server's address;
the firewall did drop the phone's UDP (it tried); nothing left the namespaces (the guard's
counters stay 0).
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
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Playwright

from loadtests.netem import WeakLan, weak_link_unavailable_reason
from tests.coturn import shipped_config, stop, turnserver
from tests.e2e.browser import (
    BASE_ARGS,
    CHROMIUM,
    HOST_RESOLVER_RULES,
    Flow,
    ice_report,
    merged_disable_features,
    playwright_default_switch,
    video_has_size,
    wait_for_flows,
)
from tests.e2e.harness import REPO, Tabs
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

HOSTS = {"srv": "10.79.0.1", "relay": "10.79.0.2", "laptop": "10.79.0.3", "phone": "10.79.0.4"}
SERVER, RELAY = HOSTS["srv"], HOSTS["relay"]
PORT = 8443
TURN_PORT = 3478
SECRET = "the-school-relay-secret-for-this-test"
TEACHER_VIDEO = '[data-testid="teacher-video"]'


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeakLan]:
    reason = weak_link_unavailable_reason()
    if reason is not None:
        unavailable(f"the TURN test {reason}")
    turnserver()  # skip (or fail in CI) before building anything
    network = WeakLan(
        tmp_path_factory.mktemp("turn"),
        hosts=dict(HOSTS),
        prefix="lophoc-e2e-turn",
        router_address="10.79.0.254",
    )
    with network:
        network.block_udp("phone")
        yield network
        assert all(n == 0 for n in network.escaped().values()), network.escaped_to()


def listening(lan: WeakLan, host: str, port: int) -> bool:
    """Whether something in ``host`` listens on TCP ``port`` (``ss`` inside the namespace)."""
    result = subprocess.run(
        lan.command(host, "ss", "-Hltn", f"sport = :{port}"),
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(result.stdout.strip())


def _log(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def relay(lan: WeakLan, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Path]:
    workdir = tmp_path_factory.mktemp("coturn")
    config = workdir / "turnserver.conf"
    config.write_text(
        shipped_config(
            secret=SECRET, lophoc_address=SERVER, listen=RELAY, port=TURN_PORT, workdir=workdir
        )
    )
    process = subprocess.Popen(
        lan.command("relay", turnserver(), "-c", str(config)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        log = workdir / "turn.log"
        while not listening(lan, "relay", TURN_PORT):
            assert process.poll() is None, f"coturn exited:\n{_log(log)}"
            assert time.monotonic() < deadline, f"coturn did not listen:\n{_log(log)}"
            await asyncio.sleep(0.1)
        yield log
    finally:
        stop(process)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(
    lan: WeakLan, relay: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Path]:
    workdir = tmp_path_factory.mktemp("lophoc")
    secret = workdir / "turn.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    log_path = workdir / "serve.log"
    command = [
        *(sys.executable, "-m", "web.cli", "serve", "--host", SERVER, "--port", str(PORT)),
        *("--data-dir", str(workdir / "var"), "--ice-address", SERVER, "--ice-accept", lan.subnet),
        *("--waiting-room", "nobody", "--log-level", "info"),
        *("--turn-url", f"turn:{RELAY}:{TURN_PORT}?transport=tcp"),
        *("--turn-secret-file", str(secret)),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            lan.command("srv", *command),
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
        )
        try:
            deadline = time.monotonic() + 30
            while "Uvicorn running on" not in _log(log_path):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"`lophoc serve` did not start:\n{_log(log_path)}")
                await asyncio.sleep(0.1)
            yield log_path
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(process.wait, 10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait, 10)


def browser_args() -> list[str]:
    """Chromium on a LAN host: no name look-ups (the server and relay are IP literals), real
    host candidates (mDNS hiding off), fake camera and microphone allowed."""
    rules = HOST_RESOLVER_RULES + f" , EXCLUDE {SERVER} , EXCLUDE {RELAY}"
    dropped = (HOST_RESOLVER_RULES, "--allow-loopback-in-peer-connection")
    return [a for a in BASE_ARGS if a not in dropped] + [rules, merged_disable_features()]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browsers(
    playwright_driver: Playwright, lan: WeakLan
) -> AsyncIterator[dict[str, Browser]]:
    launched: dict[str, Browser] = {}
    try:
        for host in ("laptop", "phone"):
            launched[host] = await playwright_driver.chromium.launch(
                executable_path=str(lan.wrapper(host, CHROMIUM)),
                headless=True,
                args=browser_args(),
                ignore_default_args=[playwright_default_switch()],
            )
        yield launched
    finally:
        for browser in launched.values():
            with contextlib.suppress(Exception):
                await browser.close()


async def test_a_student_without_udp_gets_the_lesson_through_the_relay(
    request: pytest.FixtureRequest,
    lan: WeakLan,
    relay: Path,
    server: Path,
    browsers: dict[str, Browser],
    playwright_driver: Playwright,
    artifacts: Path,
) -> None:
    base = f"https://{SERVER}:{PORT}"
    tabs = {host: Tabs(browser, request.node.name) for host, browser in browsers.items()}
    failed = True
    try:
        teacher = await tabs["laptop"].open("laptop-teacher", ignore_https_errors=True)
        student = await tabs["phone"].open(
            "phone-no-udp", ignore_https_errors=True, **phone(playwright_driver.devices["Pixel 5"])
        )
        lesson = await create_lesson(teacher, base, "Tin học 6A — sau tường lửa", "mật-khẩu-6A")
        teacher_id = await participant_id(teacher.page)

        await open_join_page(student, lesson.link)
        await submit_join(student, "Nguyễn Thảo Vy", lesson.password)
        await expect_connected(student.page, timeout=40_000)
        joined = next(
            json.loads(frame)["data"]
            for _, frame in student.received_frames
            if '"ice_servers"' in frame and '"participant"' in frame
        )
        (ice_server,) = joined["ice_servers"]
        assert ice_server["urls"] == [f"turn:{RELAY}:{TURN_PORT}?transport=tcp"], ice_server
        assert re.fullmatch(r"\d+:p_\S+", ice_server["username"]), ice_server

        await video_has_size(student.page, TEACHER_VIDEO, timeout=40)
        await enable_sound_if_offered(student.page)
        await wait_for_flows(
            student.page,
            [Flow(teacher_id, "video"), Flow(teacher_id, "audio", "bytesReceived")],
            label=student.label,
        )
        pairs: dict[str, Any] = {}
        for which in ("subscribe", "publish"):
            report = await ice_report(student.page, which)  # type: ignore[arg-type]
            selected = report.get("selected")
            assert selected and selected["state"] == "succeeded", f"{which}: {report}"
            assert selected["local"]["candidateType"] == "relay", f"{which}: {report}"
            assert selected["remote"]["address"] == SERVER, f"{which}: {report}"
            pairs[which] = selected
        assert lan.udp_blocked("phone") > 0, "the phone never tried UDP: nothing was proved"
        print(json.dumps(pairs, indent=2))
        for tab in (teacher, student):
            await tab.page.screenshot(path=str(artifacts / f"turn-{tab.label}.png"))
        failed = False
    finally:
        if failed:
            for group in tabs.values():
                print(await group.on_failure(artifacts))
            print(f"\n===== lophoc serve =====\n{_log(server)[-20_000:]}")
            print(f"\n===== coturn =====\n{_log(relay)[-20_000:]}")
        for group in tabs.values():
            await group.close()
