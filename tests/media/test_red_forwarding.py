"""RED through the router (Producer.red → Consumer.red) and loss reflection toward audio
publishers — real packet bytes through the forwarding path, sockets recorded."""

from __future__ import annotations

from media import red
from media.feedback import REFLECTED_LOSS_CAP, reflected_fraction_lost
from media.red import RedSink, RedSource
from media.router import COUNTERS, Codec, Consumer, Producer
from media.rtp import ReportBlock, parse_header
from media.transport import _reflect_loss
from tests.media.test_rtp import RecordingTransport, rtp

PUB_OPUS, PUB_RED = 111, 63  # Chromium's numbers
SUB_OPUS, SUB_RED = 96, 100  # another numbering on the subscriber's connection


def red_setup() -> tuple[Producer, Consumer, Consumer, RecordingTransport, RecordingTransport]:
    up, to_red, to_plain = RecordingTransport(), RecordingTransport(), RecordingTransport()
    source = RedSource(PUB_RED, PUB_OPUS)
    producer = Producer(
        producer_id="pr",
        participant_id="teacher",
        kind="audio",
        codec=Codec("audio/opus", 48000, PUB_OPUS),
        ssrc=1234,
        transport=up,  # type: ignore[arg-type]
        red=source,
    )
    consumers = []
    for i, (transport, red_type) in enumerate(((to_red, SUB_RED), (to_plain, None))):
        consumer = Consumer(
            consumer_id=f"c{i}",
            producer=producer,
            transport=transport,  # type: ignore[arg-type]
            ssrc=700 + i,
            payload_type=SUB_OPUS,
            red=RedSink(source, SUB_OPUS, red_type),
        )
        producer.add_consumer(consumer)
        consumers.append(consumer)
    return producer, consumers[0], consumers[1], to_red, to_plain


def red_payload(n: int) -> bytes:
    """What Chromium sends for frame ``n``: frame n-1 as redundancy (960 samples earlier)."""
    return red.encode([(PUB_OPUS, 960, f"frame{n - 1}".encode())], PUB_OPUS, f"frame{n}".encode())


def payload_of(packet: bytes) -> bytes:
    return packet[parse_header(packet).payload_offset :]


def test_red_is_forwarded_as_red_and_unwrapped_for_the_other_subscriber() -> None:
    producer, to_red_c, to_plain_c, to_red, to_plain = red_setup()
    for n in range(1, 4):
        producer.receive(rtp(n, ts=960 * n, pt=PUB_RED, marker=n == 1, payload=red_payload(n)), 0)
    assert len(to_red.sent) == len(to_plain.sent) == 3
    for n, (r, p) in enumerate(zip(to_red.sent, to_plain.sent, strict=True), start=1):
        hr, hp = parse_header(r), parse_header(p)
        assert (hr.payload_type, hp.payload_type) == (SUB_RED, SUB_OPUS)
        assert hr.marker == hp.marker == (n == 1)
        blocks = red.parse(payload_of(r))
        assert blocks is not None
        assert [b[0] for b in blocks] == [SUB_OPUS, SUB_OPUS]
        assert [payload_of(r)[s:e] for _, _, s, e in blocks] == [
            f"frame{n - 1}".encode(),
            f"frame{n}".encode(),
        ]
        assert payload_of(p) == f"frame{n}".encode()
        # The primary carries the packet's timestamp: each consumer's offset, unchanged steps.
        assert (hr.timestamp - to_red_c.ts_offset) & 0xFFFFFFFF == 960 * n
        assert (hp.timestamp - to_plain_c.ts_offset) & 0xFFFFFFFF == 960 * n
    seqs = [parse_header(p).sequence_number for p in to_plain.sent]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(3)]


def test_plain_opus_from_a_red_publisher_reaches_both_as_opus() -> None:
    producer, _, _, to_red, to_plain = red_setup()
    producer.receive(rtp(1, pt=PUB_OPUS, payload=b"\x78plain"), 0)
    for packet in (*to_red.sent, *to_plain.sent):
        assert parse_header(packet).payload_type == SUB_OPUS
        assert payload_of(packet) == b"\x78plain"


def test_malformed_red_is_dropped_and_counted_once() -> None:
    producer, _, _, to_red, to_plain = red_setup()
    before = COUNTERS.dropped_malformed_red
    producer.receive(rtp(1, pt=PUB_RED, payload=bytes([0x80 | PUB_OPUS, 0, 0])), 0)
    producer.receive(rtp(2, pt=PUB_RED, payload=red.encode([], 0, b"pcmu")), 0)  # not Opus
    producer.receive(rtp(3, pt=13, payload=b"\x40"), 0)  # comfort noise: not negotiated
    assert COUNTERS.dropped_malformed_red == before + 3
    assert to_red.sent == [] and to_plain.sent == []
    producer.receive(rtp(4, pt=PUB_RED, payload=red_payload(4)), 0)
    assert len(to_red.sent) == len(to_plain.sent) == 1


def test_a_nacked_red_packet_is_not_resent_from_history() -> None:
    producer, _, to_plain_c, _, to_plain = red_setup()
    producer.receive(rtp(1, pt=PUB_RED, payload=red_payload(1)), 0)
    producer.receive(rtp(2, pt=PUB_RED, payload=red_payload(2)), 0)
    first = parse_header(to_plain.sent[0]).sequence_number
    to_plain_c.retransmit((first,), 0.1)
    assert len(to_plain.sent) == 2  # the RED of packet 1 is not sent again (nor as Opus)


def test_consumers_of_a_producer_without_red_are_untouched() -> None:
    up, down = RecordingTransport(), RecordingTransport()
    producer = Producer(
        producer_id="pr",
        participant_id="p",
        kind="audio",
        codec=Codec("audio/opus", 48000, PUB_OPUS),
        ssrc=1,
        transport=up,  # type: ignore[arg-type]
    )
    consumer = Consumer(
        consumer_id="c",
        producer=producer,
        transport=down,  # type: ignore[arg-type]
        ssrc=2,
        payload_type=SUB_OPUS,
    )
    producer.add_consumer(consumer)
    producer.receive(rtp(1, ssrc=1, pt=PUB_OPUS, payload=red_payload(1)), 0)
    assert payload_of(down.sent[0]) == red_payload(1)  # forwarded as it came
    assert parse_header(down.sent[0]).payload_type == SUB_OPUS


# -- loss reflection ----------------------------------------------------------------------------


def test_reflected_loss_is_the_larger_of_upstream_and_the_worst_subscriber() -> None:
    assert reflected_fraction_lost(0, []) == 0
    assert reflected_fraction_lost(7, []) == 7
    assert reflected_fraction_lost(0, [0, 13, 2]) == 13  # 5 % on one phone link
    assert reflected_fraction_lost(20, [0, 13, 2]) == 20
    assert reflected_fraction_lost(0, [255]) == REFLECTED_LOSS_CAP
    assert reflected_fraction_lost(200, [255]) == 200  # real upstream loss is never capped
    assert reflected_fraction_lost(-5, [-3]) == 0
    assert reflected_fraction_lost(300, []) == 255
    assert reflected_fraction_lost(0, [40], cap=50) == 40


def report_block(fraction: int) -> ReportBlock:
    return ReportBlock(1234, fraction, 3, 70000, 5, 0, 0)


def test_audio_report_blocks_reflect_unpaused_subscribers_loss() -> None:
    producer, to_red_c, to_plain_c, _, _ = red_setup()
    to_red_c.last_fraction_lost = 13
    to_plain_c.last_fraction_lost = 2
    block = _reflect_loss(producer, report_block(1))
    assert block.fraction_lost == 13 and block.packets_lost == 3  # cumulative stays true
    to_red_c.paused = True  # receives nothing: its report says nothing about the stream
    assert _reflect_loss(producer, report_block(1)).fraction_lost == 2


def test_video_report_blocks_never_reflect_subscribers_loss() -> None:
    up, down = RecordingTransport(), RecordingTransport()
    producer = Producer(
        producer_id="v",
        participant_id="teacher",
        kind="video",
        codec=Codec("video/VP8", 90000, 96),
        ssrc=1234,
        transport=up,  # type: ignore[arg-type]
    )
    consumer = Consumer(
        consumer_id="c",
        producer=producer,
        transport=down,  # type: ignore[arg-type]
        ssrc=2,
        payload_type=96,
    )
    producer.add_consumer(consumer)
    consumer.last_fraction_lost = 128
    assert _reflect_loss(producer, report_block(1)) == report_block(1)
