"""A deterministic downlink for the estimator's tests: sender, shaped link, receiver.

The sender is the SFU toward one subscriber: audio at 40 kbit/s (100-byte packets every 20 ms),
video at whatever the estimate leaves (30 frames a second, each frame's packets sent at once),
and probe clusters of padding when ``DownlinkEstimator.next_probe`` asks for them. Every packet
gets a transport-wide sequence number and goes through ``on_sent``.

The link is ``tc tbf``: a token bucket (``rate``, ``burst`` bytes) in front of a drop-tail queue
bounded in time (``latency``: a packet that would wait longer is dropped), then random loss
(seeded) and a propagation delay. The receiver stamps arrivals on its own clock (offset from the
sender's) and, like Chromium, sends transport-wide feedback every 50–100 ms covering every
packet since the last report; the feedback is real RTCP bytes (``build_transport_feedback``)
read back with ``parse_rtcp`` after the return path's delay. For the fallbacks the receiver
sends receiver reports (fraction lost, once a second) and, in REMB mode, a REMB of 90 % of the
link's rate (a receiver whose own estimator has found its link; the sender's part is to obey).

The receiver's process can stall (``stalls``): CPU starvation, which holds every arrival
back and then stamps the backlog at once — a delay that grows and vanishes while the link
carries everything. The sender can be app-limited (``app_video``): video no faster than that
however high the estimate.

Everything the estimator is fed can be written to a JSON-lines trace and replayed.
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from media.bwe import DownlinkEstimator, probe_cluster_bytes
from media.rtp import (
    ReportBlock,
    build_receiver_report,
    build_remb,
    build_transport_feedback,
    parse_rtcp,
)

AUDIO_BITRATE = 40_000
AUDIO_PACKET = 100
VIDEO_MIN = 100_000
VIDEO_MTU = 1200
PROBE_PACKET = 1200
TICK = 0.001
STALL_READ = 0.00005
"""Seconds a starved receiver takes per packet of its backlog once it runs again."""


@dataclass
class Link:
    """A token-bucket shaper with a time-bounded drop-tail queue, loss and delay."""

    rate: float | None  # bit/s; None = unconstrained
    burst: int = 1500
    latency: float = 0.3
    delay: float = 0.025
    loss: float = 0.0
    seed: int = 1
    _tokens: float = field(default=0.0, init=False)
    _token_time: float = field(default=0.0, init=False)
    _last_departure: float = field(default=0.0, init=False)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._rng = random.Random(self.seed)

    def set_rate(self, rate: float | None, now: float) -> None:
        if self.rate is not None:
            self._tokens = self._tokens_at(max(now, self._token_time))
            self._token_time = max(now, self._token_time)
        else:
            self._tokens = float(self.burst)
            self._token_time = now
            self._last_departure = now
        self.rate = rate

    def _tokens_at(self, t: float) -> float:
        assert self.rate is not None
        return min(self.burst, self._tokens + (t - self._token_time) * self.rate / 8)

    def send(self, t: float, size: int) -> float | None:
        """The arrival time of a packet handed to the link at ``t``, or None if dropped."""
        if self.rate is None:
            departure = t
        else:
            start = max(t, self._last_departure)
            tokens = self._tokens_at(start)
            departure = start if tokens >= size else start + (size - tokens) * 8 / self.rate
            if departure - t > self.latency:
                return None  # the queue is full (tbf's latency bound)
            self._tokens = self._tokens_at(departure) - size
            self._token_time = departure
            self._last_departure = departure
        if self.loss and self._rng.random() < self.loss:
            return None
        return departure + self.delay


@dataclass
class Call:
    """One subscriber's downlink driven by its estimator's decisions."""

    link: Link
    estimator: DownlinkEstimator
    mode: str = "twcc"  # "twcc", "remb" or "rr"
    wanted: int = 1_500_000  # what the sender would send the subscriber if the link allowed
    app_video: int | None = None  # video the sender has (bit/s): app-limited below the estimate
    stalls: list[tuple[float, float]] = field(default_factory=list)
    """(start, seconds) the receiver's process is starved: it reads nothing and sends no
    feedback, then stamps the backlog one packet every ``STALL_READ`` seconds."""
    probing: bool = True
    clock_offset: float = 1234.567  # receiver clock minus sender clock
    seed: int = 7
    record: list[list[object]] | None = None
    estimates: list[tuple[float, int]] = field(default_factory=list)
    snapshots: list[tuple[float, dict[str, int | float | str]]] = field(default_factory=list)
    rate_changes: list[tuple[float, float | None]] = field(default_factory=list)
    sent_bits: list[tuple[float, int]] = field(default_factory=list)
    _seq: int = field(default=0, init=False)
    _tick: int = field(default=0, init=False)
    _video_rate: int = field(default=0, init=False)
    _probe: tuple[int, int, float, int] | None = field(default=None, init=False)
    _events: list[tuple[float, int, str, object]] = field(default_factory=list, init=False)
    _event_n: int = field(default=0, init=False)
    _arrivals: list[tuple[float, int]] = field(default_factory=list, init=False)
    _next_report: int = field(default=0, init=False)
    _received: dict[int, float] = field(default_factory=dict, init=False)
    _highest: int = field(default=-1, init=False)
    _fb_count: int = field(default=0, init=False)
    _next_feedback: float = field(default=0.1, init=False)
    _rr_expected: int = field(default=0, init=False)
    _rr_received: int = field(default=0, init=False)
    _rr_bytes: int = field(default=0, init=False)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._video_rate = max(0, self.estimator.estimate - AUDIO_BITRATE)

    @property
    def now(self) -> float:
        return self._tick * TICK

    def _log(self, *event: object) -> None:
        if self.record is not None:
            self.record.append(list(event))

    def _schedule(self, at: float, kind: str, payload: object) -> None:
        self._event_n += 1
        heapq.heappush(self._events, (at, self._event_n, kind, payload))

    def _send(self, t: float, size: int, cluster: int = -1) -> None:
        seq = self._seq & 0xFFFF
        self._seq += 1
        self.estimator.on_sent(seq, size, t, cluster)
        self._log("sent", round(t, 7), seq, size, cluster)
        self.sent_bits.append((t, size * 8))
        arrival = self.link.send(t, size)
        if arrival is not None:
            heapq.heappush(self._arrivals, (arrival, self._seq - 1))
        self._rr_expected += 1

    def run(self, until: float) -> None:
        est = self.estimator
        while self._tick <= round(until / TICK):
            t = self.now
            ms = self._tick
            for at, rate in self.rate_changes:
                if abs(at - t) < TICK / 2:
                    self.link.set_rate(rate, t)
            self._sender_events(t)
            self._receiver(t)
            if ms % 100 == 0:
                target = est.update(t)
                self._log("update", round(t, 7))
                self.estimates.append((t, target))
                self.snapshots.append((t, est.snapshot()))
                video = target - AUDIO_BITRATE
                if self.app_video is not None:
                    video = min(video, self.app_video)
                self._video_rate = video if video >= VIDEO_MIN else 0
                paused = self._video_rate == 0
                if self.probing and self._probe is None and self.mode == "twcc":
                    rate = est.next_probe(t, self.wanted, app_limited=paused)
                    if rate:
                        cid = est.start_probe(rate, t)
                        self._log("probe", round(t, 7), rate, cid)
                        self._probe = (cid, rate, t, probe_cluster_bytes(rate))
            if ms % 1000 == 500:
                rtt = 2 * self.link.delay
                est.on_rtt(rtt, t)
                self._log("rtt", round(t, 7), rtt)
            sends: list[tuple[float, int, int]] = []
            if ms % 20 == 0:
                sends.append((t, AUDIO_PACKET, -1))
            if ms % 100 in (0, 33, 66) and self._video_rate:
                frame = self._video_rate // 30 // 8
                k = 0
                while frame > 0:
                    size = min(frame, VIDEO_MTU)
                    sends.append((t + 1e-5 * (k + 1), size, -1))
                    frame -= size
                    k += 1
            if self._probe is not None:
                cid, rate, next_at, left = self._probe
                while left > 0 and next_at < t + TICK:
                    sends.append((max(next_at, t) + 5e-6, PROBE_PACKET, cid))
                    left -= PROBE_PACKET
                    next_at += PROBE_PACKET * 8 / rate
                self._probe = (cid, rate, next_at, left) if left > 0 else None
            for at, size, cluster in sorted(sends):
                self._send(at, size, cluster)
            self._tick += 1

    def _sender_events(self, t: float) -> None:
        est = self.estimator
        while self._events and self._events[0][0] <= t:
            _, _, kind, payload = heapq.heappop(self._events)
            assert isinstance(payload, bytes)
            self._log(kind, round(t, 7), payload.hex())
            for fb in parse_rtcp(payload):
                if fb.kind == "twcc":
                    assert fb.twcc is not None
                    est.on_transport_feedback(fb.twcc, t)
                elif fb.kind == "rr":
                    est.on_receiver_loss(fb.reports[0].fraction_lost, t)
                elif fb.kind == "remb":
                    est.on_remb(fb.bitrate, t)

    def _receiver(self, t: float) -> None:
        for start, seconds in self.stalls:
            if start <= t < start + seconds:
                return  # starved: the backlog waits in the socket
        stamp = t
        while self._arrivals and self._arrivals[0][0] <= t:
            arrival, ext = heapq.heappop(self._arrivals)
            if arrival < stamp - TICK:
                arrival = stamp
                stamp += STALL_READ
            self._received[ext] = arrival + self.clock_offset
            self._highest = max(self._highest, ext)
            self._rr_received += 1
        back = t + self.link.delay
        if self.mode == "twcc" and t >= self._next_feedback:
            self._next_feedback = t + self._rng.uniform(0.05, 0.1)
            if self._highest >= self._next_report:
                first = self._next_report
                arrivals = [self._received.pop(s, None) for s in range(first, self._highest + 1)]
                self._next_report = self._highest + 1
                packet = build_transport_feedback(
                    1, 2, first & 0xFFFF, self._fb_count & 0xFF, arrivals
                )
                self._fb_count += 1
                self._schedule(back, "fb", packet)
        if self.mode in ("rr", "remb") and self._tick % 1000 == 0 and self._tick:
            expected = self._rr_expected
            fraction = 0 if not expected else max(0, expected - self._rr_received) * 256 // expected
            self._rr_expected = self._rr_received = 0
            block = ReportBlock(2, min(fraction, 255), 0, 0, 0, 0, 0)
            packet = build_receiver_report(1, [block])
            if self.mode == "remb":
                capacity = self.link.rate if self.link.rate is not None else 10_000_000
                packet += build_remb(1, int(0.9 * capacity), [2])
            self._schedule(back, "rtcp", packet)

    def estimate_at(self, t: float) -> int:
        return next(e for at, e in self.estimates if at >= t - 1e-9)

    def estimates_between(self, a: float, b: float) -> list[int]:
        return [e for at, e in self.estimates if a - 1e-9 <= at <= b + 1e-9]

    def sent_rate(self, a: float, b: float) -> float:
        return sum(bits for at, bits in self.sent_bits if a <= at < b) / (b - a)


def write_trace(path: Path, record: list[list[object]], header: dict[str, object]) -> None:
    with path.open("w") as f:
        f.write(json.dumps({"trace": header}) + "\n")
        for event in record:
            f.write(json.dumps(event, separators=(",", ":")) + "\n")


def read_trace(path: Path) -> tuple[dict[str, object], Iterator[list[object]]]:
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])["trace"]
    return header, (json.loads(line) for line in lines[1:])


def _num(x: object) -> float:
    assert isinstance(x, int | float)
    return float(x)


def replay(
    events: Iterator[list[object]], estimator: DownlinkEstimator
) -> list[tuple[float, int, dict[str, int | float | str]]]:
    """Feed a recorded trace to ``estimator``; return (time, estimate, snapshot) per update."""
    out: list[tuple[float, int, dict[str, int | float | str]]] = []
    for event in events:
        kind = event[0]
        t = _num(event[1])
        if kind == "sent":
            seq, size, cluster = (int(_num(x)) for x in event[2:5])
            estimator.on_sent(seq, size, t, cluster)
        elif kind in ("fb", "rtcp"):
            for fb in parse_rtcp(bytes.fromhex(str(event[2]))):
                if fb.kind == "twcc":
                    assert fb.twcc is not None
                    estimator.on_transport_feedback(fb.twcc, t)
                elif fb.kind == "rr":
                    estimator.on_receiver_loss(fb.reports[0].fraction_lost, t)
                elif fb.kind == "remb":
                    estimator.on_remb(fb.bitrate, t)
        elif kind == "update":
            out.append((t, estimator.update(t), estimator.snapshot()))
        elif kind == "probe":
            got = estimator.start_probe(int(_num(event[2])), t)
            assert got == event[3], "probe cluster ids are handed out in order"
        elif kind == "rtt":
            estimator.on_rtt(_num(event[2]), t)
        else:
            raise ValueError(f"unknown trace event {kind!r}")
    return out


TRACES = Path(__file__).parent / "traces"


def record_standard_traces() -> None:
    """Rewrite the fixture traces (``python -m tests.media.linksim``)."""
    TRACES.mkdir(exist_ok=True)
    record: list[list[object]] = []
    call = Call(Link(2_000_000), DownlinkEstimator(), record=record)
    call.rate_changes = [(8.0, 150_000)]
    call.run(14.0)
    write_trace(
        TRACES / "drop_2m_to_150k.jsonl",
        record,
        {"link": "2 Mbit/s, 150 kbit/s from 8 s; queue 300 ms; 25 ms each way", "drop_at": 8.0},
    )
    record = []
    call = Call(Link(150_000), DownlinkEstimator(), record=record)
    call.rate_changes = [(8.0, None)]
    call.run(18.0)
    write_trace(
        TRACES / "recover_150k_to_unlimited.jsonl",
        record,
        {"link": "150 kbit/s, unconstrained from 8 s; 25 ms each way", "recover_at": 8.0},
    )


DECISIONS = TRACES / "decisions.json"
DECISION_KEYS = (
    "estimate",
    "delay_based",
    "loss_based",
    "acked_bitrate",
    "loss_fraction",
    "trend",
    "modified_trend",
    "threshold",
    "detector",
    "rate_control",
    "queue_delay",
    "feedbacks",
    "probe_result",
    "undone",
)


def decision_calls() -> dict[str, Call]:
    """Closed-loop calls whose every decision is pinned (``decisions.json``): any change to how
    the estimator computes them — a faster parser or feedback loop — must leave them equal."""
    calls: dict[str, tuple[Call, float]] = {}
    drop = Call(Link(2_000_000), DownlinkEstimator())
    drop.rate_changes = [(8.0, 150_000)]
    calls["drop"] = (drop, 14.0)
    recover = Call(Link(150_000), DownlinkEstimator())
    recover.rate_changes = [(8.0, None)]
    calls["recover"] = (recover, 16.0)
    calls["loss"] = (Call(Link(300_000, loss=0.05, seed=2), DownlinkEstimator(), seed=2), 16.0)
    bucket = Call(Link(300_000, burst=5000), DownlinkEstimator(start_bitrate=60_000))
    calls["bucket"] = (bucket, 12.0)
    stalls = [(8.0, 0.15), (11.0, 0.3), (14.5, 0.2)]
    calls["stalls"] = (
        Call(Link(10_000_000), DownlinkEstimator(), app_video=800_000, stalls=stalls),
        16.0,
    )
    for call, until in calls.values():
        call.run(until)
    return {name: call for name, (call, _) in calls.items()}


def decisions_of(call: Call) -> list[list[object]]:
    return [[round(t, 3), *(s[k] for k in DECISION_KEYS)] for t, s in call.snapshots]


def record_decisions() -> None:
    """Rewrite ``decisions.json`` (``python -m tests.media.linksim decisions``): only when a
    change is meant to alter what the estimator decides."""
    out = {name: decisions_of(call) for name, call in decision_calls().items()}
    DECISIONS.write_text(json.dumps(out, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["decisions"]:
        record_decisions()
    else:
        record_standard_traces()
