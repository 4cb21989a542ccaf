"""The weak-link benchmark's arithmetic: condition names, and readings turned into numbers."""

from __future__ import annotations

from typing import Any

import pytest

from loadtests.netem import Shaping
from loadtests.studentview import AUDIO_COUNTERS, VIDEO_COUNTERS, first_time, summarise
from loadtests.weaklink import CONDITIONS, format_table, parse_condition


def test_condition_names_say_what_they_do() -> None:
    assert parse_condition("unlimited").student == Shaping()
    assert parse_condition("300k+5%+200ms").student == Shaping(300, 5.0, 200.0)
    assert parse_condition("1m+5%").student == Shaping(1000, 5.0, 0.0)
    assert parse_condition("1.5m").student.rate_kbit == 1500
    teacher = parse_condition("teacher-10%")
    assert teacher.teacher_uplink_loss == 10.0 and teacher.student == Shaping()
    assert [c.name for c in CONDITIONS] == [
        "unlimited",
        "300k",
        "300k+5%",
        "150k",
        "300k+200ms",
        "300k+5%+200ms",
        "1m+5%",
        "teacher-10%",
    ]
    assert parse_condition("300k+200ms").describe() == "300 kbit/s, +200 ms RTT"
    with pytest.raises(ValueError):
        parse_condition("300kbps")
    with pytest.raises(ValueError):
        Shaping(loss_percent=100)


def reading(
    t: float,
    frames: int,
    played: int,
    concealed: int,
    *,
    pc: int = 1,
    downlink: str | None = None,
    state: str = "connected",
) -> dict[str, Any]:
    video = dict.fromkeys(VIDEO_COUNTERS, 0)
    audio = dict.fromkeys(AUDIO_COUNTERS, 0)
    video.update(framesDecoded=frames, bytesReceived=frames * 1000)
    audio.update(totalSamplesReceived=played, concealedSamples=concealed)
    return {
        "t": t,
        "downlink": downlink,
        "notices": [],
        "chip": "connected",
        "pc": {"id": pc, "state": state, "v": video, "a": audio, "rtt": 0.2, "abr": 300_000},
    }


def test_a_window_of_readings() -> None:
    # 4 s at 100 ms: 20 fps, 48 kHz audio; from 1.0 s to 1.5 s everything played is concealed.
    samples = []
    concealed = 0
    for i in range(41):
        t = 1000.0 + i * 100
        if 11 <= i <= 15:
            concealed += 4800
        samples.append(
            reading(t, 2 * i, 4800 * i, concealed, downlink="audio_only" if i >= 20 else "ok")
        )
    # frames painted every 50 ms, none after the one at 2.0 s until 3.2 s
    paints = [1000.0 + 50 * k for k in range(81) if not 2000 < 1000 + 50 * k < 3200]
    result = summarise(samples, paints, 1000.0, 5000.0)
    assert result["seconds"] == 4.0
    assert result["fps"] == 20.0
    assert result["longest_paint_gap_s"] == 1.2
    assert result["audio_concealed_pct"] == pytest.approx(100 * 5 / 40, abs=0.01)
    assert result["longest_audio_gap_s"] == 0.5
    assert result["rx_kbps"] == 80 * 1000 * 8 / 4 / 1000
    assert result["rtt_ms"] == 200.0 and result["available_kbps"] == 300.0
    assert result["dropped"] is False and result["reconnects"] == 0
    assert result["downlink_seen"] == ["audio_only", "ok"]
    assert first_time(samples, 1000.0, "audio_only") == 2.0
    assert first_time(samples, 1000.0, "weak") is None


def test_a_reconnection_is_counted_not_subtracted() -> None:
    samples = [reading(0, 100, 48_000, 0), reading(100, 102, 52_800, 0)]
    # a new peer connection starts its counters at 0
    samples += [reading(200, 0, 0, 0, pc=2), reading(300, 2, 4800, 0, pc=2)]
    result = summarise(samples, [], 0, 300)
    assert result["reconnects"] == 1 and result["dropped"] is True
    assert result["longest_audio_gap_s"] == 0.1  # the reading with the new connection
    assert result["fps"] == pytest.approx(4 / 0.3, abs=0.01)
    assert result["longest_paint_gap_s"] == 0.3
    assert result["downlink_seen"] is None and result["audio_only_share"] is None


def test_time_without_a_peer_connection_is_an_audio_gap() -> None:
    samples = [reading(0, 100, 48_000, 0), reading(100, 102, 52_800, 0)]
    samples += [{"t": t, "pc": None, "notices": [], "chip": "reconnecting"} for t in (200, 300)]
    samples += [reading(400, 0, 0, 0, pc=2), reading(500, 2, 4800, 0, pc=2)]
    result = summarise(samples, [], 0, 500)
    assert result["reconnects"] == 1 and result["unhealthy_readings"] == 2
    assert result["longest_audio_gap_s"] == 0.3
    assert result["states_seen"] == ["connected", "no-pc", "page:connected", "page:reconnecting"]


def test_the_table_has_a_row_per_condition() -> None:
    row = summarise([reading(0, 0, 0, 0), reading(1000, 20, 48_000, 480)], [], 0, 1000)
    row.update(condition="150k", server_kbps=140.0, to_audio_only_s=None)
    table = format_table(
        {"seconds_per_condition": 1.0, "guard_escaped": {"ns": 0}, "conditions": [row]}
    )
    lines = table.splitlines()
    assert "condition" in lines[0] and "conc %" in lines[0]
    assert lines[2].split()[0] == "150k" and "1.0" in lines[2].split()
    assert "GUARD" not in table


def test_a_late_packet_is_not_lost_and_gaps_and_losses_have_times() -> None:
    """``packetsLost`` (expected minus received) goes up when a packet is missing at a reading
    and back down when it arrives late: only what is still missing at the end is lost."""
    samples = []
    concealed = 0
    for i in range(11):
        sample = reading(i * 100, 2 * i, 4800 * i, concealed)
        if 3 <= i <= 5:
            concealed += 4800  # 300 … 600 ms: nothing heard
            sample["pc"]["a"]["concealedSamples"] = concealed
        lost = {4: 1, 5: 2, 6: 1, 7: 1, 8: 1, 9: 1, 10: 1}.get(i, 0)  # one late, one lost
        sample["pc"]["v"]["packetsLost"] = lost
        samples.append(sample)
    result = summarise(samples, [], 0, 1000)
    assert result["video_lost"] == 1 and result["video_late"] == 1
    assert result["video_losses"] == [[0.4, 1], [0.5, 1], [0.6, -1]]
    assert result["audio_gaps"] == [[0.2, 0.3]]
    assert result["longest_audio_gap_s"] == 0.3
