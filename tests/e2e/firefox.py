"""Debian's Firefox ESR, driven by Mozilla's ``marionette-driver`` (no browser download, no
geckodriver), on loopback only.

Settings that keep it there and let WebRTC work on 127.0.0.1:

* ``MOZ_DISABLE_NONLOCAL_CONNECTIONS=1`` and ``network.dns.forceResolve=127.0.0.1``, DNS over
  HTTPS off (``network.trr.mode=5``), and telemetry, studies, safe browsing, captive-portal and
  connectivity checks, updates and push off: Firefox otherwise calls Mozilla's hosts at start;
* fake camera and microphone (``media.navigator.streams.fake``), no permission prompt;
* ICE on loopback (``media.peerconnection.ice.loopback``), real host addresses (no mDNS
  obfuscation), no TCP candidates;
* a persistent camera and microphone permission for the page's origin, granted from the
  browser's chrome context: without it Firefox gathers only its default route's addresses,
  never 127.0.0.1, and ICE fails.

Marionette is synchronous: :class:`Firefox`'s methods are called through ``asyncio.to_thread``
by the tests. A page's objects are read with ``execute_script`` in the content context.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.unavailable import unavailable

FIREFOX = os.environ.get("LOPHOC_FIREFOX", "/usr/lib/firefox-esr/firefox-esr")

PREFS: dict[str, Any] = {
    "network.dns.forceResolve": "127.0.0.1",
    "network.trr.mode": 5,
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.default_address_only": False,
    "media.peerconnection.ice.tcp": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "app.update.enabled": False,
    "app.update.auto": False,
    "dom.push.enabled": False,
    "extensions.update.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.startup.page": 0,
    "intl.accept_languages": "vi-VN, vi",
}

_GRANT_JS = """
const [origin] = arguments;
const principal = Services.scriptSecurityManager.createContentPrincipalFromOrigin(origin);
for (const type of ["camera", "microphone"]) {
  Services.perms.addFromPrincipal(principal, type, Services.perms.ALLOW_ACTION);
}
"""


def firefox_unavailable_reason() -> str | None:
    if not Path(FIREFOX).is_file():
        return f"Firefox ESR is not installed at {FIREFOX} (apt-get install firefox-esr)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import marionette_driver  # noqa: F401
    except ImportError:
        return "marionette-driver is not installed (pip install marionette-driver)"
    return None


class Firefox:
    """One headless Firefox ESR with a fresh profile, driven over Marionette."""

    def __init__(self) -> None:
        reason = firefox_unavailable_reason()
        if reason is not None:
            unavailable(reason)
        with warnings.catch_warnings():
            # mozinfo, imported by marionette-driver, calls a deprecated ``distro`` function.
            warnings.simplefilter("ignore", DeprecationWarning)
            from marionette_driver.marionette import Marionette

        self.profile = Path(tempfile.mkdtemp(prefix="lophoc-firefox-"))
        (self.profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        )
        os.environ["MOZ_DISABLE_NONLOCAL_CONNECTIONS"] = "1"
        with warnings.catch_warnings():
            # marionette-driver polls the port with sockets it does not close: their
            # ResourceWarning is known and harmless here, and they are collected at once.
            warnings.simplefilter("ignore", ResourceWarning)
            self.client = Marionette(
                host="127.0.0.1",
                port=free_port(),
                bin=FIREFOX,
                profile=str(self.profile),
                headless=True,
                app_args=["-no-remote"],
                startup_timeout=60,
                # Firefox's own log, kept with the profile (and gone with it), not in the
                # working directory.
                gecko_log=str(self.profile / "gecko.log"),
            )
            self.client.start_session()
            gc.collect()
        self.client.set_window_rect(width=1280, height=900)

    def grant_media(self, origin: str) -> None:
        """The camera and microphone permission for ``origin`` (see the module docstring)."""
        with self.client.using_context("chrome"):
            self.client.execute_script(_GRANT_JS, script_args=[origin])

    def open(self, url: str) -> None:
        self.client.navigate(url)

    def run(self, script: str, *args: Any) -> Any:
        """``script`` (a function body; ``arguments`` holds ``args``) in the page."""
        return self.client.execute_script(script, script_args=list(args), sandbox=None)

    def wait(self, script: str, *args: Any, timeout: float = 20.0, what: str = "") -> Any:
        """Run ``script`` until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = self.run(script, *args)
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"Firefox: {what or script} not within {timeout} s (last: {last!r})")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(self.client.screenshot(format="binary"))

    def close(self) -> None:
        try:
            self.client.delete_session()
        finally:
            self.client.cleanup()
            shutil.rmtree(self.profile, ignore_errors=True)
