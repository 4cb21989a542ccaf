"""Launching Debian's Chromium with no look-ups beyond the machine it runs on.

The settings every browser test and the weak-link benchmark share; every one of them matters
(without them Chromium looks up Google hosts or sends ICE checks off loopback):

* Playwright passes its own ``--disable-features=<list>``, and Chromium honours only the *last*
  ``--disable-features`` switch. So Playwright's switch is removed with ``ignore_default_args``
  and one merged switch (Playwright's list + ``WebRtcHideLocalIpsWithMdns``) is given instead.
  Playwright's list is read at run time from its bundled driver, never copied here, and
  :func:`verify_command_line` checks the running browser's real command line
  (``chrome://version``) after launch: exactly one ``--disable-features``, the merged one.
* ``--host-resolver-rules`` resolves every name to nothing but localhost; a page is opened by an
  IP literal.
* Chromium is Debian's (``/usr/bin/chromium`` or ``$LOPHOC_CHROMIUM``), never a download.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import playwright
from playwright.async_api import Browser, Playwright

__all__ = [
    "BASE_ARGS",
    "CHROMIUM",
    "EXTRA_DISABLED_FEATURES",
    "HOST_RESOLVER_RULES",
    "LaunchSettingsError",
    "browser_command_line",
    "launch_chromium",
    "launch_options",
    "merged_disable_features",
    "playwright_default_switch",
    "playwright_disabled_features",
    "verify_command_line",
]

CHROMIUM = os.environ.get("LOPHOC_CHROMIUM", "/usr/bin/chromium")

EXTRA_DISABLED_FEATURES = ("WebRtcHideLocalIpsWithMdns",)
HOST_RESOLVER_RULES = (
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"
)
BASE_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    HOST_RESOLVER_RULES,
    "--force-fieldtrials=WebRTC-IPv6Default/Disabled/",
)

_DRIVER = Path(playwright.__file__).parent / "driver" / "package"
# How Playwright builds its switch (chromiumSwitches in the bundled driver):
#   disabledFeatures = [ "A", // comment
#                        "B", ... ].filter(Boolean);
#   "--disable-features=" + disabledFeatures.join(","),
_SWITCH_EXPRESSION = '"--disable-features=" + disabledFeatures.join(",")'
_LIST_PATTERN = re.compile(r"\bdisabledFeatures\s*=\s*\[(?P<body>.*?)\]\.filter\(Boolean\)", re.S)
_ITEM_PATTERN = re.compile(r'^"(?P<name>[A-Za-z0-9_]+)"$')


class LaunchSettingsError(RuntimeError):
    """Playwright's default ``--disable-features`` list could not be read or merged."""


def _driver_sources() -> list[Path]:
    candidates = [_DRIVER / "lib" / "coreBundle.js"]
    candidates += sorted(_DRIVER.glob("lib/**/chromiumSwitches.js"))
    return [p for p in candidates if p.is_file()]


def playwright_disabled_features() -> tuple[str, ...]:
    """Playwright's own ``--disable-features`` list, read from its bundled driver.

    Fails loudly (``LaunchSettingsError``) when the list is not found exactly once or holds
    anything but plain string literals (a conditional entry would make a static read wrong)."""
    found: list[tuple[Path, tuple[str, ...]]] = []
    for source in _driver_sources():
        text = source.read_text(encoding="utf-8")
        if _SWITCH_EXPRESSION not in text:
            continue
        matches = list(_LIST_PATTERN.finditer(text))
        if len(matches) != 1:
            raise LaunchSettingsError(
                f"{source}: expected one 'disabledFeatures = [...]' list, found {len(matches)}"
            )
        body = re.sub(r"//[^\n]*", "", matches[0].group("body"))
        items = [item.strip() for item in body.split(",") if item.strip()]
        names = []
        for item in items:
            m = _ITEM_PATTERN.match(item)
            if m is None:
                raise LaunchSettingsError(
                    f"{source}: Playwright's disabledFeatures holds {item!r}, not a plain "
                    "string: update tests/e2e/browser.py to read it"
                )
            names.append(m.group("name"))
        if not names:
            raise LaunchSettingsError(f"{source}: Playwright's disabledFeatures list is empty")
        found.append((source, tuple(names)))
    if not found:
        raise LaunchSettingsError(
            f"Playwright's default --disable-features switch not found under {_DRIVER} "
            f"(looked for {_SWITCH_EXPRESSION!r} in {[str(p) for p in _driver_sources()]})"
        )
    lists = {names for _, names in found}
    if len(lists) != 1:
        raise LaunchSettingsError(f"Playwright's driver holds different feature lists: {found}")
    return found[0][1]


def playwright_default_switch() -> str:
    """The exact ``--disable-features=...`` argument Playwright adds by default."""
    return "--disable-features=" + ",".join(playwright_disabled_features())


def merged_disable_features() -> str:
    features = list(playwright_disabled_features())
    features += [f for f in EXTRA_DISABLED_FEATURES if f not in features]
    return "--disable-features=" + ",".join(features)


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch`` (a fresh temporary profile)."""
    return {
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [*BASE_ARGS, merged_disable_features()],
        "ignore_default_args": [playwright_default_switch()],
    }


async def browser_command_line(browser: Browser) -> str:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto("chrome://version")
        return await page.inner_text("#command_line")
    finally:
        await context.close()


async def verify_command_line(browser: Browser) -> None:
    """The running browser got exactly one ``--disable-features`` (the merged one) and the
    loopback switches; raise ``LaunchSettingsError`` otherwise."""
    command_line = await browser_command_line(browser)
    switches = re.findall(r"(?:^|\s)(--disable-features=\S*)", command_line)
    expected = merged_disable_features()
    if switches != [expected]:
        raise LaunchSettingsError(
            f"Chromium got --disable-features switches {switches}, expected only [{expected!r}]."
            f" Command line: {command_line}"
        )
    for arg in BASE_ARGS:
        if arg not in command_line:
            raise LaunchSettingsError(
                f"{arg!r} missing from Chromium's command line: {command_line}"
            )


async def launch_chromium(pw: Playwright) -> Browser:
    browser = await pw.chromium.launch(**launch_options())
    try:
        await verify_command_line(browser)
    except BaseException:
        await browser.close()
        raise
    return browser
