"""RED payloads (RFC 2198): parsing, payload-type rewriting, primary extraction, and the
per-packet source/sink pair the router uses — with hand-built bytes and fuzzed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media import red
from media.red import RedSink, RedSource

# RFC 2198 §3's example shape, with Opus (111) in every block: two redundant blocks of 3 and 2
# bytes at offsets 1920 and 960 before the primary, then a 4-byte primary.
TWO_REDUNDANT = (
    bytes([0x80 | 111]) + ((1920 << 10) | 3).to_bytes(3, "big")
    + bytes([0x80 | 111]) + ((960 << 10) | 2).to_bytes(3, "big")
    + bytes([111])
    + b"abc" + b"de" + b"PRIM"
)  # fmt: skip


def test_parse_reads_the_headers_and_block_boundaries() -> None:
    blocks = red.parse(TWO_REDUNDANT)
    assert blocks == [(111, 1920, 9, 12), (111, 960, 12, 14), (111, 0, 14, 18)]
    assert [TWO_REDUNDANT[s:e] for _, _, s, e in blocks] == [b"abc", b"de", b"PRIM"]


def test_primary_only_packet() -> None:
    payload = bytes([111]) + b"opus"
    assert red.parse(payload) == [(111, 0, 1, 5)]
    assert red.primary(payload, 111) == b"opus"


def test_primary_is_the_last_block() -> None:
    assert red.primary(TWO_REDUNDANT, 111) == b"PRIM"


def test_zero_length_redundant_block_is_valid() -> None:
    payload = red.encode([(111, 960, b"")], 111, b"x")
    assert red.parse(payload) == [(111, 960, 5, 5), (111, 0, 5, 6)]
    assert red.primary(payload, 111) == b"x"


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # nothing at all
        bytes([111]),  # final header, no primary data
        bytes([0x80 | 111, 0, 0]),  # non-final header cut short
        bytes([0x80 | 111]) + ((960 << 10) | 5).to_bytes(3, "big") + bytes([111]) + b"abc",
        # redundant block as long as the rest: the primary would be empty
        bytes([0x80 | 111]) + ((960 << 10) | 1).to_bytes(3, "big") + bytes([111]) + b"a",
        bytes([0x80 | 111]) * 4,  # headers only, never a final one
        (bytes([0x80 | 111]) + (960 << 10).to_bytes(3, "big")) * 16 + bytes([111]) + b"x",
    ],
)
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    assert red.parse(payload) is None
    assert red.primary(payload, 111) is None
    assert red.rewrite_block_types(payload, 111, 96) is None


def test_at_most_max_blocks() -> None:
    fifteen = [(111, 960 * (15 - i), b"r") for i in range(red.MAX_BLOCKS - 1)]
    ok = red.encode(fifteen, 111, b"p")
    blocks = red.parse(ok)
    assert blocks is not None and len(blocks) == red.MAX_BLOCKS
    with pytest.raises(ValueError):
        red.encode([*fifteen, (111, 0, b"r")], 111, b"p")


def test_blocks_of_another_payload_type_are_refused() -> None:
    payload = red.encode([(0, 160, b"pcmu")], 111, b"opus")  # a PCMU block in an Opus RED
    assert red.parse(payload) is not None
    assert red.primary(payload, 111) is None
    assert red.rewrite_block_types(payload, 111, 96) is None
    assert red.primary(bytes([96]) + b"x", 111) is None


def test_rewrite_changes_only_the_payload_types_and_keeps_the_f_bits() -> None:
    out = red.rewrite_block_types(TWO_REDUNDANT, 111, 96)
    assert out is not None and len(out) == len(TWO_REDUNDANT)
    assert out[0] == 0x80 | 96 and out[4] == 0x80 | 96 and out[8] == 96
    assert out[1:4] == TWO_REDUNDANT[1:4] and out[5:8] == TWO_REDUNDANT[5:8]
    assert out[9:] == TWO_REDUNDANT[9:]
    assert red.parse(out) == [(96, 1920, 9, 12), (96, 960, 12, 14), (96, 0, 14, 18)]


def test_rewrite_to_the_same_type_returns_the_payload_itself() -> None:
    assert red.rewrite_block_types(TWO_REDUNDANT, 111, 111) is TWO_REDUNDANT


def test_encode_matches_the_hand_built_packet() -> None:
    assert red.encode([(111, 1920, b"abc"), (111, 960, b"de")], 111, b"PRIM") == TWO_REDUNDANT


@pytest.mark.parametrize(
    "redundant,primary_type,data",
    [
        ([(128, 0, b"x")], 111, b"p"),
        ([(111, 1 << 14, b"x")], 111, b"p"),
        ([(111, 0, b"x" * 1024)], 111, b"p"),
        ([], 128, b"p"),
        ([], 111, b""),
    ],
)
def test_encode_refuses_what_the_format_cannot_carry(
    redundant: list[tuple[int, int, bytes]], primary_type: int, data: bytes
) -> None:
    with pytest.raises(ValueError):
        red.encode(redundant, primary_type, data)


blocks_strategy = st.lists(
    st.tuples(
        st.integers(0, 127),
        st.integers(0, red.MAX_TIMESTAMP_OFFSET),
        st.binary(max_size=40),
    ),
    max_size=red.MAX_BLOCKS - 1,
)


@settings(max_examples=300, deadline=None)
@given(blocks_strategy, st.integers(0, 127), st.binary(min_size=1, max_size=200))
def test_encode_then_parse_round_trips(
    redundant: list[tuple[int, int, bytes]], primary_type: int, data: bytes
) -> None:
    payload = red.encode(redundant, primary_type, data)
    blocks = red.parse(payload)
    assert blocks is not None
    got = [(pt, off, payload[s:e]) for pt, off, s, e in blocks]
    assert got == [*redundant, (primary_type, 0, data)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, red.MAX_TIMESTAMP_OFFSET), st.binary(max_size=30)),
             max_size=4),
    st.binary(min_size=1, max_size=100),
    st.integers(0, 127),
)  # fmt: skip
def test_rewrite_then_unwrap_gives_the_primary(
    redundant: list[tuple[int, bytes]], data: bytes, new: int
) -> None:
    payload = red.encode([(111, off, b) for off, b in redundant], 111, data)
    rewritten = red.rewrite_block_types(payload, 111, new)
    assert rewritten is not None
    assert red.primary(rewritten, new) == data
    assert red.primary(payload, 111) == data


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_and_stay_in_bounds(payload: bytes) -> None:
    blocks = red.parse(payload)
    if blocks is not None:
        assert 1 <= len(blocks) <= red.MAX_BLOCKS
        pos = blocks[0][2]
        for _, offset, start, end in blocks:
            assert start == pos and start <= end <= len(payload)
            assert 0 <= offset <= red.MAX_TIMESTAMP_OFFSET
            pos = end
        assert pos == len(payload) and blocks[-1][2] < len(payload)
    primary = red.primary(payload, 111)
    assert primary is None or (0 < len(primary) <= len(payload))
    out = red.rewrite_block_types(payload, 111, 96)
    assert out is None or len(out) == len(payload)


# -- the router's per-packet pair ----------------------------------------------------------


def test_source_validates_once_and_sinks_send_red_or_opus() -> None:
    source = RedSource(red_type=63, opus_type=111)
    forward = RedSink(source, opus_type=96, red_type=100)  # a subscriber that numbers differently
    same = RedSink(source, opus_type=111, red_type=63)
    unwrap = RedSink(source, opus_type=96, red_type=None)

    assert source.accept(63, TWO_REDUNDANT)
    pt, out = forward.transform(TWO_REDUNDANT) or (0, b"")
    assert pt == 100 and red.parse(out) == [(96, 1920, 9, 12), (96, 960, 12, 14), (96, 0, 14, 18)]
    assert same.transform(TWO_REDUNDANT) == (63, TWO_REDUNDANT)
    assert unwrap.transform(TWO_REDUNDANT) == (96, b"PRIM")
    # A second subscriber numbering Opus 96 gets the same bytes object (rewritten once).
    other = RedSink(source, opus_type=96, red_type=63)
    again = other.transform(TWO_REDUNDANT)
    assert again is not None and again[1] is out


def test_plain_opus_from_a_red_publisher_passes_with_the_subscribers_opus_type() -> None:
    source = RedSource(red_type=63, opus_type=111)
    plain = b"\x78opus-frame"
    assert source.accept(111, plain)
    assert RedSink(source, opus_type=96, red_type=63).transform(plain) == (96, plain)
    assert RedSink(source, opus_type=96, red_type=None).transform(plain) == (96, plain)


def test_malformed_red_and_unnegotiated_types_are_refused() -> None:
    source = RedSource(red_type=63, opus_type=111)
    sink = RedSink(source, opus_type=96, red_type=None)
    assert source.accept(63, TWO_REDUNDANT)
    assert not source.accept(63, bytes([111]))  # no primary
    assert sink.transform(bytes([111])) is None
    assert not source.accept(13, b"\x00")  # comfort noise was not negotiated
    assert not source.accept(63, red.encode([], 0, b"pcmu"))  # a block that is not Opus


def test_packets_other_than_the_current_one_are_not_sent() -> None:
    source = RedSource(red_type=63, opus_type=111)
    sink = RedSink(source, opus_type=96, red_type=None)
    assert sink.transform(TWO_REDUNDANT) is None  # nothing accepted yet
    assert source.accept(63, TWO_REDUNDANT)
    older = red.encode([(111, 960, b"zz")], 111, b"OLDER")  # e.g. from the history
    assert sink.transform(older) is None
    copy = bytes(bytearray(TWO_REDUNDANT))  # the same packet, another object (or a view)
    assert copy is not TWO_REDUNDANT
    assert sink.transform(copy) == (96, b"PRIM")
    assert sink.transform(memoryview(TWO_REDUNDANT)) == (96, b"PRIM")  # type: ignore[arg-type]
    assert not source.accept(63, b"")
    assert sink.transform(TWO_REDUNDANT) is None  # the current packet was refused
