"""RTP/RTCP bytes and feedback policy: exhaustive unit tests and fuzzing (no sockets)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.feedback import Budget, KeyframeThrottle, ReceiveStats
from media.router import COUNTERS, Codec, Consumer, Producer
from media.rtp import (
    HEADER,
    MalformedPacket,
    ReportBlock,
    abs_send_time_block,
    build_nack,
    build_pli,
    build_receiver_report,
    build_remb,
    build_sender_report,
    find_extension,
    h264_is_keyframe_start,
    is_rtcp,
    parse_header,
    parse_rtcp,
    rewrite,
    seq_diff,
    seq_newer,
    vp8_is_keyframe_start,
)
from media.transport import SubscribeTransport


def rtp(
    seq: int,
    ts: int = 1000,
    ssrc: int = 1234,
    pt: int = 96,
    marker: bool = False,
    payload: bytes = b"\x10\x00\x9d\x01\x2a",
    ext: bytes = b"",
    csrcs: int = 0,
    padding: int = 0,
) -> bytes:
    b0 = 0x80 | (0x10 if ext else 0) | csrcs | (0x20 if padding else 0)
    head = HEADER.pack(b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    head += b"\x00\x00\x00\x07" * csrcs
    if ext:
        head += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    pad = (b"\x00" * (padding - 1) + bytes([padding])) if padding else b""
    return head + payload + pad


def test_parse_header_skips_csrcs_and_extensions() -> None:
    ext = bytes([0x10, 0xAB, 0x00, 0x00])  # id 1, one byte, padded
    packet = rtp(7, ext=ext, csrcs=2, marker=True, payload=b"PAYLOAD")
    h = parse_header(packet)
    assert (h.sequence_number, h.timestamp, h.ssrc, h.payload_type, h.marker) == (
        7,
        1000,
        1234,
        96,
        True,
    )
    assert packet[h.payload_offset :] == b"PAYLOAD"
    assert find_extension(packet, h, 1) == b"\xab"
    assert find_extension(packet, h, 2) is None


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x80\x60\x00",
        b"\x40" + b"\x00" * 15,  # version 1
        b"\x90\x60" + b"\x00" * 10,  # extension flag, no extension
        b"\x90\x60" + b"\x00" * 10 + b"\xbe\xde\x00\x09",  # extension longer than packet
        b"\x8f\x60" + b"\x00" * 10,  # 15 CSRCs promised, none present
        b"\xa0\x60" + b"\x00" * 10 + b"\x00\x00\x00\x40",  # padding longer than packet
        b"\xa0\x60" + b"\x00" * 10 + b"\x00\x00\x00\x00",  # zero padding length
    ],
)
def test_lying_headers_are_refused(packet: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse_header(packet)


@given(st.binary(max_size=64))
def test_parse_header_raises_only_malformed(data: bytes) -> None:
    try:
        h = parse_header(data)
    except MalformedPacket:
        return
    assert 12 <= h.payload_offset <= len(data)


@given(st.binary(max_size=128))
def test_parse_rtcp_raises_only_malformed(data: bytes) -> None:
    try:
        parse_rtcp(data)
    except MalformedPacket:
        pass


def test_rewrite_changes_only_the_header_fields() -> None:
    packet = rtp(65535, ts=0xFFFFFFF0, ext=bytes([0x10, 1, 0, 0]), payload=b"abc", padding=3)
    h = parse_header(packet)
    out = rewrite(packet, h, payload_type=100, sequence_number=5, timestamp=0x1_0000_0005, ssrc=99)
    o = parse_header(out)
    assert (o.payload_type, o.sequence_number, o.timestamp, o.ssrc) == (100, 5, 5, 99)
    assert o.extension_offset == 0 and o.padding
    assert out[o.payload_offset :] == packet[h.payload_offset :]


def test_abs_send_time_block_is_a_valid_one_byte_extension() -> None:
    block = abs_send_time_block(3, 0x123456)
    packet = HEADER.pack(0x90, 96, 1, 2, 3) + block + b"x"
    h = parse_header(packet)
    assert find_extension(packet, h, 3) == b"\x12\x34\x56"


def test_sequence_arithmetic_wraps() -> None:
    assert seq_newer(0, 65535) and not seq_newer(65535, 0)
    assert seq_diff(2, 65534) == 4 and seq_diff(65534, 2) == -4


def test_vp8_keyframe_detection() -> None:
    assert vp8_is_keyframe_start(b"\x10\x00")  # S=1, PID=0, P=0
    assert not vp8_is_keyframe_start(b"\x10\x01")  # interframe
    assert not vp8_is_keyframe_start(b"\x00\x00")  # not a partition start
    # X with 15-bit picture id, TL0PICIDX and TID
    assert vp8_is_keyframe_start(bytes([0x90, 0xE0, 0x80, 0x01, 0x05, 0x20, 0x00]))
    assert not vp8_is_keyframe_start(bytes([0x90, 0xE0, 0x80]))  # truncated


def test_h264_keyframe_detection() -> None:
    assert h264_is_keyframe_start(b"\x65\x88")  # IDR
    assert h264_is_keyframe_start(b"\x67\x42")  # SPS
    assert not h264_is_keyframe_start(b"\x41\x9a")  # non-IDR slice
    stap = b"\x18" + b"\x00\x02\x67\x42" + b"\x00\x02\x68\xce"
    assert h264_is_keyframe_start(stap)
    assert h264_is_keyframe_start(b"\x7c\x85")  # FU-A start of IDR
    assert not h264_is_keyframe_start(b"\x7c\x05")  # FU-A middle
    assert not h264_is_keyframe_start(b"\x18\x00\x09\x67")  # STAP-A lying about size


@given(st.binary(max_size=32))
def test_keyframe_detectors_never_raise(data: bytes) -> None:
    vp8_is_keyframe_start(data)
    h264_is_keyframe_start(data)


def test_rtcp_round_trips() -> None:
    compound = (
        build_sender_report(11, (5 << 32) | 7, 1234, 10, 2000)
        + build_receiver_report(12, [ReportBlock(99, 25, -3, 70000, 40, 8, 9)])
        + build_pli(12, 99)
        + build_nack(12, 99, [65535, 0, 1, 5, 40])
        + build_remb(12, 1_500_000, [99, 100])
    )
    assert all(is_rtcp(p) for p in (compound,))
    fb = parse_rtcp(compound)
    assert [f.kind for f in fb] == ["sr", "rr", "pli", "nack", "remb"]
    assert fb[0].ntp == (5 << 32) | 7 and fb[0].rtp_timestamp == 1234
    assert fb[1].reports[0].packets_lost == -3 and fb[1].reports[0].fraction_lost == 25
    assert fb[2].media_ssrcs == (99,)
    assert sorted(fb[3].lost) == sorted([65535, 0, 1, 5, 40])
    assert abs(fb[4].bitrate - 1_500_000) / 1_500_000 < 0.001 and fb[4].media_ssrcs == (99, 100)


@given(st.lists(st.integers(0, 65535), min_size=1, max_size=40))
def test_nack_encodes_every_sequence_number(lost: list[int]) -> None:
    (fb,) = parse_rtcp(build_nack(1, 2, lost))
    assert set(fb.lost) == set(lost)


def test_keyframe_throttle_turns_a_pli_storm_into_one_request_per_second() -> None:
    throttle = KeyframeThrottle(1.0)
    sent = [t / 100 for t in range(1000) if throttle.request(t / 100)]  # 100 PLI/s for 10 s
    assert len(sent) == 10
    assert throttle.due_in(9.995) is not None  # the last one is remembered


def test_budget_refuses_beyond_rate() -> None:
    budget = Budget(rate=10, burst=10)
    assert sum(budget.take(0.0) for _ in range(100)) == 10
    assert sum(budget.take(1.0) for _ in range(100)) == 10


def test_receive_stats_loss_and_missing() -> None:
    stats = ReceiveStats(90000)
    assert stats.add(65534, 0, 0.0) == []
    assert stats.add(65535, 3000, 0.033) == []
    assert stats.add(2, 6000, 0.066) == [0, 1]  # wrapped, two missing
    block = stats.report(1, 1.0)
    assert block.packets_lost == 2 and block.highest_sequence == (1 << 16) + 2
    assert block.fraction_lost == (2 << 8) // 5


class RecordingTransport:
    """A subscriber's (or publisher's) transport whose socket is a list: the real per-packet
    path (``SubscribeTransport.send_media``: pacing, header extensions) and a record of what
    would be protected and sent."""

    send_media = SubscribeTransport.send_media
    _emit = SubscribeTransport._emit
    _wake = SubscribeTransport._wake
    _drain = SubscribeTransport._drain
    closed = False
    _probe = None
    _probe_handle = None

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.rtcp: list[bytes] = []
        SubscribeTransport.init_sending(self)  # type: ignore[arg-type]

    def send_rtp(self, packet: bytes) -> bool:
        self.sent.append(packet)
        return True

    def send_pli(self, ssrc: int) -> None:
        self.rtcp.append(build_pli(0, ssrc))

    def send_nack(self, ssrc: int, lost: list[int]) -> None:
        self.rtcp.append(build_nack(0, ssrc, lost))

    def forget_consumer(self, consumer: Consumer) -> None:
        pass

    @staticmethod
    def now() -> float:
        return 0.0


def make_pair(
    kind: str = "video",
) -> tuple[Producer, Consumer, RecordingTransport, RecordingTransport]:
    up, down = RecordingTransport(), RecordingTransport()
    codec = Codec("video/VP8", 90000, 96) if kind == "video" else Codec("audio/opus", 48000, 111)
    producer = Producer(
        producer_id="pr",
        participant_id="p",
        kind=kind,
        codec=codec,
        ssrc=1234,
        transport=up,  # type: ignore[arg-type]
    )
    consumer = Consumer(
        consumer_id="co",
        producer=producer,
        transport=down,  # type: ignore[arg-type]
        ssrc=777,
        payload_type=120,
        abs_send_time=True,
    )  # type: ignore[arg-type]
    producer.add_consumer(consumer)
    return producer, consumer, up, down


KEY = b"\x10\x00\x9d\x01\x2a"
DELTA = b"\x10\x01\x00"


def test_consumer_waits_for_a_keyframe_then_rewrites_contiguously() -> None:
    producer, consumer, _, down = make_pair()
    producer.receive(rtp(100, payload=DELTA), 0.0)
    assert down.sent == []  # no keyframe yet
    producer.receive(rtp(101, payload=KEY), 0.0)
    producer.receive(rtp(102, payload=DELTA, marker=True), 0.0)
    producer.receive(rtp(104, payload=DELTA), 0.0)  # 103 lost upstream
    out = [parse_header(p) for p in down.sent]
    assert [h.ssrc for h in out] == [777] * 3 and {h.payload_type for h in out} == {120}
    seqs = [h.sequence_number for h in out]
    assert seqs[1] == (seqs[0] + 1) & 0xFFFF and seqs[2] == (seqs[0] + 3) & 0xFFFF
    assert out[1].marker and not out[0].marker
    assert {(h.timestamp - 1000) & 0xFFFFFFFF for h in out} == {consumer.ts_offset}
    assert down.sent[0][out[0].payload_offset :] == KEY
    assert out[0].extension_offset  # abs-send-time added for video


def test_a_waiting_consumer_keeps_asking_for_a_keyframe_at_most_once_a_second() -> None:
    """The request made when the consumer was created can be lost (sent before the
    publisher's SRTP was up); while the consumer waits, the producer asks again."""
    producer, _, up, down = make_pair()
    for i in range(25):  # 2.5 s of delta frames, 10 a second
        producer.receive(rtp(100 + i, payload=DELTA), i / 10)
    requests = [p for packet in up.rtcp for p in parse_rtcp(packet) if p.kind == "pli"]
    assert len(requests) == 3  # at 0 s, 1 s and 2 s: the throttle still holds
    assert down.sent == []
    up.rtcp.clear()
    producer.receive(rtp(125, payload=KEY), 2.5)
    for i in range(20):
        producer.receive(rtp(126 + i, payload=DELTA), 2.6 + i / 10)
    assert up.rtcp == []  # nobody waits any more
    assert len(down.sent) == 21


async def test_nack_from_subscriber_is_answered_from_history_within_budget() -> None:
    producer, consumer, _, down = make_pair()
    producer.receive(rtp(10, payload=KEY), 0.0)
    producer.receive(rtp(11, payload=b"\x00\x01second"), 0.0)
    second = parse_header(down.sent[1]).sequence_number
    down.sent.clear()
    consumer.retransmit((second,), 0.1)
    assert len(down.sent) == 1 and down.sent[0].endswith(b"second")
    assert parse_header(down.sent[0]).sequence_number == second
    consumer.retransmit((second,), 5.0)  # too old: not resent
    assert len(down.sent) == 1
    consumer.retransmit(((second + 1000) & 0xFFFF,), 0.1)  # never sent: ignored
    assert len(down.sent) == 1
    refused = COUNTERS.retransmissions_refused
    consumer.retransmit((second,) * 500, 0.2)  # storm
    assert len(down.sent) <= 1 + 100 and COUNTERS.retransmissions_refused > refused


def test_upstream_gap_is_nacked_and_pli_throttled() -> None:
    producer, _, up, _ = make_pair()
    producer.receive(rtp(1, payload=KEY), 0.0)
    producer.receive(rtp(4, payload=DELTA), 0.0)
    (nack,) = parse_rtcp(up.rtcp[-1])
    assert nack.kind == "nack" and set(nack.lost) == {2, 3}
    up.rtcp.clear()
    for i in range(100):
        producer.request_keyframe(i / 100)
    assert len(up.rtcp) == 1


def test_paused_producer_forwards_nothing_and_resumes_at_a_keyframe() -> None:
    producer, consumer, _, down = make_pair()
    producer.receive(rtp(1, payload=KEY), 0.0)
    producer.paused = True
    producer.receive(rtp(2, payload=DELTA), 0.0)
    assert len(down.sent) == 1
    producer.paused = False
    consumer.waiting_for_keyframe = True
    producer.receive(rtp(3, payload=DELTA), 0.0)
    producer.receive(rtp(4, payload=KEY), 0.0)
    assert len(down.sent) == 2
    a, b = (parse_header(p).sequence_number for p in down.sent)
    assert b == (a + 1) & 0xFFFF  # no gap for the subscriber across the pause


@settings(max_examples=200)
@given(st.binary(min_size=12, max_size=80))
def test_forwarding_garbage_never_raises(data: bytes) -> None:
    producer, _, _, _ = make_pair("audio")
    data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]
    producer.receive(data, 0.0)


async def test_a_receiver_reports_loss_is_corrected_for_what_the_publishers_uplink_lost() -> None:
    """A subscriber counts a number the publisher's uplink lost (and nobody repaired) as
    lost; the server never sent it, so it says nothing of the downlink."""
    producer, consumer, _, down = make_pair()
    producer.receive(rtp(100, payload=KEY), 0.0)
    first = parse_header(down.sent[0]).sequence_number
    assert consumer.downlink_loss(first, 0) is None  # the first report only sets the mark
    # 100 numbers later: 10 never reached the server, one came late (a repair).
    for seq in range(101, 201):
        if seq % 10 != 5:
            producer.receive(rtp(seq, payload=DELTA), 0.01 * (seq - 100))
    producer.receive(rtp(115, payload=DELTA), 1.1)
    assert consumer.skipped == 9
    # The subscriber lost nothing of what was sent: it reports the 9 it never saw.
    assert consumer.downlink_loss(first + 100, 9) == 0
    # Next: 100 more numbers, all sent; the subscriber lost 5 of them on its link.
    for seq in range(201, 301):
        producer.receive(rtp(seq, payload=DELTA), 2.0)
    assert consumer.downlink_loss(first + 200, 9 + 5) == (5 << 8) // 100
