"""Pure helpers of the benchmark: sequence tracking, percentiles, /proc and Prometheus parsing.

Nothing here does I/O except the two small ``/proc`` readers at the bottom, which take the
directory as a parameter so tests can point them at fixtures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FrameAssembler",
    "ProcStat",
    "SendLog",
    "SeqTracker",
    "loss_fraction",
    "mean",
    "parse_proc_stat",
    "parse_prometheus_counter",
    "percentile",
    "process_tree_cpu_seconds",
    "rtp_payload",
    "vp8_frame_info",
]

_SEQ_MOD = 1 << 16
_HALF = 1 << 15
# How far back a late packet may land and still be recognised as a duplicate (packets).
_WINDOW = 1024
_WINDOW_MASK = (1 << _WINDOW) - 1


class SeqTracker:
    """Counts received packets of one RTP stream and the packets expected from its sequence numbers.

    Sequence numbers are extended to 64 bits across 16-bit wrap-around. A packet that arrives late
    (reordered) still counts as received; a duplicate within the last ``_WINDOW`` sequence
    numbers does not count twice. ``expected`` is ``highest - first + 1`` (RFC 3550 A.3), so the
    loss of a window is ``loss_fraction`` of two snapshots.
    """

    __slots__ = ("_seen", "duplicates", "first", "highest", "received", "reordered")

    def __init__(self) -> None:
        self.first: int | None = None
        self.highest = 0
        self.received = 0
        self.duplicates = 0
        self.reordered = 0
        # bit i set = extended sequence number ``highest - i`` was received
        self._seen = 0

    def add(self, seq: int) -> int:
        """Record one packet; returns its extended sequence number."""
        if self.first is None:
            self.first = self.highest = seq
            self._seen = 1
            self.received = 1
            return seq
        delta = (seq - self.highest) % _SEQ_MOD
        if delta == 0:
            self.duplicates += 1
            return self.highest
        if delta < _HALF:
            ext = self.highest + delta
            self._seen = ((self._seen << delta) | 1) & _WINDOW_MASK
            self.highest = ext
            self.received += 1
            return ext
        back = _SEQ_MOD - delta
        ext = self.highest - back
        if back < _WINDOW:
            bit = 1 << back
            if self._seen & bit:
                self.duplicates += 1
                return ext
            self._seen |= bit
        self.reordered += 1
        self.received += 1
        return ext

    @property
    def expected(self) -> int:
        if self.first is None:
            return 0
        return self.highest - self.first + 1

    def snapshot(self) -> tuple[int, int]:
        """``(expected, received)`` now, for :func:`loss_fraction`."""
        return self.expected, self.received


def loss_fraction(start: tuple[int, int], end: tuple[int, int]) -> float | None:
    """Fraction of packets lost between two ``(expected, received)`` snapshots (0 … 1).

    ``None`` when nothing was expected. Late packets from before the window can make the
    received count exceed the expected count by a little; that clamps to 0.
    """
    expected = end[0] - start[0]
    received = end[1] - start[1]
    if expected <= 0:
        return None
    return min(1.0, max(0.0, (expected - received) / expected))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with linear interpolation (NumPy's default method)."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0 … 100")
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def rtp_payload(data: bytes) -> bytes | None:
    """The payload of a serialized RTP packet (CSRCs, header extension and padding removed).

    ``None`` for anything that is not a well-formed RTP packet (e.g. RTCP).
    """
    if len(data) < 12 or data[0] >> 6 != 2 or 192 <= data[1] <= 223:
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data)
    if data[0] & 0x20:
        if end == 0 or data[-1] == 0:
            return None
        end -= data[-1]
    if offset > end:
        return None
    return data[offset:end]


def vp8_frame_info(payload: bytes) -> tuple[bool, bool]:
    """``(starts_frame, is_keyframe)`` of a VP8 RTP payload (RFC 7741).

    ``starts_frame`` is the S bit with partition index 0; ``is_keyframe`` is only meaningful when
    the packet starts a frame (the P bit of the VP8 payload header is 0).
    """
    if not payload:
        return False, False
    first = payload[0]
    if not (first & 0x10) or (first & 0x07):
        return False, False
    offset = 1
    if first & 0x80:
        if len(payload) < 2:
            return False, False
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= offset:
                return False, False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    if len(payload) <= offset:
        return True, False
    return True, not (payload[offset] & 0x01)


class SendLog:
    """When each RTP payload left the publisher, keyed by the payload's hash.

    The SFU forwards payloads byte for byte, so a subscriber finds the send time of what it
    received by hashing the payload. Entries older than ``keep`` seconds are dropped. A payload
    sent twice within ``keep`` seconds (e.g. a looped clip with a repeated audio packet) is
    ambiguous and yields no sample rather than a wrong one. Times must be positive (they come
    from ``time.perf_counter()``); an ambiguous entry is stored as its negated time.
    """

    __slots__ = ("_times", "ambiguous", "keep")

    def __init__(self, keep: float = 5.0) -> None:
        self.keep = keep
        self._times: dict[int, float] = {}
        self.ambiguous = 0

    def record(self, payload: bytes, now: float) -> None:
        key = hash(payload)
        times = self._times
        cutoff = now - self.keep
        previous = times.pop(key, None)
        if previous is not None and abs(previous) >= cutoff:
            self.ambiguous += 1
            times[key] = -now
        else:
            times[key] = now
        # insertion order is send order: drop a few expired entries from the front
        for _ in range(4):
            oldest = next(iter(times))
            if oldest == key or abs(times[oldest]) >= cutoff:
                break
            del times[oldest]

    def lookup(self, payload: bytes) -> float | None:
        sent = self._times.get(hash(payload))
        if sent is None or sent < 0:
            return None
        return sent

    def __len__(self) -> int:
        return len(self._times)


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    utime: int
    stime: int

    @property
    def ticks(self) -> int:
        return self.utime + self.stime


def parse_proc_stat(text: str) -> ProcStat:
    """Parse ``/proc/<pid>/stat`` (``comm`` may contain spaces and parentheses)."""
    head, sep, rest = text.rpartition(")")
    if not sep:
        raise ValueError("not a /proc stat line")
    pid = int(head.split("(", 1)[0])
    fields = rest.split()
    # fields[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15
    if len(fields) < 13:
        raise ValueError("truncated /proc stat line")
    return ProcStat(pid=pid, ppid=int(fields[1]), utime=int(fields[11]), stime=int(fields[12]))


def process_tree_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """CPU seconds (user + system) used so far by ``pid`` and its living descendants.

    ``None`` when ``pid`` does not exist. Threads are included (they are part of a process's
    stat); children that exited and were waited for are not (their CPU moves into the parent's
    ``cutime``, which this ignores on purpose: it is not time spent serving).
    """
    stats: dict[int, ProcStat] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = parse_proc_stat((entry / "stat").read_text())
        except (OSError, ValueError):
            continue
    if pid not in stats:
        return None
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        total += stats[current].ticks
        todo.extend(children.get(current, ()))
    return total / _clock_ticks()


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def parse_prometheus_counter(text: str, name: str) -> float | None:
    """Sum of all samples of metric ``name`` (any labels) in Prometheus text format.

    ``None`` when the metric is absent.
    """
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        rest = line[len(name) :]
        if rest and rest[0] not in " {":
            continue  # another metric with this prefix (e.g. ``_created``)
        if rest.startswith("{"):
            close = rest.rfind("}")
            if close < 0:
                continue
            rest = rest[close + 1 :]
        parts = rest.split()
        if not parts:
            continue
        try:
            total += float(parts[0])
        except ValueError:
            continue
        found = True
    return total if found else None


class FrameAssembler:
    """Tells when a VP8 frame has arrived complete (every packet from its start to its marker).

    Fed with ``(extended sequence number, marker, payload)`` of one video stream in arrival order.
    A packet of a frame that arrives before the frame's first packet makes that frame count as
    incomplete: conservative, and rare on loopback.
    """

    __slots__ = ("_count", "_key", "_start")

    def __init__(self) -> None:
        self._start: int | None = None
        self._key = False
        self._count = 0

    def add(self, ext: int, marker: bool, payload: bytes) -> tuple[bool, bool] | None:
        """``(complete, keyframe)`` when this packet ends a frame, else ``None``."""
        starts, key = vp8_frame_info(payload)
        if starts:
            self._start, self._key, self._count = ext, key, 1
        elif self._start is not None and ext > self._start:
            self._count += 1
        if not marker:
            return None
        if self._start is None:
            return False, False
        complete = self._count == ext - self._start + 1
        result = complete, self._key
        self._start = None
        return result
