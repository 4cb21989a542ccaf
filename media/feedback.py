"""Feedback policy: pure state machines fed with times, no I/O.

* ``KeyframeThrottle`` — subscribers' PLI/FIR become at most one keyframe request per interval
  to the publisher (100 PLI/s from one subscriber must not turn into 100
  keyframes/s, each of which costs the publisher's uplink several times a normal frame).
* ``Budget`` — a token bucket, e.g. retransmissions per subscriber per second (NACK storms).
* ``ReceiveStats`` — what the SFU, as the publisher's receiver, reports in RTCP RR
  (RFC 3550 §6.4.1, §A.3 loss, §A.8 jitter) and which sequence numbers to NACK
  (RFC 4585 §6.2.1).
* ``NackTracker`` — the publisher's packets still missing, asked for again until they come or
  are too old to matter. A packet lost on the publisher's uplink is lost for every student, and
  on a lossy phone link one NACK is not enough: the NACK or the retransmission may be lost too.
  So each missing packet is asked for again about once a round trip — after
  ``max(rtt, NACK_MIN_INTERVAL)`` times a random 1.0–1.5 (so that the asks of a burst do not
  stay in lockstep with each other or with the publisher's pacing) — until it arrives, is older
  than ``NACK_MAX_AGE`` seconds or ``NACK_MAX_SEQ_AGE`` packets, or was asked
  ``NACK_MAX_TRIES`` times (libwebrtc's NackRequester follows the same idea). Memory is bounded
  (``NACK_MAX_TRACKED``; the oldest are dropped first).
* ``reflected_fraction_lost`` — the loss the SFU reports to an audio publisher: its own
  upstream loss, or the loss its weakest subscriber reports if that is higher, so the
  publisher's Opus encoder turns its in-band FEC (RFC 6716; ``useinbandfec``, RFC 7587) on
  for them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from .rtp import ReportBlock, seq_diff


class KeyframeThrottle:
    """At most one keyframe request per ``interval`` seconds; a request inside the window is
    remembered and becomes due when the window closes, so a late joiner still gets its keyframe.
    """

    __slots__ = ("_last", "interval", "pending")

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._last = float("-inf")
        self.pending = False

    def request(self, now: float) -> bool:
        """Record a request; True if one should be sent upstream now."""
        if now - self._last >= self.interval:
            self._last = now
            self.pending = False
            return True
        self.pending = True
        return False

    def due_in(self, now: float) -> float | None:
        """Seconds until a deferred request may go out, or None when nothing is deferred."""
        if not self.pending:
            return None
        return max(0.0, self._last + self.interval - now)


class Budget:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` banked."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last: float | None = None

    def take(self, now: float, cost: float = 1.0) -> bool:
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False


class ReceiveStats:
    """Reception statistics of one incoming stream, as its RTP receiver (RFC 3550 §A.1–A.8)."""

    __slots__ = (
        "_clock_rate",
        "_expected_prior",
        "_received_prior",
        "_transit",
        "base_seq",
        "cycles",
        "jitter",
        "last_sr_ntp",
        "last_sr_time",
        "max_seq",
        "received",
    )

    def __init__(self, clock_rate: int) -> None:
        self._clock_rate = clock_rate
        self.base_seq: int | None = None
        self.max_seq = 0
        self.cycles = 0
        self.received = 0
        self.jitter = 0.0
        self._transit: float | None = None
        self._expected_prior = 0
        self._received_prior = 0
        self.last_sr_ntp = 0
        self.last_sr_time = 0.0

    def add(self, seq: int, timestamp: int, arrival: float) -> list[int]:
        """Account for one packet; return the sequence numbers it shows to be missing."""
        self.received += 1
        missing: list[int] = []
        if self.base_seq is None:
            self.base_seq = seq
            self.max_seq = seq
        else:
            d = seq_diff(seq, self.max_seq)
            if d > 0:
                if d > 1:
                    # A gap: ask again for at most the 64 most recent packets of it.
                    missing = [(seq - k) & 0xFFFF for k in range(min(d - 1, 64), 0, -1)]
                if seq < self.max_seq:
                    self.cycles += 1 << 16
                self.max_seq = seq
        # Interarrival jitter (§A.8), in timestamp units.
        transit = arrival * self._clock_rate - timestamp
        if self._transit is not None:
            delta = abs(transit - self._transit)
            if delta < self._clock_rate * 10:  # ignore timestamp jumps (pause, new source)
                self.jitter += (delta - self.jitter) / 16
        self._transit = transit
        return missing

    def jitter_state(self) -> tuple[float | None, float]:
        """What the jitter estimate depends on, to put back after a packet that must not count
        for it (``restore_jitter``): a retransmission arrives a NACK round trip late."""
        return self._transit, self.jitter

    def restore_jitter(self, state: tuple[float | None, float]) -> None:
        self._transit, self.jitter = state

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    def report(self, ssrc: int, now: float) -> ReportBlock:
        """The RR report block for this stream, and start a new reporting interval (§A.3)."""
        base = self.base_seq if self.base_seq is not None else 0
        expected = self.extended_max - base + 1 if self.base_seq is not None else 0
        lost = expected - self.received
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        dlsr = 0
        if self.last_sr_time:
            dlsr = int((now - self.last_sr_time) * 65536)
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self.extended_max,
            jitter=int(self.jitter),
            lsr=(self.last_sr_ntp >> 16) & 0xFFFFFFFF,
            dlsr=dlsr,
        )


NACK_MIN_INTERVAL = 0.020
"""Seconds: the shortest wait before asking again, whatever the measured round trip."""
NACK_JITTER = 0.5
"""Each wait is the round trip times a random factor in [1, 1 + NACK_JITTER]."""
NACK_MAX_AGE = 1.0
"""Seconds after its first ask that a packet stops being asked for (the history the SFU keeps
for its subscribers, ``media.router.HISTORY_MAX_AGE``, is as long)."""
NACK_MAX_SEQ_AGE = 1000
"""A packet this many sequence numbers behind the newest is no longer asked for."""
NACK_MAX_TRIES = 10
"""Asks per packet, the first (immediate) one included."""
NACK_MAX_TRACKED = 512
"""Missing packets tracked at most; beyond, the oldest are forgotten."""


class NackTracker:
    """The missing packets of one incoming stream and when to ask for each again (sans-I/O).

    ``add`` records packets just asked for (the caller sends the first NACK at once),
    ``received`` forgets a packet that arrived (late or retransmitted) and follows the newest
    sequence number, and ``due`` returns the packets to ask for again now. Sequence numbers are
    16-bit and compared wrap-aware (``seq_diff``).
    """

    __slots__ = (
        "_entries",
        "_newest",
        "_rng",
        "asked",
        "given_up",
        "on_give_up",
        "recovered",
        "repeated",
    )

    def __init__(self, rng: random.Random | None = None) -> None:
        # seq → [first ask, last ask, asks, wait factor], in order of first ask.
        self._entries: dict[int, list[float]] = {}
        self._newest: int | None = None
        self._rng = rng or random.Random()
        self.asked = 0
        """Packets added (asked for a first time)."""
        self.repeated = 0
        """Asks again (``due``'s answers)."""
        self.recovered = 0
        """Asked-for packets that arrived after all."""
        self.given_up = 0
        """Asked-for packets forgotten without arriving (age, tries, or the memory bound)."""
        self.on_give_up: Callable[[int, list[float], float], None] | None = None
        """Told (seq, [first ask, last ask, asks, wait factor], now) of each packet given up:
        the trace of what stays missing for every subscriber."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, seq: int) -> bool:
        return seq in self._entries

    def add(self, missing: list[int], now: float) -> None:
        """These packets are missing and were just asked for (once)."""
        entries = self._entries
        rng = self._rng
        for seq in missing:
            seq &= 0xFFFF
            if seq in entries:
                continue
            entries[seq] = [now, now, 1.0, 1.0 + NACK_JITTER * rng.random()]
            self.asked += 1
            newest = self._newest
            if newest is None or seq_diff(seq, newest) > 0:
                self._newest = seq
        while len(entries) > NACK_MAX_TRACKED:
            oldest = next(iter(entries))
            self._give_up(oldest, entries.pop(oldest), now)

    def _give_up(self, seq: int, entry: list[float], now: float) -> None:
        self.given_up += 1
        if self.on_give_up is not None:
            self.on_give_up(seq, entry, now)

    def received(self, seq: int) -> list[float] | None:
        """A packet arrived (first time or retransmitted): it is no longer missing. Its entry
        ([first ask, last ask, asks, wait factor]) when it had been asked for."""
        newest = self._newest
        if newest is None or 0 < ((seq - newest) & 0xFFFF) < 0x8000:
            self._newest = seq
        if self._entries:
            entry = self._entries.pop(seq, None)
            if entry is not None:
                self.recovered += 1
            return entry
        return None

    def due(self, now: float, rtt: float) -> list[int]:
        """The packets to ask for again now (in order of first ask); forgets the hopeless."""
        entries = self._entries
        if not entries:
            return []
        wait = max(rtt, NACK_MIN_INTERVAL)
        newest = self._newest
        rng = self._rng
        out: list[int] = []
        dropped: list[int] = []
        for seq, entry in entries.items():
            if (
                now - entry[0] > NACK_MAX_AGE
                or (newest is not None and seq_diff(newest, seq) > NACK_MAX_SEQ_AGE)
                or entry[2] >= NACK_MAX_TRIES
            ):
                dropped.append(seq)
            elif now - entry[1] >= wait * entry[3]:
                entry[1] = now
                entry[2] += 1
                entry[3] = 1.0 + NACK_JITTER * rng.random()
                out.append(seq)
        for seq in dropped:
            self._give_up(seq, entries.pop(seq), now)
        self.repeated += len(out)
        return out


REFLECTED_LOSS_CAP = 26
"""Most downstream loss reflected (26/256 ≈ 10 %), in RTCP's fraction-lost units.

libwebrtc's audio sender hands the fraction lost of its SSRC's report block to the Opus encoder,
which smooths it into the loss rate it protects against with in-band FEC; ~10 % covers the few
per cent of random loss of the links this is for. The cumulative ``packets_lost`` of the block
stays the true upstream count, and 10 % is where loss-based congestion control starts to back
off (draft-ietf-rmcat-gcc §6), so a bad subscriber link is not mistaken for a congested uplink by
a sender that reads the fraction. The cap also bounds a forged report: the worst one student can
do is make the teacher's encoder spend some of its bitrate on FEC."""


def reflected_fraction_lost(
    upstream: int, downstream: Iterable[int], *, cap: int = REFLECTED_LOSS_CAP
) -> int:
    """The fraction lost (0–255, RFC 3550 §6.4.1) to report to an audio publisher: the larger
    of its own ``upstream`` loss and the worst loss its consumers report (``downstream``, at
    most ``cap``). The worst, not a percentile: the point is the weakest students' links, and
    the cap already bounds what one report can do. Values outside 0–255 are clamped."""
    upstream = min(255, max(0, upstream))
    worst = max(downstream, default=0)
    return max(upstream, min(cap, max(0, worst)))
