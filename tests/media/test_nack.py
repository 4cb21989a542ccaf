"""Upstream NACKs repeated until the packet comes or is too old (media.feedback.NackTracker).

Unit tests of the state machine (hypothesis for wrap-around and bounds), then the repair it
buys at the Producer level: a seeded simulation of a publisher on a 10 % lossy uplink, with real
RTP packets through a real ``Producer`` and ``Consumer`` on a fake clock, the publish
transport's timer played by calling ``due`` every ``NACK_TICK``.
"""

from __future__ import annotations

import functools
import heapq
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from media.feedback import (
    NACK_JITTER,
    NACK_MAX_AGE,
    NACK_MAX_SEQ_AGE,
    NACK_MAX_TRACKED,
    NACK_MAX_TRIES,
    NACK_MIN_INTERVAL,
    NackTracker,
)
from media.router import Codec, Consumer, Producer
from media.rtp import HEADER, parse_rtcp, seq_diff
from media.transport import NACK_TICK
from tests.media.test_rtp import DELTA, KEY, RecordingTransport, rtp


def poll(
    tracker: NackTracker, start: float, end: float, rtt: float, step: float = 0.005
) -> dict[int, list[float]]:
    """Call ``due`` every ``step`` from ``start`` to ``end``: when each seq was asked again."""
    asked: dict[int, list[float]] = {}
    t = start
    while t <= end:
        for seq in tracker.due(t, rtt):
            asked.setdefault(seq, []).append(t)
        t = round(t + step, 6)
    return asked


def test_a_missing_packet_is_asked_again_about_once_a_round_trip_until_it_arrives() -> None:
    tracker = NackTracker(random.Random(1))
    tracker.add([10, 11], 0.0)
    assert tracker.due(0.0, 0.1) == []  # the first ask was just sent by the caller
    asked = poll(tracker, 0.0, 0.35, rtt=0.1)
    assert set(asked) == {10, 11}
    for times in asked.values():
        gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
        assert all(0.1 <= g <= 0.1 * (1 + NACK_JITTER) + 0.005 + 1e-9 for g in gaps), gaps
    tracker.received(10)
    later = poll(tracker, 0.36, 0.7, rtt=0.1)
    assert set(later) == {11}


def test_asks_stop_after_the_tries_or_the_age() -> None:
    tracker = NackTracker(random.Random(2))
    tracker.add([5], 0.0)
    asked = poll(tracker, 0.0, 3.0, rtt=0.0)  # 20 ms floor: the tries run out first
    assert len(asked[5]) == NACK_MAX_TRIES - 1 and 5 not in tracker
    assert all(b - a >= NACK_MIN_INTERVAL for a, b in zip(asked[5], asked[5][1:], strict=False))
    tracker.add([6], 10.0)
    asked = poll(tracker, 10.0, 13.0, rtt=0.3)  # a long round trip: the age runs out first
    assert len(asked[6]) < NACK_MAX_TRIES - 1
    assert max(asked[6]) - 10.0 <= NACK_MAX_AGE and 6 not in tracker


def test_a_packet_far_behind_the_newest_is_given_up_across_the_wrap() -> None:
    tracker = NackTracker(random.Random(3))
    tracker.add([65530, 65535, 0, 3], 0.0)
    tracker.received(4)
    tracker.received(0)  # arrived late
    assert 0 not in tracker and len(tracker) == 3
    assert tracker.due(0.2, 0.1) == [65530, 65535, 3]
    tracker.received((65535 + NACK_MAX_SEQ_AGE + 1) & 0xFFFF)
    assert tracker.due(0.4, 0.1) == [3]  # 65530 and 65535 are too far behind now
    assert 65535 not in tracker and 3 in tracker


def test_memory_is_bounded_and_the_oldest_go_first() -> None:
    tracker = NackTracker(random.Random(4))
    for start in range(0, 3 * NACK_MAX_TRACKED, 64):
        tracker.add([(start + k) & 0xFFFF for k in range(64)], start / 1000)
    assert len(tracker) == NACK_MAX_TRACKED
    assert 0 not in tracker and (3 * NACK_MAX_TRACKED - 1) in tracker


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.integers(0, 300), max_size=80)),
        st.tuples(st.just("received"), st.integers(0, 300)),
        st.tuples(st.just("due"), st.floats(0.0, 0.3)),
        st.tuples(st.just("wait"), st.floats(0.0, 0.5)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 0xFFFF), ops, st.floats(0.0, 0.5))
def test_never_more_than_the_limits_whatever_happens(
    base: int, script: list[tuple[str, object]], rtt: float
) -> None:
    """From any starting sequence number (so across the wrap): a seq that arrived is never
    asked for; none is asked more than the tries, after the age, or sooner than the floor;
    at most ``NACK_MAX_TRACKED`` are kept."""
    tracker = NackTracker(random.Random(base))
    now = 0.0
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    asks: dict[int, int] = {}
    arrived: set[int] = set()
    for op, arg in script:
        if op == "add":
            assert isinstance(arg, list)
            seqs = [(base + k) & 0xFFFF for k in arg]
            fresh = [s for s in seqs if s not in tracker]
            tracker.add(seqs, now)
            for s in fresh:
                first[s] = last[s] = now
                asks[s] = 1
                arrived.discard(s)
        elif op == "received":
            assert isinstance(arg, int)
            seq = (base + arg) & 0xFFFF
            tracker.received(seq)
            arrived.add(seq)
            assert seq not in tracker
        elif op == "wait":
            assert isinstance(arg, float)
            now += arg
        else:
            for s in tracker.due(now, rtt):
                assert s not in arrived
                assert now - first[s] <= NACK_MAX_AGE
                assert now - last[s] >= max(rtt, NACK_MIN_INTERVAL) - 1e-9
                asks[s] += 1
                assert asks[s] <= NACK_MAX_TRIES
                last[s] = now
        assert len(tracker) <= NACK_MAX_TRACKED


@given(st.integers(0, 0xFFFF), st.integers(1, 64))
def test_a_gap_straddling_the_wrap_is_tracked_and_cleared(base: int, n: int) -> None:
    tracker = NackTracker(random.Random(0))
    gap = [(base + k) & 0xFFFF for k in range(n)]
    tracker.add(gap, 0.0)
    tracker.received((base + n) & 0xFFFF)
    assert tracker.due(0.2, 0.1) == gap  # all due, in order
    for s in gap:
        tracker.received(s)
    assert len(tracker) == 0


# -- repair at the Producer level ------------------------------------------------------------


class Link:
    """A one-way path: seeded loss and a fixed delay, on the simulation's event queue."""

    def __init__(self, sim: Sim, loss: float, delay: float, seed: int) -> None:
        self.sim = sim
        self.loss = loss
        self.delay = delay
        self.rng = random.Random(seed)

    def send(self, deliver: Callable[[], None]) -> None:
        if self.rng.random() >= self.loss:
            self.sim.at(self.sim.now + self.delay, deliver)


class Sim:
    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._n = 0

    def at(self, t: float, action: Callable[[], None]) -> None:
        self._n += 1
        heapq.heappush(self._queue, (t, self._n, action))

    def run(self, until: float) -> None:
        while self._queue and self._queue[0][0] <= until:
            t, _, action = heapq.heappop(self._queue)
            self.now = t
            action()


def simulate(repeat: bool, seconds: float = 30.0, rate: int = 100) -> tuple[int, int, int]:
    """A publisher sending ``rate`` packets a second through 10 % loss each way (40 ms one
    way), answering NACKs from its history; the SFU's Producer NACKs gaps at once and, with
    ``repeat``, asks again from its NackTracker every ``NACK_TICK``. Returns (packets the
    subscriber should get, got, retransmissions)."""
    sim = Sim()
    up = Link(sim, 0.10, 0.04, seed=11)
    down = Link(sim, 0.10, 0.04, seed=12)
    sfu_side, subscriber = RecordingTransport(), RecordingTransport()
    producer = Producer(
        producer_id="pr",
        participant_id="p",
        kind="video",
        codec=Codec("video/VP8", 90000, 96),
        ssrc=1234,
        transport=sfu_side,  # type: ignore[arg-type]
    )
    consumer = Consumer(
        consumer_id="co",
        producer=producer,
        transport=subscriber,  # type: ignore[arg-type]
        ssrc=777,
        payload_type=120,
    )
    producer.add_consumer(consumer)
    sent: dict[int, bytes] = {}
    retransmissions = 0

    def arrive(packet: bytes) -> Callable[[], None]:
        return lambda: producer.receive(packet, sim.now)

    def publish(n: int) -> None:
        packet = rtp(n & 0xFFFF, ts=n * 900, payload=KEY if n == 0 else DELTA + bytes([n & 255]))
        sent[n & 0xFFFF] = packet
        if n == 0:
            sim.at(sim.now + up.delay, arrive(packet))  # the first keyframe gets through
        else:
            up.send(arrive(packet))

    def publisher_hears(nack: bytes) -> Callable[[], None]:
        def answer() -> None:
            nonlocal retransmissions
            for fb in parse_rtcp(nack):
                for seq in fb.lost:
                    if seq in sent:
                        retransmissions += 1
                        up.send(arrive(sent[seq]))

        return answer

    def sfu_sends_rtcp() -> None:
        for packet in sfu_side.rtcp:
            down.send(publisher_hears(packet))
        sfu_side.rtcp.clear()

    def publish_and_report(n: int) -> None:
        publish(n)
        sfu_sends_rtcp()

    def tick() -> None:
        due = producer.nacks.due(sim.now, 2 * up.delay)
        if due:
            sfu_side.send_nack(producer.ssrc, due)
        sim.at(sim.now + NACK_TICK, tick)

    count = int(seconds * rate)
    for n in range(count):
        sim.at(n / rate, functools.partial(publish_and_report, n))
    if repeat:
        sim.at(NACK_TICK, tick)
    for k in range(int((seconds + 2) / 0.005)):
        sim.at(k * 0.005, sfu_sends_rtcp)  # the SFU's RTCP leaves as soon as it is written
    sim.run(seconds + 2)

    first = HEADER.unpack_from(subscriber.sent[0])[2]
    got = {seq_diff(HEADER.unpack_from(p)[2], first) for p in subscriber.sent}
    expected = count - int(rate * NACK_MAX_AGE)  # the last second may still be in repair
    return expected, len({g for g in got if 0 <= g < expected}), retransmissions


def test_repeated_nacks_repair_a_ten_percent_lossy_uplink() -> None:
    expected, got, retransmissions = simulate(repeat=True)
    assert got >= 0.999 * expected, (got, expected)
    assert retransmissions < 0.2 * expected  # asks stop once the packet is there


def test_one_nack_per_gap_leaves_holes_on_the_same_uplink() -> None:
    """The comparison that shows what the repeats are for: NACK once, ~2 % stay lost."""
    expected, got, _ = simulate(repeat=False)
    assert got < 0.99 * expected, (got, expected)


def test_the_tracker_counts_asks_repairs_and_what_it_gave_up_on() -> None:
    """What /metrics shows of the upstream repair (``upstream_*``): packets asked for, asks
    again, packets that came after all, and those given up — each one told with its asks."""
    tracker = NackTracker(random.Random(6))
    gave_up: list[tuple[int, int]] = []
    tracker.on_give_up = lambda seq, entry, now: gave_up.append((seq, int(entry[2])))
    tracker.add([1, 2, 3], 0.0)
    tracker.add([3], 0.0)  # already asked: not counted twice
    assert tracker.asked == 3
    entry = tracker.received(2)
    assert entry is not None and entry[0] == 0.0 and tracker.recovered == 1
    assert tracker.received(2) is None and tracker.received(9) is None
    asked = poll(tracker, 0.0, 3.0, rtt=0.0)
    assert tracker.repeated == sum(len(t) for t in asked.values()) == 2 * (NACK_MAX_TRIES - 1)
    assert sorted(gave_up) == [(1, NACK_MAX_TRIES), (3, NACK_MAX_TRIES)]
    assert tracker.given_up == 2 and len(tracker) == 0
    for start in range(0, NACK_MAX_TRACKED + 10, 10):  # the memory bound gives up too
        tracker.add(list(range(100 + start, 110 + start)), 4.0)
    over = len(range(0, NACK_MAX_TRACKED + 10, 10)) * 10 - NACK_MAX_TRACKED
    assert tracker.given_up == 2 + over and len(gave_up) == 2 + over and gave_up[2][0] == 100
