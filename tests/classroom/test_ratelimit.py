"""The failure limiter, on memory and on Redis (brute force from one address and from many).

Every test in this file runs against both implementations through the ``limiter`` fixture,
with a fake clock: windows are proven by moving time, never by sleeping.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from classroom.ratelimit import (
    Charge,
    FailureLimiter,
    JoinLimits,
    Limit,
    MemoryFailureLimiter,
    RedisFailureLimiter,
    Refusal,
    Rule,
    address_bucket,
)
from tests.classroom.support import FakeClock

FIVE_A_MINUTE = Limit(5, 60)


def rule(key: str = "pair:123456789:192.0.2.1", limit: Limit = FIVE_A_MINUTE) -> Rule:
    return Rule(key, limit)


async def fail(limiter: FailureLimiter, rules: list[Rule], times: int) -> None:
    for _ in range(times):
        assert isinstance(await limiter.charge(rules), Charge)


async def test_the_sixth_failure_within_the_window_is_refused(limiter: FailureLimiter) -> None:
    await fail(limiter, [rule()], 5)
    assert await limiter.charge([rule()]) == Refusal(retry_after=60)


async def test_retry_after_counts_down_and_the_window_slides(
    limiter: FailureLimiter, clock: FakeClock
) -> None:
    await fail(limiter, [rule()], 1)
    clock.advance(20)
    await fail(limiter, [rule()], 4)
    clock.advance(10)
    # The oldest failure (30 s ago) leaves the window in 30 s, freeing exactly one slot.
    assert await limiter.charge([rule()]) == Refusal(retry_after=30)
    clock.advance(29.5)
    assert await limiter.charge([rule()]) == Refusal(retry_after=1)
    clock.advance(0.5)
    assert isinstance(await limiter.charge([rule()]), Charge)
    assert isinstance(await limiter.charge([rule()]), Refusal)


async def test_refused_attempts_are_not_counted(limiter: FailureLimiter, clock: FakeClock) -> None:
    """A client hammering while locked out does not extend its own lockout."""
    await fail(limiter, [rule()], 5)
    for _ in range(50):
        assert isinstance(await limiter.charge([rule()]), Refusal)
    clock.advance(60)
    await fail(limiter, [rule()], 5)


async def test_a_refund_takes_the_failure_back(limiter: FailureLimiter) -> None:
    await fail(limiter, [rule()], 4)
    charge = await limiter.charge([rule()])
    assert isinstance(charge, Charge)
    assert isinstance(await limiter.charge([rule()]), Refusal)
    await limiter.refund(charge)
    await limiter.refund(charge)  # twice is harmless
    assert isinstance(await limiter.charge([rule()]), Charge)
    assert isinstance(await limiter.charge([rule()]), Refusal)


async def test_keys_are_counted_separately(limiter: FailureLimiter) -> None:
    await fail(limiter, [rule("a")], 5)
    assert isinstance(await limiter.charge([rule("a")]), Refusal)
    assert isinstance(await limiter.charge([rule("b")]), Charge)


async def test_a_charge_is_all_or_nothing(limiter: FailureLimiter) -> None:
    """When one rule refuses, the others are not charged either."""
    full, spare = rule("full"), rule("spare")
    await fail(limiter, [full], 5)
    for _ in range(10):
        assert isinstance(await limiter.charge([full, spare]), Refusal)
    await fail(limiter, [spare], 5)


async def test_the_longest_wait_wins(limiter: FailureLimiter, clock: FakeClock) -> None:
    minute, hour = rule("minute", Limit(1, 60)), rule("hour", Limit(1, 3600))
    await fail(limiter, [minute, hour], 1)
    clock.advance(100)
    assert await limiter.charge([minute, hour]) == Refusal(retry_after=3500)


async def test_concurrent_attempts_never_exceed_the_limit(limiter: FailureLimiter) -> None:
    """Charging before verifying is what makes a burst of parallel guesses count."""
    outcomes = await asyncio.gather(*(limiter.charge([rule()]) for _ in range(40)))
    assert sum(isinstance(outcome, Charge) for outcome in outcomes) == 5


def test_limits_need_a_failure_and_a_second() -> None:
    with pytest.raises(ValueError):
        Limit(0, 60)
    with pytest.raises(ValueError):
        Limit(5, 0)


def test_join_limits_are_the_documented_ones() -> None:
    rules = {r.key: r.limit for r in JoinLimits().rules_for("123456789", "192.0.2.1")}
    assert rules == {
        "pair:123456789:192.0.2.1": Limit(5, 60),
        "lesson:123456789": Limit(30, 3600),
        "address:192.0.2.1": Limit(20, 60),
    }
    assert [r.key for r in JoinLimits().rules_for(None, "192.0.2.1")] == ["address:192.0.2.1"]


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        ("x" * 1000, "x" * 100),
    ],
)
def test_addresses_are_counted_per_host_or_per_ipv6_64(address: str, bucket: str) -> None:
    assert address_bucket(address) == bucket


async def test_memory_limiter_forgets_idle_keys() -> None:
    clock = FakeClock()
    limiter = MemoryFailureLimiter(clock=clock)
    for n in range(100):
        await limiter.charge([rule(f"address:{n}")])
    clock.advance(61)
    await limiter.charge([rule("address:new")])
    assert list(limiter._logs) == ["address:new"]


@pytest.mark.redis
async def test_redis_counters_are_shared_by_all_nodes(
    redis_client: Redis, redis_prefix: str, clock: FakeClock
) -> None:
    node_a = RedisFailureLimiter(redis_client, prefix=redis_prefix, clock=clock)
    node_b = RedisFailureLimiter(
        Redis(connection_pool=redis_client.connection_pool), prefix=redis_prefix, clock=clock
    )
    await fail(node_a, [rule()], 3)
    await fail(node_b, [rule()], 2)
    assert await node_a.charge([rule()]) == Refusal(60)
    assert await node_b.charge([rule()]) == Refusal(60)


@pytest.mark.redis
async def test_redis_keys_expire_by_themselves(redis_client: Redis, redis_prefix: str) -> None:
    limiter = RedisFailureLimiter(redis_client, prefix=redis_prefix)
    await limiter.charge([rule("pair:x", Limit(5, 60)), rule("lesson:x", Limit(30, 3600))])
    assert 0 < await redis_client.pttl(f"{redis_prefix}pair:x") <= 60_000
    assert 60_000 < await redis_client.pttl(f"{redis_prefix}lesson:x") <= 3_600_000


@pytest.mark.redis
async def test_redis_limiter_uses_the_server_clock_by_default(
    redis_client: Redis, redis_prefix: str
) -> None:
    limiter = RedisFailureLimiter(redis_client, prefix=redis_prefix)
    await fail(limiter, [rule()], 5)
    refusal = await limiter.charge([rule()])
    assert isinstance(refusal, Refusal)
    assert 59 <= refusal.retry_after <= 60
