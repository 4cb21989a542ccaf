"""The pure parts of the benchmark: sequence numbers, loss, percentiles, parsing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from loadtests.stats import (
    FrameAssembler,
    SendLog,
    SeqTracker,
    loss_fraction,
    parse_proc_stat,
    parse_prometheus_counter,
    percentile,
    process_tree_cpu_seconds,
    rtp_payload,
    vp8_frame_info,
)


def track(seqs: list[int]) -> SeqTracker:
    tracker = SeqTracker()
    for seq in seqs:
        tracker.add(seq)
    return tracker


class TestSeqTracker:
    def test_in_order_no_loss(self) -> None:
        t = track(list(range(100, 200)))
        assert (t.expected, t.received, t.duplicates) == (100, 100, 0)

    def test_wraps_around(self) -> None:
        seqs = [(65500 + i) % 65536 for i in range(100)]
        t = track(seqs)
        assert t.expected == 100
        assert t.received == 100
        assert t.highest == 65500 + 99  # extended past 16 bits

    def test_gap_is_loss(self) -> None:
        seqs = [s for s in range(1000) if s % 10 != 3]
        t = track(seqs)
        assert t.expected == 1000
        assert t.received == 900

    def test_reordered_packets_count_once(self) -> None:
        t = track([1, 2, 4, 3, 5, 7, 6, 8])
        assert (t.expected, t.received, t.reordered, t.duplicates) == (8, 8, 2, 0)

    def test_reordered_across_wrap(self) -> None:
        t = track([65534, 0, 65535, 1, 2])
        assert t.expected == 5
        assert t.received == 5
        assert t.reordered == 1

    def test_duplicates_do_not_count(self) -> None:
        t = track([1, 2, 3, 3, 2, 4, 1])
        assert (t.expected, t.received, t.duplicates) == (4, 4, 3)

    def test_returns_extended_sequence_numbers(self) -> None:
        t = SeqTracker()
        assert [t.add(s) for s in (65535, 0, 65534, 1)] == [65535, 65536, 65534, 65537]

    def test_shuffled_stream_with_loss_over_many_wraps(self) -> None:
        rng = random.Random(7)
        n = 200_000
        start = 60_000
        sent = [(start + i) % 65536 for i in range(n)]
        kept = [s for i, s in enumerate(sent) if i in (0, n - 1) or rng.random() > 0.02]
        # local reordering: swap neighbours now and then
        for i in range(1, len(kept) - 2):
            if rng.random() < 0.05:
                kept[i], kept[i + 1] = kept[i + 1], kept[i]
        t = track(kept)
        assert t.expected == n
        assert t.received == len(kept)
        loss = loss_fraction((0, 0), t.snapshot())
        assert loss is not None and 0.015 < loss < 0.025


class TestLossFraction:
    def test_window(self) -> None:
        t = track(list(range(0, 100)))
        start = t.snapshot()
        for s in range(100, 200):
            if s % 4:
                t.add(s)
        t.add(200)
        assert loss_fraction(start, t.snapshot()) == pytest.approx(25 / 101)

    def test_nothing_expected(self) -> None:
        assert loss_fraction((10, 10), (10, 10)) is None

    def test_late_packets_clamp_to_zero(self) -> None:
        assert loss_fraction((100, 90), (110, 105)) == 0.0


class TestPercentile:
    def test_matches_linear_interpolation(self) -> None:
        values = [15, 20, 35, 40, 50]
        assert percentile(values, 0) == 15
        assert percentile(values, 50) == 35
        assert percentile(values, 100) == 50
        assert percentile(values, 40) == pytest.approx(29.0)
        assert percentile(values, 95) == pytest.approx(48.0)

    def test_unsorted_and_single(self) -> None:
        assert percentile([3.0, 1.0, 2.0], 50) == 2.0
        assert percentile([4.5], 99) == 4.5

    def test_empty_and_bad_q(self) -> None:
        assert percentile([], 50) is None
        with pytest.raises(ValueError):
            percentile([1.0], 101)


class TestRtpPayload:
    def test_plain_and_with_extensions(self) -> None:
        packet = RtpPacket(payload_type=96, sequence_number=5, timestamp=9, ssrc=1, payload=b"abc")
        assert rtp_payload(packet.serialize()) == b"abc"
        extensions = HeaderExtensionsMap()
        from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters

        extensions.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(
                        id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"
                    ),
                    RTCRtpHeaderExtensionParameters(
                        id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                    ),
                ]
            )
        )
        packet.extensions.mid = "1"
        packet.extensions.abs_send_time = 0x123456
        packet.csrc = [7, 8]
        data = packet.serialize(extensions)
        assert data[0] & 0x10
        assert rtp_payload(data) == b"abc"

    def test_padding(self) -> None:
        packet = RtpPacket(payload_type=96, payload=b"payload")
        data = bytearray(packet.serialize())
        data[0] |= 0x20
        data += b"\x00\x00\x03"
        assert rtp_payload(bytes(data)) == b"payload"

    def test_rtcp_and_garbage(self) -> None:
        assert rtp_payload(bytes([0x80, 200]) + bytes(26)) is None  # sender report
        assert rtp_payload(b"\x80\x60") is None
        assert rtp_payload(bytes(20)) is None  # version 0


class TestVp8:
    def test_frame_start_and_keyframe(self) -> None:
        for descriptor in (
            VpxPayloadDescriptor(partition_start=1, partition_id=0),
            VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=300),
            VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=5),
            VpxPayloadDescriptor(
                partition_start=1, partition_id=0, picture_id=300, tl0picidx=2, tid=(1, 1)
            ),
        ):
            head = bytes(descriptor)
            assert vp8_frame_info(head + b"\x10\x02\x00") == (True, True)  # P bit 0
            assert vp8_frame_info(head + b"\x11\x02\x00") == (True, False)

    def test_not_a_start(self) -> None:
        middle = bytes(VpxPayloadDescriptor(partition_start=0, partition_id=0, picture_id=9))
        assert vp8_frame_info(middle + b"\x10") == (False, False)
        other = bytes(VpxPayloadDescriptor(partition_start=1, partition_id=1))
        assert vp8_frame_info(other + b"\x10") == (False, False)
        assert vp8_frame_info(b"") == (False, False)


class TestFrameAssembler:
    @staticmethod
    def packets(start: int, count: int, key: bool) -> list[tuple[int, bool, bytes]]:
        first = bytes(VpxPayloadDescriptor(partition_start=1, partition_id=0, picture_id=1))
        rest = bytes(VpxPayloadDescriptor(partition_start=0, partition_id=0, picture_id=1))
        out = [(start, count == 1, first + (b"\x10" if key else b"\x11") + b"x")]
        out += [(start + i, i == count - 1, rest + b"y") for i in range(1, count)]
        return out

    def test_complete_keyframe_then_delta(self) -> None:
        a = FrameAssembler()
        results = [a.add(*p) for p in self.packets(10, 3, key=True) + self.packets(13, 1, False)]
        assert results == [None, None, (True, True), (True, False)]

    def test_missing_packet_makes_incomplete(self) -> None:
        a = FrameAssembler()
        frame = self.packets(10, 4, key=True)
        del frame[2]
        assert [a.add(*p) for p in frame][-1] == (False, True)

    def test_joined_mid_frame(self) -> None:
        a = FrameAssembler()
        frame = self.packets(10, 4, key=False)[2:]
        assert [a.add(*p) for p in frame][-1] == (False, False)


class TestSendLog:
    def test_lookup(self) -> None:
        log = SendLog(keep=5)
        log.record(b"one", 100.0)
        log.record(b"two", 100.5)
        assert log.lookup(b"one") == 100.0
        assert log.lookup(b"two") == 100.5
        assert log.lookup(b"three") is None

    def test_repeat_within_keep_is_ambiguous(self) -> None:
        log = SendLog(keep=5)
        log.record(b"same", 100.0)
        log.record(b"same", 101.0)
        assert log.lookup(b"same") is None
        assert log.ambiguous == 1

    def test_repeat_after_keep_replaces(self) -> None:
        log = SendLog(keep=5)
        log.record(b"loop", 100.0)
        log.record(b"loop", 110.0)
        assert log.lookup(b"loop") == 110.0
        assert log.ambiguous == 0

    def test_old_entries_are_dropped(self) -> None:
        log = SendLog(keep=1)
        for i in range(1000):
            log.record(i.to_bytes(4, "big"), 100.0 + i * 0.01)
        assert len(log) < 110  # about one second's worth (100 entries) is kept
        assert log.lookup((999).to_bytes(4, "big")) == pytest.approx(109.99)
        assert log.lookup((0).to_bytes(4, "big")) is None


STAT = "4242 (python3 (bench) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 3 4 20 0 5 0"


class TestProc:
    def test_parse_stat_with_odd_comm(self) -> None:
        stat = parse_proc_stat(STAT + " 123 456 789")
        assert (stat.pid, stat.ppid, stat.utime, stat.stime, stat.ticks) == (4242, 1, 250, 75, 325)

    def test_parse_rejects_garbage(self) -> None:
        with pytest.raises(ValueError):
            parse_proc_stat("nonsense")
        with pytest.raises(ValueError):
            parse_proc_stat("1 (x) S 1 2")

    def test_tree(self, tmp_path: Path) -> None:
        def proc(pid: int, ppid: int, utime: int, stime: int) -> None:
            (tmp_path / str(pid)).mkdir()
            (tmp_path / str(pid) / "stat").write_text(
                f"{pid} (p) S {ppid} 0 0 0 -1 0 0 0 0 0 {utime} {stime} 0 0 20 0 1 0\n"
            )

        proc(10, 1, 100, 50)  # the server
        proc(11, 10, 30, 20)  # a worker
        proc(12, 11, 5, 5)  # its child
        proc(20, 1, 999, 999)  # unrelated
        (tmp_path / "self").mkdir()
        import os

        hz = os.sysconf("SC_CLK_TCK")
        assert process_tree_cpu_seconds(10, tmp_path) == pytest.approx(210 / hz)
        assert process_tree_cpu_seconds(11, tmp_path) == pytest.approx(60 / hz)
        assert process_tree_cpu_seconds(99, tmp_path) is None

    def test_real_self(self) -> None:
        import os

        assert (process_tree_cpu_seconds(os.getpid()) or 0) > 0


class TestPrometheus:
    TEXT = """# HELP lophoc_rtp_forwarded_packets_total RTP packets forwarded
# TYPE lophoc_rtp_forwarded_packets_total counter
lophoc_rtp_forwarded_packets_total{kind="audio"} 1500.0
lophoc_rtp_forwarded_packets_total{kind="video"} 3e3
lophoc_rtp_forwarded_packets_created{kind="video"} 1.7e9
lophoc_rtp_forwarded_packets_total_other 7
"""

    def test_sums_labelled_samples(self) -> None:
        assert parse_prometheus_counter(self.TEXT, "lophoc_rtp_forwarded_packets_total") == 4500

    def test_unlabelled_and_absent(self) -> None:
        assert parse_prometheus_counter("x_total 3\n", "x_total") == 3
        assert parse_prometheus_counter(self.TEXT, "lophoc_missing_total") is None
