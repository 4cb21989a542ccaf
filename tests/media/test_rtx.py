"""RTX (RFC 4588): the payload format, the subscriber's RTX stream and the publisher's, on real
packet bytes through the real per-packet paths (``RecordingTransport``: a recorded socket)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from media import rtx
from media.router import COUNTERS, HISTORY_MAX_AGE, Codec, Consumer, Producer
from media.rtp import (
    ReportBlock,
    build_nack,
    build_pli,
    build_receiver_report,
    parse_header,
    parse_rtcp,
)
from media.transport import PADDING, SubscribeTransport, _unsent_tail
from tests.media.test_rtp import DELTA, KEY, RecordingTransport, rtp

MEDIA_SSRC, RTX_SSRC, RTX_PT = 1234, 4321, 97
SUB_SSRC, SUB_RTX_SSRC, SUB_PT, SUB_RTX_PT = 777, 888, 120, 121


def rtx_packet(
    rtx_seq: int, osn: int, payload: bytes, *, ts: int = 1000, marker: bool = False, **kw: int
) -> bytes:
    return rtp(
        rtx_seq,
        ts=ts,
        ssrc=RTX_SSRC,
        pt=RTX_PT,
        marker=marker,
        payload=struct.pack("!H", osn) + payload,
        **kw,  # type: ignore[arg-type]
    )


# -- the payload format ---------------------------------------------------------------------


def test_unwrap_gives_back_the_original_packet() -> None:
    # V=2 X=1, M=1 PT=97, seq 0x0102, ts 0x0A0B0C0D, SSRC 4321, one extension word, OSN 0xBEEF.
    packet = bytes.fromhex("90e101020a0b0c0d000010e1bede000110ab0000beef10009d012a")
    original = rtx.unwrap(packet, 96, MEDIA_SSRC)
    assert original == bytes.fromhex("90e0beef0a0b0c0d000004d2bede000110ab000010009d012a")
    h = parse_header(original)
    assert (h.payload_type, h.sequence_number, h.ssrc, h.marker) == (96, 0xBEEF, MEDIA_SSRC, True)


def test_unwrap_strips_the_rtx_packets_padding_and_keeps_csrcs() -> None:
    packet = rtx_packet(5, 300, b"frame", csrcs=2, padding=7)
    original = rtx.unwrap(packet, 96, MEDIA_SSRC)
    assert original == rtp(300, csrcs=2, payload=b"frame")
    assert original is not None and not original[0] & 0x20


def test_padding_only_rtx_carries_nothing() -> None:
    probe = rtp(9, ssrc=RTX_SSRC, pt=RTX_PT, payload=b"", padding=255)
    assert rtx.unwrap(probe, 96, MEDIA_SSRC) is rtx.PADDING_ONLY
    assert rtx.unwrap(rtp(9, ssrc=RTX_SSRC, pt=RTX_PT, payload=b""), 96, 1) is rtx.PADDING_ONLY


def test_malformed_rtx_is_refused() -> None:
    refused = [
        rtp(1, payload=b"\x01"),  # a 1-byte payload: half an OSN
        rtp(1, payload=b"\x01\x02"),  # an OSN and nothing to forward
        rtp(1, payload=b"\x01\x02\x03", padding=1)[:-1] + b"\x00",  # padding count 0
        rtp(1, payload=b"\x01\x02\x03")[:-3] + b"\xff",  # padding longer than the packet
        rtp(1, payload=b"", ext=b"\x10\xab\x00\x00")[:14],  # extension header cut off
        rtp(1, payload=b"\x00\x01x", ext=b"\x10\xab\x00\x00")[:13] + b"\x09",  # runs past
        b"\x40" + rtp(1, payload=b"\x00\x01x")[1:],  # RTP version 1
        rtp(1)[:11],
    ]
    for packet in refused:
        assert rtx.unwrap(packet, 96, MEDIA_SSRC) is None, packet.hex()


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_unwrap_never_raises_and_answers_a_packet_no_longer_than_its_input(data: bytes) -> None:
    out = rtx.unwrap(data, 96, MEDIA_SSRC)
    assert out is None or len(out) <= len(data) - rtx.OSN_SIZE or out is rtx.PADDING_ONLY


@given(
    osn=st.integers(0, 0xFFFF),
    rtx_seq=st.integers(0, 0xFFFF),
    payload=st.binary(min_size=1, max_size=60),
    csrcs=st.integers(0, 3),
    marker=st.booleans(),
)
def test_payload_then_unwrap_round_trips(
    osn: int, rtx_seq: int, payload: bytes, csrcs: int, marker: bool
) -> None:
    packet = rtp(
        rtx_seq,
        ssrc=RTX_SSRC,
        pt=RTX_PT,
        marker=marker,
        csrcs=csrcs,
        payload=rtx.payload(osn, payload),
    )
    assert rtx.unwrap(packet, 96, MEDIA_SSRC) == rtp(
        osn, marker=marker, csrcs=csrcs, payload=payload
    )


# -- the subscriber's RTX stream --------------------------------------------------------------


def make_pair(
    *, publisher_rtx: bool = False, subscriber_rtx: bool = True
) -> tuple[Producer, Consumer, RecordingTransport, RecordingTransport]:
    up, down = RecordingTransport(), SubscriberTransport()
    producer = Producer(
        producer_id="pr",
        participant_id="p",
        kind="video",
        codec=Codec("video/VP8", 90000, 96),
        ssrc=MEDIA_SSRC,
        transport=up,  # type: ignore[arg-type]
        rtx_ssrc=RTX_SSRC if publisher_rtx else None,
        rtx_payload_type=RTX_PT if publisher_rtx else None,
    )
    consumer = Consumer(
        consumer_id="co",
        producer=producer,
        transport=down,  # type: ignore[arg-type]
        ssrc=SUB_SSRC,
        payload_type=SUB_PT,
        transport_cc=True,
        rtx_ssrc=SUB_RTX_SSRC if subscriber_rtx else None,
        rtx_payload_type=SUB_RTX_PT if subscriber_rtx else None,
    )
    down._tcc_word = (5 << 4 | 1) << 24  # type: ignore[attr-defined]
    producer.add_consumer(consumer)
    return producer, consumer, up, down


def payload_of(packet: bytes) -> bytes:
    return packet[parse_header(packet).payload_offset :]


def test_retransmissions_go_on_the_rtx_stream_with_contiguous_numbers_and_the_osn() -> None:
    producer, consumer, _, down = make_pair()
    frames = [KEY + b"0", DELTA + b"1", DELTA + b"2", DELTA + b"3"]
    for i, frame in enumerate(frames):
        producer.receive(rtp(10 + i, ts=3000 + i, payload=frame, marker=i == 2), 0.0)
    sent = [parse_header(p) for p in down.sent]
    out = [h.sequence_number for h in sent]
    down.sent.clear()
    before = consumer.packets, consumer.octets, consumer.next_seq
    retransmitted = COUNTERS.retransmitted_packets

    consumer.retransmit((out[2], out[0], out[3]), 0.1)
    consumer.retransmit((out[1],), 0.2)

    headers = [parse_header(p) for p in down.sent]
    assert [h.ssrc for h in headers] == [SUB_RTX_SSRC] * 4
    assert {h.payload_type for h in headers} == {SUB_RTX_PT}
    first = headers[0].sequence_number
    assert [h.sequence_number for h in headers] == [(first + k) & 0xFFFF for k in range(4)]
    order = [2, 0, 3, 1]
    for h, packet, i in zip(headers, down.sent, order, strict=True):
        body = payload_of(packet)
        assert struct.unpack("!H", body[:2])[0] == out[i]  # the OSN the subscriber knows
        assert body[2:] == frames[i]
        assert h.timestamp == sent[i].timestamp and h.marker == sent[i].marker
        assert h.extension_offset  # a transport-wide sequence number like every packet
    # The media stream's numbering and counters (its sender reports) are untouched; the
    # retransmissions count as such and on the RTX stream.
    assert (consumer.packets, consumer.octets, consumer.next_seq) == before
    assert consumer.rtx is not None and consumer.rtx.packets == 4
    assert COUNTERS.retransmitted_packets == retransmitted + 4
    assert down._retransmitted > 0  # type: ignore[attr-defined]
    # What the subscriber unwraps is the packet it missed.
    for packet, i in zip(down.sent, order, strict=True):
        original = rtx.unwrap(packet, SUB_PT, SUB_SSRC)
        assert original is not None and payload_of(original) == frames[i]
        assert parse_header(original).sequence_number == out[i]


def test_without_rtx_retransmissions_keep_the_media_ssrc() -> None:
    producer, consumer, _, down = make_pair(subscriber_rtx=False)
    producer.receive(rtp(10, payload=KEY), 0.0)
    out = parse_header(down.sent[0]).sequence_number
    down.sent.clear()
    consumer.retransmit((out,), 0.1)
    (h,) = [parse_header(p) for p in down.sent]
    assert (h.ssrc, h.payload_type, h.sequence_number) == (SUB_SSRC, SUB_PT, out)
    assert payload_of(down.sent[0]) == KEY


def test_a_nack_repeated_after_a_lost_retransmission_is_answered_again_until_too_old() -> None:
    producer, consumer, _, down = make_pair()
    producer.receive(rtp(10, payload=KEY), 0.0)
    out = parse_header(down.sent[0]).sequence_number
    down.sent.clear()
    for now in (0.1, 0.4, 0.9):  # the receiver asks again: each retransmission was lost
        consumer.retransmit((out,), now)
    assert len(down.sent) == 3
    for packet in down.sent:
        original = rtx.unwrap(packet, SUB_PT, SUB_SSRC)
        assert original is not None and payload_of(original) == KEY
        assert parse_header(original).sequence_number == out
    consumer.retransmit((out,), HISTORY_MAX_AGE + 0.01)  # older than the history keeps
    assert len(down.sent) == 3


def test_a_refused_retransmission_takes_no_rtx_number() -> None:
    producer, consumer, _, down = make_pair()
    producer.receive(rtp(10, payload=KEY), 0.0)
    out = parse_header(down.sent[0]).sequence_number
    assert consumer.rtx is not None
    rtx_seq = consumer.rtx.next_seq
    # A queue of more than MAX_RETRANSMIT_DELAY: the retransmission would come too late.
    pacer = down.pacer  # type: ignore[attr-defined]
    assert pacer.push(("nothing",), int(pacer.rate / 8 * 0.5))
    refused = COUNTERS.retransmissions_refused
    consumer.retransmit((out,), 0.1)
    assert COUNTERS.retransmissions_refused == refused + 1
    assert consumer.rtx.next_seq == rtx_seq and len(down.sent) == 1


class SubscriberTransport(RecordingTransport):
    """The recorded transport with ``SubscribeTransport``'s RTCP handling and probing."""

    _on_rtcp = SubscribeTransport._on_rtcp
    _start_probe = SubscribeTransport._start_probe
    _send_probe = SubscribeTransport._send_probe
    _apply = SubscribeTransport._apply
    _unqueue = SubscribeTransport._unqueue


def subscriber(consumer: Consumer, down: RecordingTransport) -> RecordingTransport:
    """Give ``down`` what ``SubscribeTransport``'s RTCP handling and probing read."""
    down.consumers = {"pr": consumer}  # type: ignore[attr-defined]
    down.by_ssrc = {consumer.ssrc: consumer}  # type: ignore[attr-defined]
    down.by_rtx_ssrc = {consumer.rtx.ssrc: consumer} if consumer.rtx else {}  # type: ignore[attr-defined]
    down.connected = True  # type: ignore[attr-defined]
    return down


def test_nacks_and_keyframe_requests_naming_the_rtx_ssrc() -> None:
    producer, consumer, up, down = make_pair()
    subscriber(consumer, down)
    producer.receive(rtp(10, payload=KEY), 0.0)
    out = parse_header(down.sent[0]).sequence_number
    down.sent.clear()
    ignored = COUNTERS.nacks_for_rtx
    # A NACK for the RTX stream is not answered (the receiver asks for the original).
    SubscribeTransport._on_rtcp(down, parse_rtcp(build_nack(9, SUB_RTX_SSRC, [out])))  # type: ignore[arg-type]
    assert down.sent == [] and COUNTERS.nacks_for_rtx == ignored + 1
    SubscribeTransport._on_rtcp(down, parse_rtcp(build_nack(9, SUB_SSRC, [out])))  # type: ignore[arg-type]
    assert [parse_header(p).ssrc for p in down.sent] == [SUB_RTX_SSRC]
    # A PLI naming the RTX SSRC asks the publisher for a keyframe of that video.
    up.rtcp.clear()
    SubscribeTransport._on_rtcp(down, parse_rtcp(build_pli(9, SUB_RTX_SSRC)))  # type: ignore[arg-type]
    assert [fb.kind for p in up.rtcp for fb in parse_rtcp(p)] == ["pli"]
    # Report blocks about the RTX stream do not count as the downlink's loss.
    block = ReportBlock(SUB_RTX_SSRC, 200, 5, 10, 0, 0, 0)
    rr = build_receiver_report(9, [block])
    SubscribeTransport._on_rtcp(down, parse_rtcp(rr))  # type: ignore[arg-type]
    assert consumer.last_fraction_lost == 0


async def test_probes_pad_on_the_rtx_stream_of_a_held_video() -> None:
    producer, consumer, _, down = make_pair()
    subscriber(consumer, down)
    producer.receive(rtp(10, payload=KEY), 0.0)
    down.sent.clear()
    consumer.held = True
    media = consumer.next_seq, consumer.seq_epoch_start, consumer.packets
    SubscribeTransport._start_probe(down, 2_000_000, 0.0)  # type: ignore[arg-type]
    if down._probe_handle is not None:  # type: ignore[attr-defined]
        down._probe_handle.cancel()  # the rest of the cluster is timer-driven: one burst will do
    headers = [parse_header(p) for p in down.sent]
    assert len(headers) >= 1
    assert {h.ssrc for h in headers} == {SUB_RTX_SSRC}
    assert {h.payload_type for h in headers} == {SUB_RTX_PT}
    seqs = [h.sequence_number for h in headers]
    assert seqs == [(seqs[0] + k) & 0xFFFF for k in range(len(seqs))]
    for packet, h in zip(down.sent, headers, strict=True):
        assert packet[0] & 0x20 and packet[h.payload_offset :] == PADDING  # padding only
        assert rtx.unwrap(packet, SUB_PT, SUB_SSRC) is rtx.PADDING_ONLY
    assert (consumer.next_seq, consumer.seq_epoch_start, consumer.packets) == media


async def test_without_rtx_probes_pad_on_the_held_videos_media_ssrc() -> None:
    producer, consumer, _, down = make_pair(subscriber_rtx=False)
    subscriber(consumer, down)
    producer.receive(rtp(10, payload=KEY), 0.0)
    down.sent.clear()
    consumer.held = True
    SubscribeTransport._start_probe(down, 2_000_000, 0.0)  # type: ignore[arg-type]
    if down._probe_handle is not None:  # type: ignore[attr-defined]
        down._probe_handle.cancel()  # type: ignore[attr-defined]
    assert down.sent and {parse_header(p).ssrc for p in down.sent} == {SUB_SSRC}


# -- the publisher's RTX stream ---------------------------------------------------------------


def test_a_publishers_retransmission_is_taken_as_the_original_arriving_late() -> None:
    producer, _, up, down = make_pair(publisher_rtx=True, subscriber_rtx=False)
    producer.receive(rtp(1, ts=100, payload=KEY), 0.0)
    producer.receive(rtp(2, ts=200, payload=DELTA + b"2"), 0.01)
    producer.receive(rtp(4, ts=400, payload=DELTA + b"4"), 0.02)
    (nack,) = parse_rtcp(up.rtcp[-1])
    assert nack.kind == "nack" and nack.media_ssrcs == (MEDIA_SSRC,) and nack.lost == (3,)
    assert len(producer.nacks) == 1
    received, jitter = producer.stats.received, producer.stats.jitter
    forwarded = [parse_header(p).sequence_number for p in down.sent]
    down.sent.clear()

    producer.receive_rtx(rtx_packet(50, 3, DELTA + b"3", ts=300), 0.5)

    assert len(producer.nacks) == 0  # no longer asked for
    assert producer.stats.received == received + 1
    assert producer.stats.jitter == jitter  # half a second late says nothing of jitter
    assert producer.packet_from_history(3, 0.5) == rtp(3, ts=300, payload=DELTA + b"3")
    assert producer.rtx_packets == 1
    # Forwarded to the consumer as its packet 3: between its 2 and 4.
    (h,) = [parse_header(p) for p in down.sent]
    assert h.sequence_number == (forwarded[1] + 1) & 0xFFFF
    assert (h.ssrc, h.payload_type) == (SUB_SSRC, SUB_PT)
    assert payload_of(down.sent[0]) == DELTA + b"3"
    # The report block still names the media SSRC, with nothing lost any more.
    block = producer.stats.report(MEDIA_SSRC, 1.0)
    assert block.ssrc == MEDIA_SSRC and block.packets_lost == 0 and block.highest_sequence == 4


def test_rtx_duplicates_padding_and_strangers_are_dropped_and_counted() -> None:
    producer, _, _, down = make_pair(publisher_rtx=True)
    producer.receive(rtp(1, payload=KEY), 0.0)
    producer.receive(rtp(2, payload=DELTA), 0.0)
    down.sent.clear()
    counts = (
        COUNTERS.rtx_duplicates,
        COUNTERS.rtx_padding_dropped,
        COUNTERS.dropped_malformed_rtx,
    )
    bitrate_input = producer.packets, producer.octets
    producer.receive_rtx(rtx_packet(50, 2, DELTA), 0.1)  # already here: a duplicate
    producer.receive_rtx(rtp(51, ssrc=RTX_SSRC, pt=RTX_PT, payload=b"", padding=224), 0.1)
    producer.receive_rtx(rtp(52, ssrc=RTX_SSRC, pt=RTX_PT, payload=b"", padding=224), 0.1)
    producer.receive_rtx(rtp(53, ssrc=RTX_SSRC, pt=RTX_PT, payload=b"\x00"), 0.1)  # 1 byte
    producer.receive_rtx(rtp(54, ssrc=RTX_SSRC, pt=96, payload=b"\x00\x03" + DELTA), 0.1)
    assert down.sent == []
    assert producer.rtx_padding == 2 and producer.rtx_packets == 0
    assert (producer.packets, producer.octets) == bitrate_input  # not the publisher's video
    assert (
        COUNTERS.rtx_duplicates,
        COUNTERS.rtx_padding_dropped,
        COUNTERS.dropped_malformed_rtx,
    ) == (counts[0] + 1, counts[1] + 2, counts[2] + 2)


@settings(max_examples=200)
@given(st.binary(min_size=12, max_size=80))
def test_rtx_garbage_never_raises(data: bytes) -> None:
    producer, _, _, _ = make_pair(publisher_rtx=True)
    producer.receive(rtp(1, payload=KEY), 0.0)
    data = bytes([0x80 | (data[0] & 0x3F), (data[1] & 0x80) | RTX_PT]) + data[2:]
    producer.receive_rtx(data, 0.0)


# -- a video held for lack of bandwidth ---------------------------------------------------------


async def test_a_held_videos_queued_packets_leave_the_pacer_and_its_numbering_has_no_gap() -> None:
    """Held (paused) at a link that carries less than it was sent, a video's packets still in
    the pacer's queue are taken out — the subscriber resumes at a keyframe, and they would
    only hold its audio back at the link — and the numbers they took are given out again."""
    producer, consumer, _, down = make_pair()
    subscriber(consumer, down)
    down.wants = lambda c: True  # type: ignore[attr-defined]
    pacer = down.pacer  # type: ignore[attr-defined]
    pacer.set_bitrate(200_000)  # a 1.5 KB burst: two packets go, four wait
    big = bytes(1000)
    producer.receive(rtp(10, payload=KEY + big), 0.0)
    for i in range(1, 6):
        producer.receive(rtp(10 + i, payload=DELTA + big), 0.0)
    sent = [parse_header(p).sequence_number for p in down.sent]
    assert len(sent) == 2 and len(pacer.queue) == 4
    first = sent[0]
    consumer.retransmit((first,), 0.0)  # queued behind the video: an RTX number is taken
    assert consumer.rtx is not None
    rtx_next = consumer.rtx.next_seq
    unqueued = COUNTERS.paced_unqueued
    consumer.held = True
    down._apply(consumer)  # type: ignore[attr-defined]
    assert consumer.paused and not pacer.queue and pacer.queued_bytes == 0
    assert COUNTERS.paced_unqueued == unqueued + 5
    assert consumer.next_seq == (sent[-1] + 1) & 0xFFFF  # the first number never sent
    assert consumer.rtx.next_seq == (rtx_next - 1) & 0xFFFF
    # Paused, it answers no NACK: what it had sent is of no use to a subscriber that resumes
    # at a keyframe.
    consumer.retransmit((first,), 0.1)
    assert not pacer.queue and len(down.sent) == len(sent)


def test_only_the_unsent_end_of_a_numbering_is_given_out_again() -> None:
    assert _unsent_tail(10, {7, 8, 9}) == 7
    assert _unsent_tail(10, {5, 8, 9}) == 8  # 6 and 7 went out: 5 stays a gap
    assert _unsent_tail(10, {3, 4}) == 10  # a late repair taken out behind sent packets
    assert _unsent_tail(1, {0xFFFE, 0xFFFF, 0}) == 0xFFFE  # across the wrap
