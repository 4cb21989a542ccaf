"""What a student sees and hears, read from inside the real student page, and summed up.

:data:`MONITOR_JS` is an init script for the student's browser context. From page load it
keeps, in ``window.__wl``:

* every 100 ms a reading (``samples``): the subscribe peer connection's ``getStats()`` summed
  per kind over its ``inbound-rtp`` streams (W3C webrtc-stats names: ``framesDecoded``,
  ``freezeCount``, ``totalFreezesDuration``, ``packetsLost``, ``concealedSamples``,
  ``totalSamplesReceived``, …), the selected candidate pair's ``currentRoundTripTime`` and
  ``availableIncomingBitrate``, the connection state, the page's own connection chip, the
  student view's ``data-downlink`` attribute (``ok`` / ``weak`` / ``audio_only``; ``null`` when
  the page has none) and which notices are on screen (visible, inside the viewport, not empty);
* the time of every painted frame of the teacher's ``<video>``
  (``requestVideoFrameCallback``, ``paints``) — Chromium's ``freezeCount`` stays 0 when only
  one frame was ever painted, so the longest gap between painted frames is measured too.

:func:`summarise` turns the readings of one window into numbers. Counters are summed over
consecutive readings of the same peer connection (a reconnection starts new counters: it is
counted, not subtracted). An audio gap is a run of readings in which at least half of the
samples played were concealed (or none were played at all).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

__all__ = ["MONITOR_JS", "first_time", "summarise"]

VIDEO_COUNTERS = (
    "framesDecoded",
    "framesDropped",
    "freezeCount",
    "totalFreezesDuration",
    "packetsLost",
    "packetsReceived",
    "bytesReceived",
    "headerBytesReceived",
    "nackCount",
    "pliCount",
)
AUDIO_COUNTERS = (
    "concealedSamples",
    "silentConcealedSamples",
    "totalSamplesReceived",
    "concealmentEvents",
    "packetsLost",
    "packetsReceived",
    "bytesReceived",
    "headerBytesReceived",
    "totalAudioEnergy",
    "totalSamplesDuration",
)
NOTICES = ('[data-testid="downlink-notice"]', '[data-testid="notice"]')
MOSTLY_CONCEALED = 0.5
GAP_LISTED = 0.15
"""Audio gaps at least this long (s) are listed with their times (``audio_gaps``), so a
condition's gap can be lined up with what the server did then (its trace log)."""
LOSSES_LISTED = 200
"""Changes of the video's ``packetsLost`` listed with their times at most (``video_losses``;
``video_late`` counts the packets that arrived after a reading had counted them lost)."""

MONITOR_JS = (
    """
(() => {
  if (window.__wl) return;
  const VIDEO = __VIDEO__, AUDIO = __AUDIO__, NOTICES = __NOTICES__;
  const wl = window.__wl = {samples: [], paints: [], hooked: null, ids: new WeakMap(), n: 0};
  const onScreen = (el) => {
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
      && r.top < window.innerHeight && r.left < window.innerWidth
      && el.textContent.trim().length > 0;
  };
  const hook = () => {
    const v = document.querySelector('[data-testid="teacher-video"]');
    if (!v || v === wl.hooked || !v.requestVideoFrameCallback) return;
    wl.hooked = v;
    const painted = (now) => {
      if (wl.hooked !== v) return;
      wl.paints.push(now);
      v.requestVideoFrameCallback(painted);
    };
    v.requestVideoFrameCallback(painted);
  };
  let busy = false;
  const tick = async () => {
    hook();
    if (busy) return;
    busy = true;
    try {
      const t = performance.now();
      const view = document.querySelector('[data-testid="student-view"]');
      const chip = document.querySelector('[data-testid="connection-state"]');
      const notices = [];
      for (const selector of NOTICES) {
        for (const el of document.querySelectorAll(selector)) {
          if (onScreen(el)) notices.push({testid: el.dataset.testid, text: el.textContent.trim()});
        }
      }
      const sample = {
        t, notices, pc: null,
        downlink: view && view.hasAttribute('data-downlink') ? view.dataset.downlink : null,
        view: view ? onScreen(view) || view.checkVisibility() : false,
        chip: chip ? chip.dataset.state || null : null,
      };
      const pcs = window.lophoc && window.lophoc.pcs ? window.lophoc.pcs() : null;
      const pc = pcs ? pcs.subscribe : null;
      if (pc) {
        if (!wl.ids.has(pc)) wl.ids.set(pc, ++wl.n);
        const v = {}, a = {};
        for (const k of VIDEO) v[k] = 0;
        for (const k of AUDIO) a[k] = 0;
        let pairId = null;
        const report = await pc.getStats();
        report.forEach((s) => {
          if (s.type === 'inbound-rtp') {
            const into = s.kind === 'video' ? v : a;
            for (const k of (s.kind === 'video' ? VIDEO : AUDIO)) into[k] += s[k] || 0;
          } else if (s.type === 'transport' && s.selectedCandidatePairId) {
            pairId = s.selectedCandidatePairId;
          }
        });
        const pair = pairId ? report.get(pairId) : null;
        sample.pc = {
          id: wl.ids.get(pc), state: pc.connectionState, v, a,
          rtt: pair && pair.currentRoundTripTime !== undefined ? pair.currentRoundTripTime : null,
          abr: pair && pair.availableIncomingBitrate !== undefined
            ? pair.availableIncomingBitrate : null,
        };
      }
      wl.samples.push(sample);
    } catch (e) {
      wl.samples.push({t: performance.now(), error: String(e), pc: null, notices: []});
    } finally {
      busy = false;
    }
  };
  setInterval(tick, 100);
})();
""".replace("__VIDEO__", json.dumps(VIDEO_COUNTERS))
    .replace("__AUDIO__", json.dumps(AUDIO_COUNTERS))
    .replace("__NOTICES__", json.dumps(NOTICES))
)


def _delta(key: str, change: float) -> float:
    """A counter's change between two readings of one connection. ``packetsLost`` is RFC
    3550's cumulative loss, expected minus received: a packet that arrives late (repaired
    upstream, retransmitted, reordered) was counted lost at one reading and takes it back at a
    later one, so its changes are summed with their sign — what is still missing at the end is
    what was lost. Every other counter only grows."""
    return change if key == "packetsLost" else max(0.0, change)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def first_time(
    samples: Sequence[dict[str, Any]], since: float, downlink: str, until: float | None = None
) -> float | None:
    """Seconds from ``since`` (page ms) to the first reading whose ``data-downlink`` is
    ``downlink``; ``None`` if none (before ``until``)."""
    for s in samples:
        if s["t"] < since or (until is not None and s["t"] > until):
            continue
        if s.get("downlink") == downlink:
            return round((s["t"] - since) / 1000, 2)
    return None


def summarise(
    samples: Sequence[dict[str, Any]], paints: Sequence[float], start: float, end: float
) -> dict[str, Any]:
    """Numbers for the window ``[start, end]`` (page ``performance.now()`` ms)."""
    window = [s for s in samples if start <= s["t"] <= end]
    seconds = (end - start) / 1000
    video = dict.fromkeys(VIDEO_COUNTERS, 0.0)
    audio = dict.fromkeys(AUDIO_COUNTERS, 0.0)
    reconnects = 0
    gap = longest_gap = 0.0
    gap_start = 0.0
    gaps: list[list[float]] = []
    losses: list[list[float]] = []
    late = 0
    previous: dict[str, Any] | None = None
    previous_t: float | None = None
    last_id = None
    for s in window:
        pc = s.get("pc")
        if pc is not None and last_id is not None and pc["id"] != last_id:
            reconnects += 1
        if pc is not None:
            last_id = pc["id"]
        heard = False
        if pc is not None and previous is not None and previous["id"] == pc["id"]:
            for key in VIDEO_COUNTERS:
                video[key] += _delta(key, pc["v"][key] - previous["v"][key])
            lost = pc["v"]["packetsLost"] - previous["v"]["packetsLost"]
            if lost:
                if lost < 0:
                    late += -lost
                if len(losses) < LOSSES_LISTED:
                    losses.append([round((s["t"] - start) / 1000, 2), int(lost)])
            for key in AUDIO_COUNTERS:
                audio[key] += _delta(key, pc["a"][key] - previous["a"][key])
            played = pc["a"]["totalSamplesReceived"] - previous["a"]["totalSamplesReceived"]
            concealed = pc["a"]["concealedSamples"] - previous["a"]["concealedSamples"]
            heard = played > 0 and concealed < MOSTLY_CONCEALED * played
        if previous_t is not None:
            # no peer connection, a new one, or mostly concealed: nothing of the teacher heard
            if heard:
                if gap >= GAP_LISTED:
                    gaps.append([round((gap_start - start) / 1000, 2), round(gap, 2)])
                gap = 0.0
            else:
                if gap == 0.0:
                    gap_start = previous_t
                gap += (s["t"] - previous_t) / 1000
            longest_gap = max(longest_gap, gap)
        previous = pc
        previous_t = s["t"]
    if gap >= GAP_LISTED:
        gaps.append([round((gap_start - start) / 1000, 2), round(gap, 2)])
    painted = sorted(p for p in paints if start <= p <= end)
    edges = [start, *painted, end]
    paint_gap = max(b - a for a, b in itertools.pairwise(edges)) / 1000
    unhealthy = [
        s
        for s in window
        if s.get("pc") is None
        or s["pc"]["state"] != "connected"
        or (s.get("chip") not in (None, "connected"))
    ]
    rtts = [s["pc"]["rtt"] * 1000 for s in window if s.get("pc") and s["pc"]["rtt"] is not None]
    abrs = [s["pc"]["abr"] / 1000 for s in window if s.get("pc") and s["pc"]["abr"] is not None]
    played = audio["totalSamplesReceived"]
    rx_bytes = (
        video["bytesReceived"]
        + video["headerBytesReceived"]
        + audio["bytesReceived"]
        + audio["headerBytesReceived"]
    )
    downlinks = [s.get("downlink") for s in window]
    seen = sorted({d for d in downlinks if d is not None})
    return {
        "seconds": round(seconds, 2),
        "readings": len(window),
        "fps": round(video["framesDecoded"] / seconds, 2) if seconds > 0 else None,
        "painted_fps": round(len(painted) / seconds, 2) if seconds > 0 else None,
        "freezes": int(video["freezeCount"]),
        "freeze_s": round(video["totalFreezesDuration"], 2),
        "longest_paint_gap_s": round(paint_gap, 2),
        "audio_concealed_pct": round(100 * audio["concealedSamples"] / played, 2)
        if played > 0
        else None,
        "longest_audio_gap_s": round(longest_gap, 2),
        "audio_gaps": gaps,
        "audio_samples": int(played),
        "video_lost": max(0, int(video["packetsLost"])),
        "video_losses": losses,
        "video_late": int(late),
        "audio_lost": max(0, int(audio["packetsLost"])),
        "video_packets": int(video["packetsReceived"]),
        "audio_packets": int(audio["packetsReceived"]),
        "nacks": int(video["nackCount"]),
        "plis": int(video["pliCount"]),
        "rx_kbps": round(rx_bytes * 8 / seconds / 1000, 1) if seconds > 0 else None,
        "rtt_ms": _round(_mean(rtts), 1),
        "available_kbps": _round(_mean(abrs), 1),
        "dropped": bool(unhealthy) or reconnects > 0,
        "reconnects": reconnects,
        "unhealthy_readings": len(unhealthy),
        "states_seen": sorted(
            {s["pc"]["state"] if s.get("pc") else "no-pc" for s in window}
            | {f"page:{s['chip']}" for s in window if s.get("chip")}
        ),
        "downlink_seen": seen if seen else None,
        "audio_only_share": round(downlinks.count("audio_only") / len(downlinks), 3)
        if seen
        else None,
    }
