"""Launching Debian's Chromium on loopback only, and reading WebRTC statistics from a page.

The launch settings (``loadtests/chromium.py``, shared with the weak-link benchmark) are the ones
every browser test needs: Playwright's ``--disable-features`` list merged with
``WebRtcHideLocalIpsWithMdns`` into one switch, no name look-ups, fake devices.

The statistics helpers find whose media an ``inbound-rtp`` stream carries from the remote SDP:
the protocol puts the publishing participant's id in ``a=msid`` (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

from playwright.async_api import Page
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from loadtests.chromium import (
    BASE_ARGS,
    CHROMIUM,
    EXTRA_DISABLED_FEATURES,
    HOST_RESOLVER_RULES,
    LaunchSettingsError,
    browser_command_line,
    launch_chromium,
    launch_options,
    merged_disable_features,
    playwright_default_switch,
    playwright_disabled_features,
    verify_command_line,
)

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

# --------------------------------------------------------------------------------------------
# WebRTC statistics, read from the page through the debug handle window.lophoc.pcs()

PcName = Literal["publish", "subscribe"]
Metric = Literal["framesDecoded", "bytesReceived", "packetsReceived"]

# Returns {pcId, at, inbound: [...], owners: {mid: participant}} or {error}.
_INBOUND_JS = """
async (which) => {
  const handle = window.lophoc;
  if (!handle || typeof handle.pcs !== 'function') return {error: 'window.lophoc.pcs() missing'};
  const pcs = handle.pcs();
  const pc = pcs ? pcs[which] : null;
  if (!pc) return {error: `no ${which} peer connection`};
  window.__e2ePcIds = window.__e2ePcIds || new WeakMap();
  window.__e2ePcCount = window.__e2ePcCount || 0;
  if (!window.__e2ePcIds.has(pc)) window.__e2ePcIds.set(pc, ++window.__e2ePcCount);
  const owners = {};
  const sdp = pc.remoteDescription ? pc.remoteDescription.sdp : '';
  for (const section of sdp.split(/\\r?\\nm=/).slice(1)) {
    let mid = null, owner = null;
    for (const line of section.split(/\\r?\\n/)) {
      if (line.startsWith('a=mid:')) mid = line.slice(6).trim();
      else if (line.startsWith('a=msid:')) owner = line.slice(7).trim().split(' ')[0];
      else if (owner === null && / msid:/.test(line)) owner = line.split(' msid:')[1].split(' ')[0];
    }
    if (mid !== null && owner !== null) owners[mid] = owner;
  }
  const report = await pc.getStats();
  const inbound = [];
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    const mid = s.mid === undefined ? null : String(s.mid);
    inbound.push({
      kind: s.kind, mid, ssrc: s.ssrc,
      participant: mid !== null && mid in owners ? owners[mid] : null,
      framesDecoded: s.framesDecoded || 0, bytesReceived: s.bytesReceived || 0,
      packetsReceived: s.packetsReceived || 0, frameWidth: s.frameWidth || 0,
    });
  });
  return {pcId: window.__e2ePcIds.get(pc), at: performance.now(), owners,
          connectionState: pc.connectionState, inbound};
}
"""

# The selected ICE candidate pair of one peer connection, plus every candidate it knows.
_ICE_JS = """
async (which) => {
  const pcs = window.lophoc && window.lophoc.pcs ? window.lophoc.pcs() : null;
  const pc = pcs ? pcs[which] : null;
  if (!pc) return {error: `no ${which} peer connection`};
  const report = await pc.getStats();
  let pairId = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const candidate = (c) => c ? {address: c.address ?? c.ip ?? null, port: c.port,
    protocol: c.protocol, candidateType: c.candidateType} : null;
  const local = [], remote = [];
  report.forEach((s) => {
    if (s.type === 'local-candidate') local.push(candidate(s));
    if (s.type === 'remote-candidate') remote.push(candidate(s));
  });
  const pair = pairId ? report.get(pairId) : null;
  return {
    connectionState: pc.connectionState,
    selected: pair ? {
      state: pair.state, bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
      local: candidate(report.get(pair.localCandidateId)),
      remote: candidate(report.get(pair.remoteCandidateId)),
    } : null,
    localCandidates: local, remoteCandidates: remote,
  };
}
"""


@dataclass(frozen=True)
class Inbound:
    kind: str
    mid: str | None
    participant: str | None
    framesDecoded: int  # getStats() names
    bytesReceived: int
    packetsReceived: int
    frameWidth: int


@dataclass(frozen=True)
class StatsSample:
    """One ``getStats()`` reading of one peer connection of one page."""

    pc_id: int | None
    error: str | None
    inbound: tuple[Inbound, ...]
    owners: dict[str, str]
    connection_state: str | None

    def total(self, participant: str, kind: str, metric: Metric) -> int:
        return sum(
            int(getattr(s, metric))
            for s in self.inbound
            if s.participant == participant and s.kind == kind
        )

    def describe(self) -> str:
        if self.error:
            return f"<{self.error}>"
        rows = ", ".join(
            f"{s.kind}[mid={s.mid} from={s.participant}] frames={s.framesDecoded} "
            f"bytes={s.bytesReceived} w={s.frameWidth}"
            for s in self.inbound
        )
        return f"pc#{self.pc_id} {self.connection_state}: {rows or 'no inbound-rtp'}"


async def inbound_stats(page: Page, which: PcName = "subscribe") -> StatsSample:
    raw = await page.evaluate(_INBOUND_JS, which)
    if raw.get("error"):
        return StatsSample(None, str(raw["error"]), (), {}, None)
    inbound = tuple(
        Inbound(
            kind=str(s["kind"]),
            mid=s["mid"],
            participant=s["participant"],
            framesDecoded=int(s["framesDecoded"]),
            bytesReceived=int(s["bytesReceived"]),
            packetsReceived=int(s["packetsReceived"]),
            frameWidth=int(s["frameWidth"]),
        )
        for s in raw["inbound"]
    )
    return StatsSample(int(raw["pcId"]), None, inbound, dict(raw["owners"]), raw["connectionState"])


@dataclass(frozen=True)
class Flow:
    """What should happen to one participant's media, as received on one peer connection,
    during a sampling window: ``metric`` keeps increasing (``moving``) or does not change."""

    participant: str
    kind: Literal["audio", "video"]
    metric: Metric = "framesDecoded"
    moving: bool = True

    def describe(self) -> str:
        verb = "increases" if self.moving else "stays still"
        return f"{self.kind} {self.metric} from {self.participant} {verb}"


SAMPLE_INTERVAL = 1.2  # seconds between two getStats() readings (at least 1 s)


async def wait_for_flows(
    page: Page,
    flows: list[Flow],
    *,
    which: PcName = "subscribe",
    timeout: float = 20.0,
    label: str = "",
    not_pc: int | None = None,
) -> tuple[StatsSample, StatsSample]:
    """Sample ``getStats()`` twice, ``SAMPLE_INTERVAL`` apart, until every flow holds within one
    window (the same peer connection in both readings; with ``not_pc``, not that one).
    Raises AssertionError with the last readings after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: tuple[StatsSample, StatsSample] | None = None
    failing: list[str] = []
    while True:
        before = await inbound_stats(page, which)
        await asyncio.sleep(SAMPLE_INTERVAL)
        after = await inbound_stats(page, which)
        last = (before, after)
        failing = []
        if before.error or after.error or before.pc_id != after.pc_id:
            failing.append("no stable peer connection")
        elif not_pc is not None and after.pc_id == not_pc:
            failing.append(f"still the old {which} peer connection #{not_pc}")
        else:
            for flow in flows:
                a = before.total(flow.participant, flow.kind, flow.metric)
                b = after.total(flow.participant, flow.kind, flow.metric)
                if (b > a) != flow.moving:
                    failing.append(f"{flow.describe()}: {a} -> {b}")
        if not failing:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{label} {which} PC: within {timeout:.0f} s no {SAMPLE_INTERVAL} s window where "
                f"{'; '.join(f.describe() for f in flows)}. Last window failed: {failing}.\n"
                f"  before: {last[0].describe()}\n  after:  {last[1].describe()}"
            )


async def ice_report(page: Page, which: PcName) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(_ICE_JS, which)
    return result


_VIDEO_STATE_JS = """
(sel) => {
  const v = document.querySelector(sel);
  if (!v) return {found: false};
  const src = v.srcObject;
  return {
    found: true, visible: v.checkVisibility(), videoWidth: v.videoWidth,
    readyState: v.readyState, paused: v.paused, muted: v.muted, currentTime: v.currentTime,
    error: v.error ? v.error.message : null,
    srcObject: src ? {id: src.id, tracks: src.getTracks().map((t) => ({
      kind: t.kind, id: t.id, readyState: t.readyState, muted: t.muted, enabled: t.enabled,
    }))} : null,
  };
}
"""


async def video_state(page: Page, selector: str) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(_VIDEO_STATE_JS, selector)
    return state


async def _wait_video(page: Page, selector: str, condition: str, timeout: float, what: str) -> None:
    try:
        await page.wait_for_function(condition, arg=selector, polling=250, timeout=timeout * 1000)
    except PlaywrightTimeoutError:
        stats = await inbound_stats(page, "subscribe")
        raise AssertionError(
            f"{selector} {what} within {timeout:.0f} s on {page.url}:\n"
            f"  <video>: {await video_state(page, selector)}\n"
            f"  subscribe PC: {stats.describe()}"
        ) from None


async def video_has_size(page: Page, selector: str, timeout: float = 20.0) -> None:
    """The ``<video>`` decoded at least its first frame (``videoWidth > 0``)."""
    await _wait_video(
        page,
        selector,
        "(sel) => { const v = document.querySelector(sel); return !!v && v.videoWidth > 0; }",
        timeout,
        "has no picture (videoWidth 0)",
    )


async def video_advancing(page: Page, selector: str, timeout: float = 20.0) -> None:
    """The ``<video>`` is not paused and its ``currentTime`` advances (it really plays)."""
    await _wait_video(
        page,
        selector,
        """(sel) => {
             const v = document.querySelector(sel);
             if (!v) return false;
             const prev = v.__e2eTime;
             v.__e2eTime = v.currentTime;
             return prev !== undefined && v.currentTime > prev && !v.paused;
           }""",
        timeout,
        "does not play (paused, or currentTime does not advance)",
    )
