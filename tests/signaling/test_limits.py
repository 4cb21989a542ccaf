"""Limits: the protocol document's defaults, and the per-socket token bucket."""

from __future__ import annotations

import dataclasses
import math

import pytest

from signaling.limits import DEFAULT_LIMITS, Limits, TokenBucket


def test_defaults_are_those_of_the_protocol_document() -> None:
    limits = Limits()
    assert limits.max_frame_bytes == 64 * 1024
    assert (limits.message_rate, limits.message_burst) == (20, 50)
    assert limits.malformed_before_close == 20
    assert limits.join_timeout == 10
    assert limits.max_sdp_bytes == 60 * 1024
    assert limits.m_lines_per_publish == 4
    assert limits.candidates_per_pc == 50
    assert limits.max_name_chars == 64
    assert limits.participants_per_lesson == 100
    assert limits.unauthenticated_per_address == 20
    assert limits.max_request_id_chars == 64
    assert DEFAULT_LIMITS == limits


def test_limits_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_frame_bytes = 1  # type: ignore[misc]


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan])
def test_limits_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError):
        Limits(message_rate=bad)


def test_limits_must_be_numbers() -> None:
    with pytest.raises(TypeError):
        Limits(max_frame_bytes="64k")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Limits(max_frame_bytes=True)


def test_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket.for_messages(DEFAULT_LIMITS)
    assert all(bucket.take(100.0) for _ in range(50))
    assert not bucket.take(100.0)
    assert not bucket.take(100.049)  # 0.98 of a token
    assert bucket.take(100.05)  # 1/20 s later: one more
    assert not bucket.take(100.05)
    # a second later: 20 more, never more than the burst
    assert sum(bucket.take(101.05) for _ in range(100)) == 20
    assert sum(bucket.take(1000.0) for _ in range(100)) == 50


def test_sustained_rate_is_served() -> None:
    bucket = TokenBucket(rate=20, burst=50)
    served = sum(bucket.take(i / 20) for i in range(20 * 60))  # 20/s for a minute
    assert served == 20 * 60


def test_flood_is_throttled() -> None:
    bucket = TokenBucket(rate=20, burst=50)
    served = sum(bucket.take(i / 1000) for i in range(10_000))  # 1000/s for 10 s
    assert served <= 50 + 20 * 10 + 1


def test_clock_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=2)
    assert bucket.take(10.0) and bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


def test_wait_time_and_retry_after() -> None:
    bucket = TokenBucket(rate=20, burst=50)
    assert bucket.wait_time(0.0) == 0 and bucket.retry_after(0.0) == 0
    for _ in range(50):
        bucket.take(0.0)
    assert bucket.wait_time(0.0) == pytest.approx(0.05)
    assert bucket.retry_after(0.0) == 1  # whole seconds, at least one
    assert bucket.tokens(0.025) == pytest.approx(0.5)
    slow = TokenBucket(rate=0.1, burst=1)
    slow.take(0.0)
    assert slow.retry_after(0.0) == 10
    assert slow.wait_time(0.0, cost=2) == math.inf
    with pytest.raises(ValueError):
        slow.retry_after(0.0, cost=2)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0), (1, 0.5), (math.nan, 1)])
def test_bucket_refuses_nonsense(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
