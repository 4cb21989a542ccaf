"""Pacing: what one subscriber's connection may put on the wire, and when. Sans-I/O.

A subscriber's downlink is a queue somewhere between the server and the phone (a mobile cell, a
home router). Whatever the server sends faster than that queue drains waits in it, and audio
waits behind video: a keyframe burst of 30 KB to a 300 kbps phone holds every audio packet
sent after it for 0.8 s. So the server keeps the queue on its own side, where it can choose the
order (draft-ietf-rmcat-gcc-02 §4 assumes such a pacer; libwebrtc's pacing controller and
pion's pacer are the usual shape):

* a token bucket of bytes, filled at the pacing rate (the downlink estimate times
  ``PACING_FACTOR``) and capped at ``BURST`` seconds of that rate (at least one full packet),
  so the server never sends a burst above what the estimate says the link carries;
* **audio is never queued**: it goes out at once and is charged to the bucket, so video (and
  retransmissions, and padding) yield to it — the bucket may go into debt, down to
  ``MAX_DEBT`` seconds of the rate, so a subscriber whose estimate is below its audio does not
  bank an unbounded debt;
* video packets go out at once while the bucket has tokens and nothing waits before them;
  otherwise they are queued in order and released as tokens come in. The caller asks
  ``next_send_in`` how long until the head of the queue may go, and sets one timer;
* the queue is bounded (``MAX_QUEUE_SECONDS`` at the current rate, ``MAX_QUEUE_PACKETS``):
  a packet past the bound is refused and counted — the allocator pauses video long before
  that, so the bound only matters while a link collapses;
* a paused video's queued packets are taken out (``remove``): a subscriber resumes at a
  keyframe, so they would only delay the audio behind them at the link;
* probes (padding at a chosen rate, to find out whether a link has recovered) are paced like
  video, at the probe's rate, and only while nothing media waits.

The pacer holds opaque items: the transport decides what an item is (a consumer's packet
fields) and writes the bytes when the pacer lets it go, so the transport-wide sequence number
is assigned in send order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

PACING_FACTOR = 1.25
"""Pacing rate over the estimate: room to drain what queued while the estimate was lower,
without bursting far above what the link is estimated to carry."""
BURST = 0.02
"""Seconds of the pacing rate the bucket can hold: a 20 ms burst at most."""
MIN_BURST_BYTES = 1500
"""A bucket always holds at least one full packet."""
MAX_DEBT = 0.5
"""Seconds of the pacing rate that audio may overdraw the bucket by."""
MAX_QUEUE_SECONDS = 2.0
"""Queued bytes beyond this many seconds at the pacing rate are refused."""
MAX_QUEUE_PACKETS = 2000
MIN_RATE = 10_000
"""Bits per second: the pacing rate never drops below this (an estimate of zero still lets a
packet out now and then, which is how the estimate learns that the link is back)."""


class Pacer:
    """One subscriber's token bucket and video queue."""

    __slots__ = (
        "_burst",
        "_last",
        "_rate",
        "dropped",
        "queue",
        "queued_bytes",
        "sent_bytes",
        "tokens",
    )

    def __init__(self, bitrate: int) -> None:
        self._rate = 0.0  # bytes per second
        self._burst = float(MIN_BURST_BYTES)
        self.tokens = 0.0
        self._last: float | None = None
        self.queue: deque[tuple[Any, int]] = deque()
        self.queued_bytes = 0
        self.sent_bytes = 0
        self.dropped = 0
        self.set_bitrate(bitrate)
        self.tokens = self._burst

    @property
    def rate(self) -> float:
        """The pacing rate in bits per second."""
        return self._rate * 8

    def set_bitrate(self, estimate: int) -> None:
        """Pace at ``PACING_FACTOR`` times the downlink estimate (bits per second)."""
        rate = max(MIN_RATE, estimate * PACING_FACTOR) / 8
        self._rate = rate
        self._burst = max(float(MIN_BURST_BYTES), rate * BURST)
        if self.tokens > self._burst:
            self.tokens = self._burst

    def _refill(self, now: float) -> None:
        last = self._last
        self._last = now
        if last is not None and now > last:
            tokens = self.tokens + (now - last) * self._rate
            self.tokens = tokens if tokens < self._burst else self._burst

    def charge(self, size: int, now: float) -> None:
        """Audio (never queued) went out: take its bytes from the bucket."""
        self._refill(now)
        tokens = self.tokens - size
        floor = -self._rate * MAX_DEBT - MIN_BURST_BYTES
        self.tokens = tokens if tokens > floor else floor
        self.sent_bytes += size

    def try_send(self, size: int, now: float) -> bool:
        """A video packet: True if it may go out now (its bytes are taken from the bucket);
        False if it must wait behind the queue or for tokens (then ``push`` it)."""
        # _refill, inlined: this runs for every video packet a subscriber is sent.
        last = self._last
        self._last = now
        tokens = self.tokens
        if last is not None and now > last:
            tokens += (now - last) * self._rate
            if tokens > self._burst:
                tokens = self._burst
        if tokens >= 0 and not self.queue:
            self.tokens = tokens - size
            self.sent_bytes += size
            return True
        self.tokens = tokens
        return False

    def push(self, item: Any, size: int) -> bool:
        """Queue a packet that may not go out now; False (and counted) past the bound."""
        if (
            len(self.queue) >= MAX_QUEUE_PACKETS
            or self.queued_bytes + size > self._rate * MAX_QUEUE_SECONDS + MIN_BURST_BYTES
        ):
            self.dropped += 1
            return False
        self.queue.append((item, size))
        self.queued_bytes += size
        return True

    def release(self, now: float) -> list[Any]:
        """The queued items whose turn has come, oldest first (their bytes are taken)."""
        self._refill(now)
        out = []
        queue = self.queue
        while queue and self.tokens >= 0:
            item, size = queue.popleft()
            self.queued_bytes -= size
            self.tokens -= size
            self.sent_bytes += size
            out.append(item)
        return out

    def take(self, size: int, now: float) -> bool:
        """Room for one padding packet now (nothing queued, tokens left)? Takes its bytes."""
        self._refill(now)
        if self.queue or self.tokens < 0:
            return False
        self.tokens -= size
        self.sent_bytes += size
        return True

    def next_send_in(self, now: float) -> float:
        """Seconds until the bucket has tokens again (0 when it has some now)."""
        self._refill(now)
        if self.tokens >= 0:
            return 0.0
        return -self.tokens / self._rate

    def queue_delay(self) -> float:
        """Seconds the queued bytes need at the pacing rate."""
        return self.queued_bytes / self._rate

    def remove(self, unwanted: Callable[[Any], bool]) -> list[Any]:
        """Take the queued items ``unwanted`` picks out of the queue (the others keep their
        order): the items taken, oldest first."""
        kept: deque[tuple[Any, int]] = deque()
        taken = []
        for item, size in self.queue:
            if unwanted(item):
                taken.append(item)
                self.queued_bytes -= size
            else:
                kept.append((item, size))
        self.queue = kept
        return taken

    def clear(self) -> list[Any]:
        """Forget the queue (a consumer paused or closed): the items that were waiting."""
        items = [item for item, _ in self.queue]
        self.queue.clear()
        self.queued_bytes = 0
        return items
