"""Publisher policing (media/policing.py): a flood is cut, an honest stream never meets it."""

from __future__ import annotations

import pytest

from media.policing import FACTOR, Policer
from media.router import COUNTERS, Codec, Producer
from tests.media.test_rtp import DELTA, KEY, RecordingTransport, rtp

CAP = 1_500_000


def policed_producer(kind: str = "video") -> Producer:
    """A producer whose admitted packets are ``packets`` / ``octets`` (counted after the
    policer; what it admits goes to the history and every consumer)."""
    codec = Codec("video/VP8", 90000, 96) if kind == "video" else Codec("audio/opus", 48000, 111)
    return Producer(
        producer_id="pr",
        participant_id="p",
        kind=kind,
        codec=codec,
        ssrc=1234,
        transport=RecordingTransport(),  # type: ignore[arg-type]
        policer=Policer.for_stream(kind, CAP),
    )


def send(producer: Producer, bitrate: float, seconds: float, size: int = 1100) -> int:
    """Packets of ``size`` bytes at ``bitrate`` for ``seconds``; returns how many were sent."""
    rate = bitrate / 8 / size
    count = int(rate * seconds)
    for n in range(count):
        payload = (KEY if n == 0 else DELTA) + bytes(size - 13)
        producer.receive(rtp(n & 0xFFFF, ts=n * 3000, payload=payload), n / rate)
    return count


def test_a_stream_at_its_cap_with_a_big_keyframe_is_never_policed() -> None:
    producer = policed_producer()
    policed = COUNTERS.policed_packets
    # A 200 kB keyframe at once (a 720p camera's), then the cap for 10 s.
    for n in range(180):
        producer.receive(rtp(60000 + n, ts=0, payload=KEY + bytes(1100)), 0.0)
    sent = send(producer, CAP, 10.0)
    assert COUNTERS.policed_packets == policed
    assert producer.packets == sent + 180


def test_ten_times_the_negotiated_rate_is_cut_to_the_policed_rate() -> None:
    producer = policed_producer()
    policed = COUNTERS.policed_packets
    seconds = 10.0
    sent = send(producer, 10 * CAP, seconds)
    admitted = producer.octets + 12 * producer.packets  # with their RTP headers
    # At most FACTOR × the cap, plus the one second of burst.
    assert admitted <= FACTOR * CAP / 8 * (seconds + 1)
    assert admitted >= 0.9 * FACTOR * CAP / 8 * seconds
    assert COUNTERS.policed_packets - policed == sent - producer.packets > 0.6 * sent


def test_a_flood_of_tiny_packets_is_cut_by_the_packet_rate() -> None:
    producer = policed_producer("audio")
    sent = send(producer, 40 * 8 * 10_000, 5.0, size=40)  # 10 000 packets a second
    assert sent == 50_000
    assert producer.packets <= FACTOR * 100 * 6  # FACTOR × 100 pps over 5 s, plus 1 s of burst


def test_a_policer_needs_positive_rates() -> None:
    with pytest.raises(ValueError):
        Policer(0, 10)
    with pytest.raises(ValueError):
        Policer(1000, 0)
