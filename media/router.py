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
  connection); the subscriber's transport writes its own when the packet goes out
  (``SubscribeTransport.send_media``): the transport-wide sequence number its downlink estimate
  is built on, or, for a browser without transport-wide feedback, abs-send-time for REMB.

* Retransmission (RFC 4588, ``media/rtx.py``): a subscriber that kept ``rtx`` in its answer
  gets each NACKed packet on the consumer's RTX stream (``RtxStream``: own SSRC, payload type
  and contiguous sequence numbers; the payload is the sequence number the subscriber knows,
  then the original payload), so its statistics and feedback can tell repairs from media; one
  without RTX gets the packet again on the media SSRC. A publisher's RTX packets are unwrapped
  and taken as the original arriving late (``Producer.receive_rtx``).

The consumer hands each rewritten packet to its transport, which forwards audio at once and
paces video (``media.pacer``); whether a video consumer forwards at all is the subscriber's view,
its data saver and its downlink's allocation (``media.allocation``) together.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .feedback import Budget, KeyframeThrottle, NackTracker, ReceiveStats
from .red import RedSink, RedSource
from .rtp import HEADER, keyframe_detector, seq_diff
from .rtx import payload as rtx_payload
from .rtx import unwrap as unwrap_rtx

if TYPE_CHECKING:
    from .policing import Policer
    from .transport import PublishTransport, SubscribeTransport

trace = logging.getLogger("media.trace")
"""Repair and bandwidth decisions, one line each with its time, at debug level (``lophoc serve
--trace-media``): what a benchmark lines up with what a student saw and heard."""

HISTORY_SIZE = 1024
"""Packets kept per producer for retransmission (≈ 1 s of 800 kbps video plus slack)."""
HISTORY_MASK = HISTORY_SIZE - 1
HISTORY_MAX_AGE = 1.0
"""Seconds after which a packet is too old to be worth retransmitting."""
WIRE_OVERHEAD = 12 + 8 + 10 + 28
"""Bytes a forwarded packet costs beyond its payload: RTP header, header extensions, SRTP tag,
UDP and IPv4 headers. A subscriber's downlink carries all of it."""
RATE_WINDOW = 1.0
"""Seconds a producer's bitrate is smoothed over."""
DUPLICATE_WINDOW = 10.0
"""Seconds within which a retransmission of a packet the history holds is a duplicate (the
sequence number space of a 1000-packet-a-second stream wraps in 65 s)."""


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
        "allocation_holds",
        "allocation_resumes",
        "dropped_malformed",
        "dropped_malformed_red",
        "dropped_malformed_rtx",
        "dropped_unknown_ssrc",
        "dropped_unprotect",
        "dropped_unvalidated",
        "forwarded_bytes",
        "forwarded_packets",
        "keyframe_requests",
        "nacks_for_rtx",
        "nacks_received",
        "paced_dropped",
        "paced_unqueued",
        "padding_packets",
        "policed_bytes",
        "policed_packets",
        "probes",
        "received_packets",
        "refused_destinations",
        "retransmissions_refused",
        "retransmissions_unavailable",
        "retransmitted_packets",
        "rtx_duplicates",
        "rtx_padding_dropped",
        "rtx_received",
        "transport_feedback",
        "upstream_given_up",
        "upstream_nack_repeats",
        "upstream_nacked",
        "upstream_recovered",
    )

    dropped_malformed: int
    dropped_malformed_red: int
    dropped_malformed_rtx: int
    dropped_unknown_ssrc: int
    dropped_unprotect: int
    dropped_unvalidated: int
    forwarded_bytes: int
    forwarded_packets: int
    allocation_holds: int
    allocation_resumes: int
    keyframe_requests: int
    nacks_for_rtx: int
    nacks_received: int
    paced_dropped: int
    paced_unqueued: int
    padding_packets: int
    policed_bytes: int
    policed_packets: int
    probes: int
    received_packets: int
    refused_destinations: int
    retransmissions_refused: int
    retransmissions_unavailable: int
    retransmitted_packets: int
    rtx_duplicates: int
    rtx_padding_dropped: int
    rtx_received: int
    transport_feedback: int
    upstream_given_up: int
    upstream_nack_repeats: int
    upstream_nacked: int
    upstream_recovered: int

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
        rtx_ssrc: int | None = None,
        rtx_payload_type: int | None = None,
        policer: Policer | None = None,
    ) -> None:
        self.id = producer_id
        self.mid = mid  # the publisher's media section
        self.participant_id = participant_id
        self.kind = kind
        self.codec = codec  # for a RED publisher: the Opus its RED blocks carry
        self.red = red  # set when the publisher sends RED (RFC 2198) wrapping ``codec``
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc if rtx_payload_type is not None else None
        """The publisher's RTX stream (RFC 4588) for this one, when negotiated and announced."""
        self.rtx_payload_type = rtx_payload_type
        self.rtx_packets = 0  # retransmissions received on the RTX stream, unwrapped
        self.rtx_padding = 0  # padding-only RTX packets (the publisher's probes), dropped
        self.transport = transport
        self.consumers: list[Consumer] = []
        self.paused = False
        self.closed = False
        self.is_keyframe_start = keyframe_detector(codec.name)
        self.stats = ReceiveStats(codec.clock_rate)
        self.nacks = NackTracker()  # asked again by the publish transport's NACK timer
        self.nacks.on_give_up = self._gave_up
        self.keyframes = KeyframeThrottle(keyframe_interval)
        self.policer = policer  # media.policing: drops what is far above the negotiated rate
        # Retransmission history: slot = seq & mask → (seq, arrival time, packet bytes).
        self.history: list[tuple[int, float, bytes] | None] = [None] * HISTORY_SIZE
        # The publisher's latest sender report: (NTP timestamp, RTP timestamp).
        self.sender_report: tuple[int, int] | None = None
        self.packets = 0
        self.octets = 0
        self.last_packet_at = 0.0
        self.on_keyframe_request: Callable[[Producer], None] | None = None
        self.priority = 2
        """For subscribers' allocation: 0 the teacher and screen share, 1 a pinned or speaking
        student, 2 the rest (``media.allocation``)."""
        self.bitrate = 0.0
        """What the publisher sends now, bits per second on the wire (``measure``)."""
        self._measured: tuple[float, int, int] | None = None

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
        policer = self.policer
        if policer is not None and not policer.admit(n, now):
            COUNTERS.policed_packets += 1
            COUNTERS.policed_bytes += n
            return
        _, b1, seq, ts, _ = HEADER.unpack_from(data)
        self.packets += 1
        self.octets += n - offset
        self.last_packet_at = now
        missing = self.stats.add(seq, ts, now)
        nacks = self.nacks
        if missing:
            self.transport.send_nack(self.ssrc, missing)
            asked = nacks.asked
            nacks.add(missing, now)
            COUNTERS.upstream_nacked += nacks.asked - asked
        recovered = nacks.received(seq)
        if recovered is not None:
            COUNTERS.upstream_recovered += 1
            if trace.isEnabledFor(logging.DEBUG):
                trace.debug(
                    "t=%.3f producer %s: seq %d came %.0f ms after its first NACK (%d asks)",
                    now,
                    self.id,
                    seq,
                    (now - recovered[0]) * 1000,
                    recovered[2],
                )
        self.history[seq & HISTORY_MASK] = (seq, now, data)
        if self.paused:
            return
        payload = data[offset:]
        marker = b1 & 0x80
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
            c.send(b0, marker, seq, ts, payload, now)
        if keyframe is False:
            # Someone still waits: keep asking (the throttle sends at most one a second). The
            # first request may have been lost — sent before the publisher's SRTP was up — and
            # a browser neither sends a keyframe by itself nor asks for one before it has one.
            self.request_keyframe(now)

    def receive_rtx(self, data: bytes, now: float) -> None:
        """One unprotected packet of this producer's RTX stream (RFC 4588; ``media.rtx``).

        A retransmission is unwrapped and then taken exactly as the original arriving late
        (``receive``): counted as received, no longer NACKed, kept in the history and forwarded
        to every consumer, each of which had a gap there — but not fed to the jitter estimate,
        which it would only inflate by a NACK round trip (libwebrtc leaves recovered packets
        out of it too). A packet already received (the original came after all, or the
        publisher pads with old packets, as libwebrtc does when probing) is dropped, and so is
        a padding-only packet: nothing is forwarded that subscribers already have or never
        needed."""
        if data[1] & 0x7F != self.rtx_payload_type:
            COUNTERS.dropped_malformed_rtx += 1
            return
        original = unwrap_rtx(data, self.codec.payload_type, self.ssrc)
        if original is None:
            COUNTERS.dropped_malformed_rtx += 1
            return
        if not original:  # padding only
            self.rtx_padding += 1
            COUNTERS.rtx_padding_dropped += 1
            return
        seq = (original[2] << 8) | original[3]
        entry = self.history[seq & HISTORY_MASK]
        if entry is not None and entry[0] == seq and now - entry[1] < DUPLICATE_WINDOW:
            COUNTERS.rtx_duplicates += 1
            return
        self.rtx_packets += 1
        COUNTERS.rtx_received += 1
        jitter = self.stats.jitter_state()
        self.receive(original, now)
        self.stats.restore_jitter(jitter)

    def _gave_up(self, seq: int, entry: list[float], now: float) -> None:
        COUNTERS.upstream_given_up += 1
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug(
                "t=%.3f producer %s: gave up on seq %d after %d asks, %.0f ms",
                now,
                self.id,
                seq,
                entry[2],
                (now - entry[0]) * 1000,
            )

    def measure(self, now: float) -> float:
        """Update ``bitrate`` from what arrived since the last call (an average smoothed over
        about ``RATE_WINDOW`` seconds, so one keyframe does not look like a new rate)."""
        last = self._measured
        self._measured = (now, self.packets, self.octets)
        if last is None or now <= last[0]:
            return self.bitrate
        dt = now - last[0]
        bits = ((self.octets - last[2]) + (self.packets - last[1]) * WIRE_OVERHEAD) * 8
        weight = min(1.0, dt / RATE_WINDOW)
        self.bitrate += (bits / dt - self.bitrate) * weight
        return self.bitrate

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
        "audio",
        "closed",
        "held",
        "id",
        "kind",
        "last_fraction_lost",
        "last_ts",
        "next_seq",
        "octets",
        "packets",
        "paused",
        "payload_type",
        "producer",
        "red",
        "retransmit_budget",
        "rr_state",
        "rtx",
        "seq_epoch_start",
        "seq_offset",
        "skipped",
        "ssrc",
        "transport",
        "transport_cc",
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
        transport_cc: bool = False,
        retransmit_rate: float = 100.0,
        red: RedSink | None = None,
        rtx_ssrc: int | None = None,
        rtx_payload_type: int | None = None,
    ) -> None:
        self.id = consumer_id
        self.producer = producer
        self.kind = producer.kind
        self.audio = producer.kind == "audio"
        self.transport_cc = transport_cc
        """The subscriber negotiated transport-wide sequence numbers on this m-line."""
        self.held = False
        """Paused by the subscriber's downlink allocation (``media.allocation``)."""
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
        self.last_ts = self.ts_offset
        self.packets = 0
        self.octets = 0
        self.last_fraction_lost = 0
        self.skipped = 0
        """Numbers of this stream never sent: packets the publisher's uplink lost and nobody
        repaired (the numbering is the publisher's, shifted). The subscriber counts them lost."""
        self.rr_state: tuple[int, int, int] | None = None
        """(highest sequence, cumulative lost, skipped) at the subscriber's last report."""
        self.retransmit_budget = Budget(rate=retransmit_rate, burst=retransmit_rate)
        self.rtx = (
            RtxStream(self, rtx_ssrc, rtx_payload_type)
            if rtx_ssrc is not None and rtx_payload_type is not None and not self.audio
            else None
        )
        """The subscriber's RTX stream (RFC 4588), when its answer kept ``rtx``: where
        retransmissions and probe padding go."""

    def start_at(self, seq: int) -> None:
        """Begin (or resume) forwarding at the producer's packet ``seq``: keep our numbering
        contiguous across the gap."""
        self.seq_offset = (self.next_seq - seq) & 0xFFFF
        self.seq_epoch_start = self.next_seq
        self.waiting_for_keyframe = False

    def send(self, b0: int, marker: int, seq: int, ts: int, payload: bytes, now: float) -> None:
        """Rewrite one of the producer's packets for this subscriber and hand it on."""
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
        ahead = seq_diff(out_seq, self.next_seq)
        if ahead >= 0:
            if ahead:
                self.skipped += ahead  # a gap the publisher's uplink left
            self.next_seq = (out_seq + 1) & 0xFFFF
        elif self.skipped:
            self.skipped -= 1  # a late packet (the publisher's repair) fills one
        out_ts = (ts + self.ts_offset) & 0xFFFFFFFF
        self.last_ts = out_ts
        self.transport.send_media(
            self, b0 & 0x20, marker | payload_type, out_seq, out_ts, payload, now
        )

    def downlink_loss(self, highest: int, cumulative_lost: int) -> int | None:
        """The share (of 256) of what this stream *sent* that the subscriber lost since its
        previous report (RFC 3550 §6.4.1's fraction, less what was never sent): a receiver
        report counts the publisher's uplink losses as lost too, and they say nothing of the
        downlink. None for the first report, or when nothing was sent in between."""
        previous = self.rr_state
        self.rr_state = (highest, cumulative_lost, self.skipped)
        if previous is None:
            return None
        expected = highest - previous[0]
        never_sent = self.skipped - previous[2]
        sent = expected - never_sent
        if expected <= 0 or sent <= 0:
            return None
        lost = cumulative_lost - previous[1] - never_sent
        return max(0, min(255, (lost << 8) // sent))

    def retransmit(self, out_seqs: tuple[int, ...], now: float) -> None:
        """Answer a subscriber's NACK from the producer's history, within this consumer's
        budget (RFC 4585 §6.2.1: a NACK storm stays a bounded trickle). Audio is never
        retransmitted: no subscriber negotiates NACK for it, and RED carries its repair. Nor
        is a paused video: it resumes at a keyframe, which needs none of what came before."""
        if self.audio or self.paused:
            return
        producer = self.producer
        for out_seq in out_seqs:
            # Only packets numbered in the current epoch map back to producer packets.
            if seq_diff(out_seq, self.seq_epoch_start) < 0 or seq_diff(out_seq, self.next_seq) >= 0:
                continue
            seq = (out_seq - self.seq_offset) & 0xFFFF
            data = producer.packet_from_history(seq, now)
            if data is None:
                COUNTERS.retransmissions_unavailable += 1
                if trace.isEnabledFor(logging.DEBUG):
                    entry = producer.history[seq & HISTORY_MASK]
                    trace.debug(
                        "t=%.3f consumer %s: NACK for seq %d unanswerable (%s)",
                        now,
                        self.id,
                        seq,
                        "still asked upstream"
                        if seq in producer.nacks
                        else f"in history {now - entry[1]:.3f} s"
                        if entry is not None and entry[0] == seq
                        else "never arrived",
                    )
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
            out_ts = (ts + self.ts_offset) & 0xFFFFFFFF
            rtx = self.rtx
            if rtx is None:
                # Not send(): a retransmission keeps its number and never moves next_seq.
                self.transport.send_media(
                    self,
                    b0 & 0x20,
                    (b1 & 0x80) | self.payload_type,
                    out_seq,
                    out_ts,
                    data[offset:],
                    now,
                    retransmission=True,
                )
                continue
            # RFC 4588 §4: the RTX stream's own next number; OSN + the original payload (its
            # padding, if any, stays at the end, where the P bit says it is).
            rtx_seq = rtx.next_seq
            if self.transport.send_media(
                rtx,
                b0 & 0x20,
                (b1 & 0x80) | rtx.payload_type,
                rtx_seq,
                out_ts,
                rtx_payload(out_seq, data[offset:]),
                now,
                retransmission=True,
            ):
                rtx.next_seq = (rtx_seq + 1) & 0xFFFF  # contiguous: only what goes out counts

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


class RtxStream:
    """A consumer's RTX stream (RFC 4588): its own SSRC, payload type and sequence numbers.

    It stands in for its consumer on the subscriber's send path (``SubscribeTransport.send_media``
    and ``_emit`` read the same attributes of either), so a retransmission is paced, numbered
    in the transport-wide sequence and counted like any packet, and the consumer's own counters
    (its sender reports) stay those of the media stream."""

    __slots__ = (
        "abs_send_time",
        "audio",
        "consumer",
        "next_seq",
        "octets",
        "packets",
        "payload_type",
        "ssrc",
        "transport_cc",
    )

    def __init__(self, consumer: Consumer, ssrc: int, payload_type: int) -> None:
        self.consumer = consumer
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.audio = False
        self.transport_cc = consumer.transport_cc
        self.abs_send_time = consumer.abs_send_time
        self.next_seq = secrets.randbelow(0x8000)
        self.packets = 0
        self.octets = 0

    @property
    def closed(self) -> bool:
        return self.consumer.closed
