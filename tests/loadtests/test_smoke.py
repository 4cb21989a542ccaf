"""The real benchmark against the real server: 2 students, 3 seconds (needs a working server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loadtests.test_report import REQUIRED

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_benchmark_two_students(tmp_path: Path) -> None:
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
    report = json.loads(lines[0])
    assert REQUIRED <= report.keys()
    assert report["students"] == 2
    assert report["connected"] == 2, result.stderr[-3000:]
    assert report["loss_max"] is not None
    assert report["server_cpu_per_s"] is not None
    assert report["latency_samples"] > 0
