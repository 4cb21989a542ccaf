"""Transport-wide congestion control feedback on bytes: the draft's layout, round trips, fuzzing.

draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.rtp import (
    TWCC_DELTA_UNIT,
    TWCC_MAX_STATUS_COUNT,
    MalformedPacket,
    ReportBlock,
    TransportFeedback,
    build_receiver_report,
    build_transport_feedback,
    parse_rtcp,
)


def twcc_of(packet: bytes) -> TransportFeedback:
    (fb,) = parse_rtcp(packet)
    assert fb.kind == "twcc" and fb.twcc is not None
    return fb.twcc


def ticks(arrival: float | None) -> int | None:
    return None if arrival is None else round(arrival / TWCC_DELTA_UNIT)


def rtpfb(fci: bytes, *, padding: int = 0) -> bytes:
    body = struct.pack("!II", 0x11111111, 0x22222222) + fci
    pad = b"\x00" * (padding - 1) + bytes([padding]) if padding else b""
    body += pad
    assert len(body) % 4 == 0
    b0 = 0x80 | (0x20 if padding else 0) | 15
    return struct.pack("!BBH", b0, 205, len(body) // 4) + body


def test_a_packet_laid_out_by_hand_from_the_draft() -> None:
    # base 65534 (the sequence wraps inside the report), 21 statuses, reference time 16
    # (16 × 64 ms), feedback packet count 9.
    header = struct.pack("!HHBHB", 65534, 21, 0x00, 0x0010, 9)
    chunks = [
        0b0_01_0000000000011,  # run length: 3 × "received, small delta"
        0b1_0_10110000000001,  # status vector, 1-bit symbols: received at 0, 2, 3, 13
        0b1_1_10_00_01_10_00_00_00,  # status vector, 2-bit: large, lost, small, large (+3 unused)
    ]
    deltas = bytes([4, 0, 255])  # the run
    deltas += bytes([1, 2, 3, 200])  # the 1-bit vector's four received
    deltas += struct.pack("!h", -40) + bytes([8]) + struct.pack("!h", 4096)
    fci = header + b"".join(struct.pack("!H", c) for c in chunks) + deltas
    fci += b"\x00" * (-len(fci) % 4)
    fb = twcc_of(rtpfb(fci))

    assert fb.base_seq == 65534 and fb.feedback_count == 9
    assert fb.reference_time == pytest.approx(16 * 0.064)
    t = 16 * 256  # the reference time in 250 µs ticks
    expected: list[int | None] = []
    for step in (4, 0, 255):
        t += step
        expected.append(t)
    vector = [1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    steps = iter([1, 2, 3, 200])
    for bit in vector:
        if bit:
            t += next(steps)
            expected.append(t)
        else:
            expected.append(None)
    for symbol in (-40, None, 8, 4096):
        if symbol is None:
            expected.append(None)
        else:
            t += symbol
            expected.append(t)
    assert [s for s, _ in fb.packets] == [(65534 + i) & 0xFFFF for i in range(21)]
    assert [ticks(a) for _, a in fb.packets] == expected
    assert fb.packets[1][0] == 65535 and fb.packets[2][0] == 0


def test_the_padding_bit_is_honoured() -> None:
    header = struct.pack("!HHBHB", 7, 2, 0, 1, 0)
    fci = header + struct.pack("!H", 0b0_01_0000000000010) + bytes([10, 20])
    fb = twcc_of(rtpfb(fci, padding=4))
    assert [ticks(a) for _, a in fb.packets] == [256 + 10, 256 + 30]


def test_feedback_inside_a_compound_packet() -> None:
    twcc = build_transport_feedback(5, 6, 100, 1, [10.0, None, 10.01])
    compound = build_receiver_report(5, [ReportBlock(6, 12, 3, 100, 0, 0, 0)]) + twcc
    kinds = [fb.kind for fb in parse_rtcp(compound)]
    assert kinds == ["rr", "twcc"]


arrival_steps = st.lists(
    st.one_of(st.none(), st.integers(-8000, 8000), st.integers(0, 255)),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.integers(0, 0xFFFF),
    count=st.integers(0, 255),
    start=st.integers(0, 2**30),
    steps=arrival_steps,
)
def test_build_then_parse_is_the_identity(
    base: int, count: int, start: int, steps: list[int | None]
) -> None:
    arrivals: list[float | None] = []
    t = start
    for step in steps:
        if step is None:
            arrivals.append(None)
        else:
            t = max(0, t + step)
            arrivals.append(t * TWCC_DELTA_UNIT)
    if all(a is None for a in arrivals):
        arrivals[0] = start * TWCC_DELTA_UNIT
    fb = twcc_of(build_transport_feedback(1, 2, base, count, arrivals))
    assert fb.base_seq == base and fb.feedback_count == count
    assert [s for s, _ in fb.packets] == [(base + i) & 0xFFFF for i in range(len(arrivals))]
    got = [ticks(a) for _, a in fb.packets]
    want = [ticks(a) for a in arrivals]
    # The 24-bit reference time wraps every 2^24 × 64 ms; compare modulo that.
    wrap = 2**24 * 256
    assert [None if g is None else g % wrap for g in got] == [
        None if w is None else w % wrap for w in want
    ]


def test_long_gaps_are_run_length_encoded() -> None:
    arrivals: list[float | None] = [1.0] + [None] * 5000 + [1.5]
    packet = build_transport_feedback(1, 2, 0, 0, arrivals)
    assert len(packet) <= 40
    fb = twcc_of(packet)
    assert len(fb.packets) == 5002 and fb.packets[-1][1] == pytest.approx(1.5)


def test_builder_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError):
        build_transport_feedback(1, 2, 0, 0, [])
    with pytest.raises(ValueError):
        build_transport_feedback(1, 2, 0, 0, [1.0, 20.0])  # 19 s between two receptions
    with pytest.raises(ValueError):
        build_transport_feedback(1, 2, 0, 0, [None] * (TWCC_MAX_STATUS_COUNT + 1))


def _fci(count: int, chunks: list[int], deltas: bytes = b"") -> bytes:
    fci = struct.pack("!HHBHB", 0, count, 0, 0, 0)
    fci += b"".join(struct.pack("!H", c) for c in chunks) + deltas
    return fci + b"\x00" * (-len(fci) % 4)


@pytest.mark.parametrize(
    "fci",
    [
        struct.pack("!HH", 0, 1),  # shorter than the fixed part
        _fci(0, [0b0_01_0000000000001], b"\x01"),  # no packet reported
        _fci(TWCC_MAX_STATUS_COUNT + 1, [0b0_00_1111111111111] * 2),  # too many
        _fci(20, [0b0_01_0000000000010], b"\x01\x01"),  # chunks end before the count
        _fci(3, [0b0_01_0000000000011], b"\x01"),  # deltas truncated
        _fci(2, [0b0_10_0000000000010], b"\x00\x01"),  # large delta truncated
        _fci(2, [0b0_11_0000000000010]),  # reserved symbol in a run
        _fci(2, [0b1_1_11_00_00_00_00_00_00]),  # reserved symbol in a 2-bit vector
        _fci(2, [0b0_01_0000000000000], b"\x01\x01"),  # empty run
    ],
)
def test_lying_feedback_is_refused(fci: bytes) -> None:
    with pytest.raises(MalformedPacket):
        parse_rtcp(rtpfb(fci + b"\x00" * (-len(fci) % 4)))


def test_impossible_padding_is_refused() -> None:
    packet = bytearray(rtpfb(_fci(1, [0b0_01_0000000000001], b"\x01"), padding=4))
    packet[-1] = 200
    with pytest.raises(MalformedPacket):
        parse_rtcp(bytes(packet))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_feedback_from_random_bytes_raises_only_malformed(tail: bytes) -> None:
    body = tail + b"\x00" * (-len(tail) % 4)
    packet = struct.pack("!BBH", 0x8F, 205, len(body) // 4) + body
    try:
        for fb in parse_rtcp(packet):
            if fb.twcc is not None:
                assert 1 <= len(fb.twcc.packets) <= TWCC_MAX_STATUS_COUNT
    except MalformedPacket:
        pass


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 300)), min_size=1, max_size=60),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
)
def test_mutated_feedback_raises_only_malformed(
    steps: list[int | None], flips: list[tuple[int, int]]
) -> None:
    arrivals: list[float | None] = []
    t = 4000
    for step in steps:
        if step is not None:
            t += step
        arrivals.append(None if step is None else t * TWCC_DELTA_UNIT)
    packet = bytearray(build_transport_feedback(1, 2, 9, 3, arrivals))
    for pos, value in flips:
        if 4 <= pos < len(packet):  # keep the RTCP header, corrupt the rest
            packet[pos] = value
    try:
        parse_rtcp(bytes(packet))
    except MalformedPacket:
        pass
