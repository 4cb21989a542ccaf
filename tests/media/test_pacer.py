"""The pacer: audio never waits, video never bursts above the estimate, the queue is bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from media.pacer import (
    BURST,
    MAX_DEBT,
    MAX_QUEUE_SECONDS,
    MIN_BURST_BYTES,
    PACING_FACTOR,
    Pacer,
)


def test_video_goes_out_at_once_while_the_bucket_has_tokens() -> None:
    pacer = Pacer(1_000_000)
    assert pacer.try_send(1200, 0.0)
    assert pacer.sent_bytes == 1200


def test_video_waits_once_the_burst_is_spent_and_leaves_at_the_pacing_rate() -> None:
    pacer = Pacer(300_000)
    now = 0.0
    sent_now = 0
    while pacer.try_send(1200, now):
        sent_now += 1200
    # at most one burst (20 ms of the pacing rate, at least one packet) plus the packet
    # that took the bucket below zero
    assert sent_now <= max(MIN_BURST_BYTES, 300_000 * PACING_FACTOR / 8 * BURST) + 1200
    for i in range(50):
        assert pacer.push(i, 1200)
    assert pacer.release(now) == []
    released: list[int] = []
    t = now
    while pacer.queue:
        t += pacer.next_send_in(t) + 1e-6
        released += pacer.release(t)
    assert released == list(range(50))  # in order
    rate = 50 * 1200 * 8 / t
    assert rate <= 300_000 * PACING_FACTOR * 1.05
    assert rate >= 300_000 * PACING_FACTOR * 0.9


def test_audio_is_never_queued_but_charged_so_video_yields() -> None:
    pacer = Pacer(100_000)
    while pacer.try_send(1000, 0.0):
        pass
    pacer.charge(100, 0.0)  # audio: goes whatever the bucket says
    wait = pacer.next_send_in(0.0)
    pacer2 = Pacer(100_000)
    while pacer2.try_send(1000, 0.0):
        pass
    assert wait > pacer2.next_send_in(0.0)


def test_audio_debt_is_bounded() -> None:
    pacer = Pacer(20_000)
    for _ in range(10_000):
        pacer.charge(200, 0.0)
    rate_bytes = pacer.rate / 8
    assert pacer.tokens >= -(rate_bytes * MAX_DEBT) - MIN_BURST_BYTES
    assert pacer.next_send_in(0.0) <= MAX_DEBT + MIN_BURST_BYTES / rate_bytes + 1e-9


def test_the_queue_refuses_packets_past_its_bound() -> None:
    pacer = Pacer(100_000)
    while pacer.try_send(1200, 0.0):
        pass
    accepted = 0
    while pacer.push(accepted, 1200):
        accepted += 1
    assert pacer.dropped == 1
    assert pacer.queued_bytes <= pacer.rate / 8 * MAX_QUEUE_SECONDS + MIN_BURST_BYTES
    assert pacer.queue_delay() <= MAX_QUEUE_SECONDS + MIN_BURST_BYTES / (pacer.rate / 8)


def test_nothing_overtakes_the_queue() -> None:
    pacer = Pacer(100_000)
    while pacer.try_send(1200, 0.0):
        pass
    pacer.push("first", 1200)
    later = 10.0  # the bucket is full again
    assert not pacer.try_send(100, later)  # the queued packet goes first
    assert pacer.release(later) == ["first"]


def test_padding_only_when_nothing_waits() -> None:
    pacer = Pacer(1_000_000)
    assert pacer.take(255, 0.0)
    while pacer.try_send(1200, 0.0):
        pass
    pacer.push("v", 1200)
    assert not pacer.take(255, 0.0)


def test_a_lower_estimate_shrinks_the_burst() -> None:
    pacer = Pacer(4_000_000)
    pacer.set_bitrate(100_000)
    assert pacer.tokens <= max(MIN_BURST_BYTES, 100_000 * PACING_FACTOR / 8 * BURST)


@settings(max_examples=200, deadline=None)
@given(
    estimate=st.integers(min_value=0, max_value=10_000_000),
    sizes=st.lists(st.integers(min_value=20, max_value=1500), min_size=1, max_size=400),
    gaps=st.lists(st.floats(min_value=0, max_value=0.05), min_size=1, max_size=400),
)
def test_over_any_window_video_stays_under_rate_plus_burst(
    estimate: int, sizes: list[int], gaps: list[float]
) -> None:
    """Whatever arrives and whenever the timer fires, what leaves in [0, t] is at most the
    starting burst plus rate × t plus one packet."""
    pacer = Pacer(estimate)
    burst = pacer.tokens
    rate = pacer.rate / 8
    now = 0.0
    out = 0
    for i, size in enumerate(sizes):
        now += gaps[i % len(gaps)]
        if pacer.try_send(size, now):
            out += size
        else:
            pacer.push(size, size)
        for item in pacer.release(now):
            out += item
        assert out <= burst + rate * now + 1500


def test_remove_takes_some_items_out_and_keeps_the_others_in_order() -> None:
    pacer = Pacer(100_000)
    pacer.tokens = -10_000.0
    for i in range(6):
        assert pacer.push(("a" if i % 2 else "b", i), 100 + i)
    taken = pacer.remove(lambda item: item[0] == "a")
    assert taken == [("a", 1), ("a", 3), ("a", 5)]
    assert [item for item, _ in pacer.queue] == [("b", 0), ("b", 2), ("b", 4)]
    assert pacer.queued_bytes == 100 + 102 + 104
    assert pacer.remove(lambda item: False) == [] and len(pacer.queue) == 3
