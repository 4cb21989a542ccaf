"""Turn two snapshots (start and end of the measured window) into the report, and print it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests.stats import loss_fraction, mean, percentile

__all__ = [
    "DOWNLINK_STATES",
    "Snapshot",
    "StudentSnapshot",
    "build_report",
    "downlink_summary",
    "format_table",
    "report_json",
]

DOWNLINK_STATES = ("ok", "weak", "audio_only")
"""What the server may decide a subscriber's downlink carries (docs/protocol.md, ``link``)."""


@dataclass(frozen=True)
class StudentSnapshot:
    expected: int = 0
    """Packets expected so far from sequence numbers, all streams of the student."""
    received: int = 0
    bytes: int = 0
    """RTP payload bytes."""
    frames: int = 0
    """Video frames (packets with the marker bit on a video stream)."""
    video_received: int = 0


@dataclass(frozen=True)
class Snapshot:
    wall: float
    """``time.perf_counter()`` when taken."""
    loadgen_cpu: float
    server_cpu: float | None = None
    forwarded: float | None = None
    """``lophoc_rtp_forwarded_packets_total`` from ``/metrics``, when the server has it."""
    published: int = 0
    """RTP packets the teacher has sent."""
    students: Sequence[StudentSnapshot] = field(default_factory=tuple)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def build_report(
    *,
    students: int,
    seconds: float,
    warmup: float,
    start: Snapshot,
    end: Snapshot,
    connected: Sequence[bool],
    join_ms: Iterable[float | None],
    keyframe_ms: Iterable[float | None],
    latencies_s: Sequence[float],
    errors: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The benchmark's JSON report.

    Per-student means (``rx_kbps_mean``, ``video_fps_mean``, ``loss_*``) are over the connected
    students (those who received a complete video frame and video during the window); how many
    those are is ``connected``.
    """
    wall = end.wall - start.wall
    if wall <= 0:
        raise ValueError("empty measuring window")
    pairs = list(zip(start.students, end.students, strict=True))
    if len(connected) != len(pairs):
        raise ValueError("one connected flag per student")
    live = [
        (a, b)
        for (a, b), ok in zip(pairs, connected, strict=True)
        if ok and b.video_received > a.video_received
    ]
    received_total = sum(b.received - a.received for a, b in pairs)
    if start.forwarded is not None and end.forwarded is not None:
        forwarded = end.forwarded - start.forwarded
        forwarded_source = "metrics"
    else:
        forwarded = float(received_total)
        forwarded_source = "students"
    server_cpu = (
        end.server_cpu - start.server_cpu
        if start.server_cpu is not None and end.server_cpu is not None
        else None
    )
    losses = [
        loss
        for a, b in live
        if (loss := loss_fraction((a.expected, a.received), (b.expected, b.received))) is not None
    ]
    joins = [j for j in join_ms if j is not None]
    keys = [k for k in keyframe_ms if k is not None]
    latencies_ms = [x * 1000 for x in latencies_s]
    report: dict[str, Any] = {
        "students": students,
        "connected": len(live),
        "seconds": round(wall, 3),
        "warmup": warmup,
        "server_cpu_per_s": _round(None if server_cpu is None else server_cpu / wall, 4),
        "server_cpu_us_per_packet": _round(
            None if server_cpu is None or forwarded <= 0 else server_cpu * 1e6 / forwarded, 2
        ),
        "forwarded_pps": round(forwarded / wall, 1),
        "forwarded_source": forwarded_source,
        "published_pps": round((end.published - start.published) / wall, 1),
        "rx_kbps_mean": _round(mean((b.bytes - a.bytes) * 8 / wall / 1000 for a, b in live), 1),
        "video_fps_mean": _round(mean((b.frames - a.frames) / wall for a, b in live), 2),
        "loss_mean": _round(mean(losses), 5),
        "loss_max": _round(max(losses) if losses else None, 5),
        "join_ms_p50": _round(percentile(joins, 50), 1),
        "join_ms_p95": _round(percentile(joins, 95), 1),
        "keyframe_ms_p50": _round(percentile(keys, 50), 1),
        "keyframe_ms_p95": _round(percentile(keys, 95), 1),
        "latency_ms_p50": _round(percentile(latencies_ms, 50), 3),
        "latency_ms_p99": _round(percentile(latencies_ms, 99), 3),
        "latency_samples": len(latencies_ms),
        "loadgen_cpu_per_s": round((end.loadgen_cpu - start.loadgen_cpu) / wall, 4),
        "errors": dict(Counter(errors)),
    }
    if extra:
        report.update(extra)
    return report


def downlink_summary(downlinks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The report's keys for the server's downlink estimates at the end of the window.

    ``downlinks`` holds one entry per student: ``student`` (its number) and what the staff
    ``stats`` request answered (``estimate`` in bit/s, ``source``, ``state``, …) or ``error``.
    On loopback every student should be ``ok``: anything else means the server held back
    video it had the bandwidth for, which the table then says in so many words.
    """
    states: Counter[str] = Counter({state: 0 for state in DOWNLINK_STATES})
    sources: Counter[str] = Counter()
    estimates: list[float] = []
    per_student = []
    for d in downlinks:
        estimate = d.get("estimate")
        kbps = round(estimate / 1000, 1) if isinstance(estimate, int | float) else None
        if kbps is not None:
            estimates.append(kbps)
        if "error" in d:
            states["unknown"] += 1
        else:
            states[str(d.get("state"))] += 1
            sources[str(d.get("source"))] += 1
        per_student.append(
            {
                "student": d.get("student"),
                "estimate_kbps": kbps,
                "source": d.get("source"),
                "state": d.get("state"),
                **({"error": d["error"]} if "error" in d else {}),
            }
        )
    return {
        "downlink_states": dict(states),
        "downlink_sources": dict(sources),
        "downlink_estimate_kbps_min": min(estimates) if estimates else None,
        "downlink_estimate_kbps_p50": _round(percentile(estimates, 50), 1),
        "downlink_estimate_kbps_max": max(estimates) if estimates else None,
        "downlinks": per_student,
    }


def report_json(report: dict[str, Any]) -> str:
    """One line, stable key order (the last line of the output)."""
    return json.dumps(report, ensure_ascii=False, separators=(", ", ": "))


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("students", "students", ""),
    ("connected", "connected (got video)", ""),
    ("seconds", "measured window", "s"),
    ("server_cpu_per_s", "server CPU", "CPU-s/s"),
    ("server_cpu_us_per_packet", "server CPU per forwarded packet", "µs"),
    ("forwarded_pps", "forwarded packets", "pkt/s"),
    ("published_pps", "published packets", "pkt/s"),
    ("rx_kbps_mean", "received per student (payload)", "kbit/s"),
    ("video_fps_mean", "video frames per student", "fps"),
    ("loss_mean", "loss, mean of students", ""),
    ("loss_max", "loss, worst student", ""),
    ("join_ms_p50", "join → first frame p50", "ms"),
    ("join_ms_p95", "join → first frame p95", "ms"),
    ("keyframe_ms_p50", "join → first keyframe p50", "ms"),
    ("keyframe_ms_p95", "join → first keyframe p95", "ms"),
    ("latency_ms_p50", "added latency p50", "ms"),
    ("latency_ms_p99", "added latency p99", "ms"),
    ("loadgen_cpu_per_s", "load generator CPU", "CPU-s/s"),
    ("loadgen_loop_lag_ms_p99", "load generator loop lag p99", "ms"),
    ("loadgen_loop_lag_ms_max", "load generator loop lag, worst", "ms"),
    ("transport_feedback_pps", "transport-wide feedback sent", "pkt/s"),
    ("downlink_estimate_kbps_min", "server's downlink estimate, lowest", "kbit/s"),
    ("downlink_estimate_kbps_p50", "server's downlink estimate, median", "kbit/s"),
    ("downlink_estimate_kbps_max", "server's downlink estimate, highest", "kbit/s"),
)


def format_table(report: dict[str, Any]) -> str:
    lines = []
    width = max(len(label) for _, label, _ in _ROWS)
    for key, label, unit in _ROWS:
        value = report.get(key)
        shown = "—" if value is None else str(value)
        lines.append(f"{label:<{width}}  {shown:>12} {unit}".rstrip())
    states = report.get("downlink_states")
    if states:
        lines.append(
            "downlinks at the end: "
            + ", ".join(f"{k} {v}" for k, v in states.items())
            + " (sources: "
            + ", ".join(f"{k} {v}" for k, v in (report.get("downlink_sources") or {}).items())
            + ")"
        )
        held = sum(v for k, v in states.items() if k not in ("ok", "unknown"))
        if held:
            lines.append(
                f"WARNING: the server held back video from {held} student(s) on loopback"
                " (weak or audio_only)"
            )
        if states.get("unknown"):
            lines.append(f"(no downlink figures for {states['unknown']} student(s))")
    per_student = report.get("downlinks")
    if per_student:
        cells = [
            f"{d.get('student')}: {'—' if d.get('estimate_kbps') is None else d['estimate_kbps']}"
            f" {d.get('state') or d.get('error') or '?'}"
            for d in per_student
        ]
        lines.append("estimate per student (kbit/s, state):")
        for i in range(0, len(cells), 6):
            lines.append("  " + "   ".join(cells[i : i + 6]))
    if report.get("forwarded_source") == "students":
        lines.append("(forwarded packets counted at the students: the server has no metric)")
    if report.get("errors"):
        lines.append("errors: " + ", ".join(f"{k} ×{v}" for k, v in report["errors"].items()))
    return "\n".join(lines)
