"""The report: what each key means, computed from two snapshots."""

from __future__ import annotations

import json

import pytest

from loadtests.report import (
    Snapshot,
    StudentSnapshot,
    build_report,
    downlink_summary,
    format_table,
    report_json,
)

REQUIRED = {
    "students",
    "connected",
    "seconds",
    "server_cpu_per_s",
    "server_cpu_us_per_packet",
    "forwarded_pps",
    "rx_kbps_mean",
    "loss_mean",
    "loss_max",
    "join_ms_p50",
    "join_ms_p95",
    "latency_ms_p50",
    "latency_ms_p99",
    "loadgen_cpu_per_s",
}


def snapshots(forwarded: tuple[float, float] | None) -> tuple[Snapshot, Snapshot]:
    start = Snapshot(
        wall=10.0,
        loadgen_cpu=1.0,
        server_cpu=5.0,
        forwarded=None if forwarded is None else forwarded[0],
        published=100,
        students=[
            StudentSnapshot(expected=100, received=100, bytes=10_000, frames=10, video_received=80),
            StudentSnapshot(expected=100, received=100, bytes=10_000, frames=10, video_received=80),
            StudentSnapshot(),
        ],
    )
    end = Snapshot(
        wall=20.0,
        loadgen_cpu=3.0,
        server_cpu=6.5,
        forwarded=None if forwarded is None else forwarded[1],
        published=1600,
        students=[
            # 1500 expected, all received; 1 MB payload in 10 s = 800 kbit/s
            StudentSnapshot(1600, 1600, 1_010_000, 310, 1280),
            # 1500 expected, 15 lost
            StudentSnapshot(1600, 1585, 1_010_000, 310, 1265),
            StudentSnapshot(),  # never connected
        ],
    )
    return start, end


def make(forwarded: tuple[float, float] | None = (1000.0, 4000.0)) -> dict[str, object]:
    start, end = snapshots(forwarded)
    return build_report(
        students=3,
        seconds=10,
        warmup=2,
        start=start,
        end=end,
        connected=[True, True, False],
        join_ms=[100.0, 300.0, None],
        keyframe_ms=[150.0, None, None],
        latencies_s=[0.001, 0.002, 0.003],
        errors=["bad_password", "no video", "no video"],
        extra={"keyframe_requests": 2},
    )


def test_values() -> None:
    r = make()
    assert REQUIRED <= r.keys()
    assert r["students"] == 3
    assert r["connected"] == 2
    assert r["seconds"] == 10
    assert r["server_cpu_per_s"] == 0.15
    assert r["forwarded_pps"] == 300.0
    assert r["forwarded_source"] == "metrics"
    assert r["server_cpu_us_per_packet"] == pytest.approx(500.0)
    assert r["published_pps"] == 150.0
    assert r["rx_kbps_mean"] == 800.0
    assert r["video_fps_mean"] == 30.0
    assert r["loss_mean"] == pytest.approx(0.005)
    assert r["loss_max"] == pytest.approx(0.01)
    assert r["join_ms_p50"] == 200.0
    assert r["keyframe_ms_p50"] == 150.0
    assert r["latency_ms_p50"] == 2.0
    assert r["latency_samples"] == 3
    assert r["loadgen_cpu_per_s"] == 0.2
    assert r["errors"] == {"bad_password": 1, "no video": 2}
    assert r["keyframe_requests"] == 2


def test_without_metric_counts_at_students() -> None:
    r = make(forwarded=None)
    assert r["forwarded_source"] == "students"
    assert r["forwarded_pps"] == (1500 + 1485) / 10


def test_without_server_cpu() -> None:
    start, end = snapshots(None)
    start = Snapshot(**{**start.__dict__, "server_cpu": None})
    r = build_report(
        students=3,
        seconds=10,
        warmup=0,
        start=start,
        end=end,
        connected=[True, True, False],
        join_ms=[],
        keyframe_ms=[],
        latencies_s=[],
    )
    assert r["server_cpu_per_s"] is None
    assert r["server_cpu_us_per_packet"] is None
    assert r["latency_ms_p50"] is None
    assert r["join_ms_p95"] is None


def test_json_is_one_line_and_table_mentions_everything() -> None:
    r = make()
    line = report_json(r)
    assert "\n" not in line
    assert json.loads(line) == r
    table = format_table(r)
    assert "server CPU per forwarded packet" in table
    assert "bad_password ×1" in table


def test_downlinks_counted_by_state_and_held_back_video_is_called_out() -> None:
    downlinks = [
        {"student": 1, "estimate": 2_500_000, "source": "twcc", "state": "ok"},
        {"student": 2, "estimate": 400_000, "source": "twcc", "state": "weak"},
        {"student": 3, "estimate": 90_000, "source": "loss", "state": "audio_only"},
        {"student": 4, "error": "not_found"},
    ]
    summary = downlink_summary(downlinks)
    assert summary["downlink_states"] == {"ok": 1, "weak": 1, "audio_only": 1, "unknown": 1}
    assert summary["downlink_sources"] == {"twcc": 2, "loss": 1}
    assert summary["downlink_estimate_kbps_min"] == 90.0
    assert summary["downlink_estimate_kbps_p50"] == 400.0
    assert summary["downlink_estimate_kbps_max"] == 2500.0
    assert summary["downlinks"][0] == {
        "student": 1,
        "estimate_kbps": 2500.0,
        "source": "twcc",
        "state": "ok",
    }
    assert summary["downlinks"][3]["error"] == "not_found"
    table = format_table({**make(), **summary})
    assert "downlinks at the end: ok 1, weak 1, audio_only 1, unknown 1" in table
    assert "held back video from 2 student(s)" in table
    assert "no downlink figures for 1 student(s)" in table
    assert "2: 400.0 weak" in table and "4: — not_found" in table

    fine = downlink_summary([{"student": 1, "estimate": 3e6, "source": "twcc", "state": "ok"}])
    assert fine["downlink_states"] == {"ok": 1, "weak": 0, "audio_only": 0}
    assert "held back" not in format_table({**make(), **fine})
