"""Producers and consumers: the forwarding loop of the SFU.

A ``Producer`` is one incoming stream (a participant's microphone or camera); a ``Consumer``
forwards one producer to one subscriber. ``Producer.receive`` is the whole per-packet path after
SRTP unprotect: read the header fields, keep the packet for retransmission, and for each unpaused
consumer rewrite SSRC, payload type, sequence number and timestamp, then protect and send — one
synchronous loop, no ``await``, no allocation beyond the outgoing packet, counters only (the
mediasoup model: fan-out is a plain loop over a producer's consumers).

Rewriting, per consumer (RFC 3550 §5.1, §8.2 on SSRC choice; RFC 7667 §3.7 on what a
switching middlebox owes its receivers):

* SSRC: the consumer's own, announced in the subscriber's SDP.
* Payload type: the one negotiated on the subscriber's connection (browsers number codecs
  differently).
* Sequence numbers: contiguous for the subscriber. A consumer starts (and resumes after a pause)
  at a keyframe, and its offset is chosen so that the first packet follows the last one it sent:
  packets the subscriber never got because the consumer was paused are not "lost" to it.
* Timestamps: a random per-consumer offset, constant for the consumer's life, so the sender
  reports the consumer sends map its timestamps to the publisher's clock exactly.
* Redundant audio (RFC 2198, ``media/red.py``): a publisher's RED packets are parsed once, before
  the fan-out (``Producer.red``); each consumer then sends them as RED with its subscriber's
  payload types, or unwrapped to plain Opus for a subscriber that did not negotiate RED
  (``Consumer.red``). A malformed RED packet is dropped and counted.
* Header extensions: the publisher's are dropped (their ids mean nothing on the subscriber's
  connection); video carries the SFU's own abs-send-time so the subscriber can estimate
  bandwidth and report REMB.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._aiortc import ABS_SEND_TIME_ID
from .feedback import Budget, KeyframeThrottle, ReceiveStats
from .red import RedSink, RedSource
from .rtp import HEADER, abs_send_time_block, keyframe_detector, seq_diff

if TYPE_CHECKING:
    from .transport import PublishTransport, SubscribeTransport

HISTORY_SIZE = 1024
"""Packets kept per producer for retransmission (≈ 1 s of 800 kbps video plus slack)."""
HISTORY_MASK = HISTORY_SIZE - 1
HISTORY_MAX_AGE = 1.0
"""Seconds after which a packet is too old to be worth retransmitting."""


@dataclass(frozen=True)
class Codec:
    """The codec a producer publishes with, as negotiated with the publisher."""

    mime_type: str  # e.g. "video/VP8"
    clock_rate: int
    payload_type: int  # the publisher's payload type
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.mime_type.split("/", 1)[1]


class Counters:
    """Process-wide counters of the media plane (read by /metrics; never logged per packet)."""

    __slots__ = (
        "dropped_malformed",
        "dropped_malformed_red",
        "dropped_unknown_ssrc",
        "dropped_unprotect",
        "dropped_unvalidated",
        "forwarded_bytes",
        "forwarded_packets",
        "keyframe_requests",
        "nacks_received",
        "received_packets",
        "refused_destinations",
        "retransmissions_refused",
        "retransmitted_packets",
    )

    dropped_malformed: int
    dropped_malformed_red: int
    dropped_unknown_ssrc: int
    dropped_unprotect: int
    dropped_unvalidated: int
    forwarded_bytes: int
    forwarded_packets: int
    keyframe_requests: int
    nacks_received: int
    received_packets: int
    refused_destinations: int
    retransmissions_refused: int
    retransmitted_packets: int

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


COUNTERS = Counters()


class Producer:
    """One incoming RTP stream of a publisher."""

    def __init__(
        self,
        *,
        producer_id: str,
        participant_id: str,
        kind: str,
        codec: Codec,
        ssrc: int,
        transport: PublishTransport,
        keyframe_interval: float = 1.0,
        mid: str | None = None,
        red: RedSource | None = None,
    ) -> None:
        self.id = producer_id
        self.mid = mid  # the publisher's media section
        self.participant_id = participant_id
        self.kind = kind
        self.codec = codec  # for a RED publisher: the Opus its RED blocks carry
        self.red = red  # set when the publisher sends RED (RFC 2198) wrapping ``codec``
        self.ssrc = ssrc
        self.transport = transport
        self.consumers: list[Consumer] = []
        self.paused = False
        self.closed = False
        self.is_keyframe_start = keyframe_detector(codec.name)
        self.stats = ReceiveStats(codec.clock_rate)
        self.keyframes = KeyframeThrottle(keyframe_interval)
        # Retransmission history: slot = seq & mask → (seq, arrival time, packet bytes).
        self.history: list[tuple[int, float, bytes] | None] = [None] * HISTORY_SIZE
        # The publisher's latest sender report: (NTP timestamp, RTP timestamp).
        self.sender_report: tuple[int, int] | None = None
        self.packets = 0
        self.octets = 0
        self.last_packet_at = 0.0
        self.on_keyframe_request: Callable[[Producer], None] | None = None

    # -- the per-packet path --------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> None:
        """Forward one unprotected RTP packet of this producer to every unpaused consumer."""
        b0 = data[0]
        n = len(data)
        offset = 12 + ((b0 & 0x0F) << 2)
        if b0 & 0x10:
            if n < offset + 4:
                COUNTERS.dropped_malformed += 1
                return
            offset += 4 + (((data[offset + 2] << 8) | data[offset + 3]) << 2)
        if offset > n or n < 12 or (b0 & 0x20 and (data[-1] == 0 or offset + data[-1] > n)):
            COUNTERS.dropped_malformed += 1
            return
        _, b1, seq, ts, _ = HEADER.unpack_from(data)
        self.packets += 1
        self.octets += n - offset
        self.last_packet_at = now
        missing = self.stats.add(seq, ts, now)
        if missing:
            self.transport.send_nack(self.ssrc, missing)
        self.history[seq & HISTORY_MASK] = (seq, now, data)
        if self.paused:
            return
        payload = data[offset:]
        marker = b1 & 0x80
        ext = (
            abs_send_time_block(ABS_SEND_TIME_ID, int(now * 262144))
            if self.kind == "video"
            else b""
        )
        # -- RED (RFC 2198): validate once per packet, for every consumer's branch in send() --
        red = self.red
        if red is not None and not red.accept(b1 & 0x7F, payload):
            COUNTERS.dropped_malformed_red += 1
            return
        # -- end RED --
        keyframe: bool | None = None
        for c in self.consumers:
            if c.paused:
                continue
            if c.waiting_for_keyframe:
                if keyframe is None:
                    keyframe = self.is_keyframe_start is None or self.is_keyframe_start(payload)
                if not keyframe:
                    continue
                c.start_at(seq)
            c.send(b0, marker, seq, ts, payload, ext)
        if keyframe is False:
            # Someone still waits: keep asking (the throttle sends at most one a second). The
            # first request may have been lost — sent before the publisher's SRTP was up — and
            # a browser neither sends a keyframe by itself nor asks for one before it has one.
            self.request_keyframe(now)

    # -- control ---------------------------------------------------------------------------

    def request_keyframe(self, now: float) -> None:
        """A subscriber needs a keyframe: ask the publisher, at most once per interval."""
        if self.kind != "video" or self.closed:
            return
        if self.keyframes.request(now):
            COUNTERS.keyframe_requests += 1
            self.transport.send_pli(self.ssrc)
        elif self.on_keyframe_request is not None:
            self.on_keyframe_request(self)

    def packet_from_history(self, seq: int, now: float) -> bytes | None:
        entry = self.history[seq & HISTORY_MASK]
        if entry is None or entry[0] != seq or now - entry[1] > HISTORY_MAX_AGE:
            return None
        return entry[2]

    def add_consumer(self, consumer: Consumer) -> None:
        self.consumers.append(consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)

    def close(self) -> None:
        self.closed = True
        for c in list(self.consumers):
            c.close()
        self.consumers.clear()


class Consumer:
    """One producer forwarded to one subscriber."""

    __slots__ = (
        "abs_send_time",
        "closed",
        "id",
        "kind",
        "last_fraction_lost",
        "next_seq",
        "octets",
        "packets",
        "paused",
        "payload_type",
        "producer",
        "red",
        "retransmit_budget",
        "seq_epoch_start",
        "seq_offset",
        "ssrc",
        "transport",
        "ts_offset",
        "waiting_for_keyframe",
    )

    def __init__(
        self,
        *,
        consumer_id: str,
        producer: Producer,
        transport: SubscribeTransport,
        ssrc: int,
        payload_type: int,
        abs_send_time: bool = False,
        retransmit_rate: float = 100.0,
        red: RedSink | None = None,
    ) -> None:
        self.id = consumer_id
        self.producer = producer
        self.kind = producer.kind
        self.transport = transport
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.red = red
        """Set for a RED producer: send its packets as RED, or unwrapped to Opus."""
        self.abs_send_time = abs_send_time and producer.kind == "video"
        self.paused = False
        self.closed = False
        self.waiting_for_keyframe = True
        self.next_seq = secrets.randbelow(0x8000)  # low half: no early wrap (as browsers do)
        self.seq_offset = 0
        self.seq_epoch_start = self.next_seq
        self.ts_offset = secrets.randbits(32)
        self.packets = 0
        self.octets = 0
        self.last_fraction_lost = 0
        self.retransmit_budget = Budget(rate=retransmit_rate, burst=retransmit_rate)

    def start_at(self, seq: int) -> None:
        """Begin (or resume) forwarding at the producer's packet ``seq``: keep our numbering
        contiguous across the gap."""
        self.seq_offset = (self.next_seq - seq) & 0xFFFF
        self.seq_epoch_start = self.next_seq
        self.waiting_for_keyframe = False

    def send(self, b0: int, marker: int, seq: int, ts: int, payload: bytes, ext: bytes) -> None:
        payload_type = self.payload_type
        # -- RED (RFC 2198, media/red.py): payload and payload type for this subscriber --------
        # ``payload`` is the packet Producer.receive gave red.accept(); None means send nothing.
        red = self.red
        if red is not None:
            sent = red.transform(payload)
            if sent is None:
                return
            payload_type, payload = sent
        # -- end RED ------------------------------------------------------------------------------
        out_seq = (seq + self.seq_offset) & 0xFFFF
        if seq_diff(out_seq, self.next_seq) >= 0:
            self.next_seq = (out_seq + 1) & 0xFFFF
        if ext and self.abs_send_time:
            packet = (
                HEADER.pack(
                    0x90 | (b0 & 0x20),
                    marker | payload_type,
                    out_seq,
                    (ts + self.ts_offset) & 0xFFFFFFFF,
                    self.ssrc,
                )
                + ext
                + payload
            )
        else:
            packet = (
                HEADER.pack(
                    0x80 | (b0 & 0x20),
                    marker | payload_type,
                    out_seq,
                    (ts + self.ts_offset) & 0xFFFFFFFF,
                    self.ssrc,
                )
                + payload
            )
        if self.transport.send_rtp(packet):
            self.packets += 1
            self.octets += len(payload)

    def retransmit(self, out_seqs: tuple[int, ...], now: float) -> None:
        """Answer a subscriber's NACK from the producer's history, within this consumer's
        budget (RFC 4585 §6.2.1; SECURITY.md item 15)."""
        producer = self.producer
        for out_seq in out_seqs:
            # Only packets numbered in the current epoch map back to producer packets.
            if seq_diff(out_seq, self.seq_epoch_start) < 0 or seq_diff(out_seq, self.next_seq) >= 0:
                continue
            seq = (out_seq - self.seq_offset) & 0xFFFF
            data = producer.packet_from_history(seq, now)
            if data is None:
                continue
            if not self.retransmit_budget.take(now):
                COUNTERS.retransmissions_refused += 1
                return
            b0 = data[0]
            offset = 12 + ((b0 & 0x0F) << 2)
            if b0 & 0x10:
                offset += 4 + (((data[offset + 2] << 8) | data[offset + 3]) << 2)
            _, b1, _, ts, _ = HEADER.unpack_from(data)
            COUNTERS.retransmitted_packets += 1
            # send() only moves next_seq forward, so a retransmission never disturbs it.
            ext = abs_send_time_block(ABS_SEND_TIME_ID, int(now * 262144))
            self.send(b0, b1 & 0x80, seq, ts, data[offset:], ext)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """Forward again from the next keyframe (asked for at once)."""
        if not self.paused or self.closed:
            return
        self.paused = False
        if self.kind == "video":
            self.waiting_for_keyframe = True
            self.producer.request_keyframe(self.transport.now())
        else:
            self.waiting_for_keyframe = True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.paused = True
        self.producer.remove_consumer(self)
        self.transport.forget_consumer(self)
