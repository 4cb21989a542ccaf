"""The real benchmark against the real server: 2 students, 3 seconds (needs a working server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.loadtests.test_report import REQUIRED

ROOT = Path(__file__).resolve().parents[2]


def _benchmark(tmp_path: Path, *extra: str) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests",
            "--students",
            "2",
            "--seconds",
            "3",
            "--warmup",
            "1",
            "--json",
            "--cache-dir",
            str(tmp_path / "cache"),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # --json: the JSON line only
    report: dict[str, Any] = json.loads(lines[0])
    assert REQUIRED <= report.keys()
    assert report["students"] == 2
    assert report["connected"] == 2, result.stderr[-3000:]
    assert report["loss_max"] is not None
    assert report["server_cpu_per_s"] is not None
    assert report["latency_samples"] > 0
    assert report["loadgen_loop_lag_ms_p99"] is not None
    assert report["loadgen_loop_lag_ms_max"] >= report["loadgen_loop_lag_ms_p99"]
    # loopback: the server holds nothing back, whatever its estimate comes from
    assert report["downlink_states"] == {"ok": 2, "weak": 0, "audio_only": 0}
    assert [d["student"] for d in report["downlinks"]] == [1, 2]
    assert all(d["estimate_kbps"] is not None for d in report["downlinks"])
    return report


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_benchmark_two_students(tmp_path: Path) -> None:
    """Students answer transport-wide cc like browsers: the server's estimator runs on it."""
    report = _benchmark(tmp_path)
    assert report["transport_cc"] is True
    assert report["transport_feedback_pps"] > 2 * 8  # two students, one every 50–100 ms
    assert report["downlink_sources"] == {"twcc": 2}
    assert {d["source"] for d in report["downlinks"]} == {"twcc"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_benchmark_without_transport_cc(tmp_path: Path) -> None:
    """``--no-transport-cc``: aiortc's own REMB/receiver reports, as before."""
    report = _benchmark(tmp_path, "--no-transport-cc")
    assert report["transport_cc"] is False
    assert report["transport_feedback_pps"] == 0
    assert "twcc" not in report["downlink_sources"]
