"""Fixtures for the real-browser tests: one server process and one Chromium per module, fresh
browser contexts per test.

Without Chromium (``/usr/bin/chromium``, or ``$LOPHOC_CHROMIUM``) every test here is skipped —
unless ``$CI`` is set: CI must run them for real, so there they fail instead.

Each test module declares ``pytestmark = [pytest.mark.browser, pytest.mark.slow,
pytest.mark.asyncio(loop_scope="module")]``: the module-wide browser and server live in the
module's event loop, so the tests must run in it too.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Playwright, async_playwright, expect

from tests.e2e.browser import CHROMIUM, launch_chromium
from tests.e2e.harness import LophocServer, Tabs, artifacts_dir
from tests.e2e.pages import TIMEOUT
from tests.unavailable import unavailable

expect.set_options(timeout=TIMEOUT)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


@pytest.fixture(scope="module", autouse=True)
def _require_chromium() -> None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return
    unavailable(
        f"Chromium not found at {CHROMIUM} (install Debian's chromium or set LOPHOC_CHROMIUM)"
    )


@pytest.fixture(scope="session")
def artifacts() -> Path:
    return artifacts_dir()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lophoc(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LophocServer]:
    server = LophocServer(tmp_path_factory.mktemp("lophoc") / "data")
    try:
        await server.start()
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright_driver() -> AsyncIterator[Playwright]:
    async with async_playwright() as pw:
        yield pw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(playwright_driver: Playwright) -> AsyncIterator[Browser]:
    chromium = await launch_chromium(playwright_driver)
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def tabs(
    request: pytest.FixtureRequest, browser: Browser, lophoc: LophocServer, artifacts: Path
) -> AsyncIterator[Tabs]:
    """Browser contexts for one test, closed afterwards. When the test fails: a screenshot of
    every page, the pages' console logs and the server's log during the test are printed."""
    log_start = lophoc.log_size()
    opened = Tabs(browser, request.node.name)
    opened.clear_failure_screenshots(artifacts)
    try:
        yield opened
    finally:
        if _failed(request):
            pages = await opened.on_failure(artifacts)
            print(f"\n===== pages (screenshots in {artifacts}) =====\n{pages}")
            print(f"\n===== server log during the test =====\n{lophoc.failure_log(log_start)}")
            print(f"\n===== server counters =====\n{await lophoc.metrics()}")
        await opened.close()
