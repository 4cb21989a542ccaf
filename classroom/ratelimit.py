"""Counting failed joins, so that a 9-digit code and a classroom password cannot be guessed.

The policy (brute force from one address and from many), as :class:`JoinLimits`:

* 5 failures per (lesson code, client address) per 60 s: one device guessing one lesson;
* 30 failures per lesson code per hour: many devices guessing one lesson;
* 20 failures per client address per 60 s, across all codes: one device walking the code space.

**Charge first, refund on success.** An attempt is counted as a failure *before* the password
is verified, and the charge is refunded when it turns out right. Checking first and recording
after the ~35 ms Argon2 verification would let a burst of parallel guesses all pass the check
before any failure is recorded; charging up front makes "5 per minute" hold however many
requests arrive at once. A refused attempt (``Refusal``) is not counted: the limit is exactly
N failures per sliding window, and a locked-out client cannot extend its own lockout forever.

**Sliding windows** (a log of failure times per key, not fixed buckets): a fixed window lets an
attacker place 5 failures at the end of one minute and 5 at the start of the next. A log never
holds more than ``max_failures`` entries per key, because a refused attempt adds nothing, so
memory stays bounded. ``retry_after`` is when the oldest failure that keeps the key at its
limit leaves the window, rounded up to whole seconds (at least 1).

IPv6 clients are counted per /64 network, because one home connection or phone usually holds a
whole /64 and could otherwise use a fresh address for every guess.
"""

from __future__ import annotations

import ipaddress
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``max_failures`` failures within any ``window_seconds``."""

    max_failures: int
    window_seconds: int

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_seconds < 1:
            raise ValueError("a limit needs at least one failure and one second")


@dataclass(frozen=True, slots=True)
class Rule:
    """One counter (``key``, e.g. ``"lesson:123456789"``) and the limit that applies to it."""

    key: str
    limit: Limit


@dataclass(frozen=True, slots=True)
class Charge:
    """A failure counted in advance against every rule; refund it if the attempt succeeds."""

    id: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Some rule is at its limit: nothing was counted; come back in ``retry_after`` seconds."""

    retry_after: int


class FailureLimiter(Protocol):
    """Failure counters, in one process or shared by every node of a cluster."""

    async def charge(self, rules: Sequence[Rule]) -> Charge | Refusal:
        """Count one failure against all ``rules`` at once, unless any is already at its limit.

        All-or-nothing and atomic: two concurrent calls never both take the last slot.
        """
        ...

    async def refund(self, charge: Charge) -> None:
        """Take back a charge whose attempt succeeded. Refunding twice is harmless."""
        ...


@dataclass(frozen=True, slots=True)
class JoinLimits:
    """The three limits on guest joins; see the module docstring for why each exists."""

    per_lesson_and_address: Limit = field(default_factory=lambda: Limit(5, 60))
    per_lesson: Limit = field(default_factory=lambda: Limit(30, 3600))
    per_address: Limit = field(default_factory=lambda: Limit(20, 60))

    def rules_for(self, code: str | None, client_address: str) -> tuple[Rule, ...]:
        """The rules one guest join attempt is charged against.

        ``code=None`` means the submitted code is not even well-formed: it only counts against
        the address, so junk codes cannot create unbounded numbers of counters.
        """
        address = address_bucket(client_address)
        rules = [Rule(f"address:{address}", self.per_address)]
        if code is not None:
            rules.append(Rule(f"pair:{code}:{address}", self.per_lesson_and_address))
            rules.append(Rule(f"lesson:{code}", self.per_lesson))
        return tuple(rules)


_MAX_ADDRESS_KEY: Final = 100


def address_bucket(client_address: str) -> str:
    """The unit one client is counted as: an IPv4 address, or the /64 holding an IPv6 one.

    IPv4-mapped IPv6 addresses count as their IPv4 address. Anything that is not an IP address
    (a Unix socket peer, a test's label) is used as it is, cut to a bounded length.
    """
    try:
        address = ipaddress.ip_address(client_address)
    except ValueError:
        return client_address[:_MAX_ADDRESS_KEY]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address.packed, 64), strict=False))
    return str(address)


def _retry_after(wait_seconds: float) -> int:
    return max(1, math.ceil(wait_seconds))


@dataclass(slots=True)
class _Log:
    window: float
    entries: deque[tuple[float, str]] = field(default_factory=deque)

    def prune(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.window:
            self.entries.popleft()


class MemoryFailureLimiter:
    """Counters in this process: for a single-process server and for tests.

    ``clock`` returns seconds (``time.monotonic`` by default); tests pass a fake one. Charges
    never await, so each one is atomic on the event loop without a lock. Keys whose failures
    have all left their windows are swept every minute so that a stream of one-off addresses
    does not grow memory forever.
    """

    _SWEEP_EVERY: Final = 60.0

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, _Log] = {}
        self._last_sweep = clock()

    async def charge(self, rules: Sequence[Rule]) -> Charge | Refusal:
        now = self._clock()
        self._sweep(now)
        wait = 0.0
        for rule in rules:
            log = self._logs.get(rule.key)
            if log is None:
                continue
            log.prune(now)
            over = len(log.entries) - rule.limit.max_failures
            if over >= 0:
                oldest_that_counts = log.entries[over][0]
                wait = max(wait, oldest_that_counts + rule.limit.window_seconds - now)
        if wait > 0:
            return Refusal(_retry_after(wait))
        charge = Charge(uuid.uuid4().hex, tuple(rules))
        for rule in rules:
            log = self._logs.setdefault(rule.key, _Log(float(rule.limit.window_seconds)))
            log.entries.append((now, charge.id))
        return charge

    async def refund(self, charge: Charge) -> None:
        for rule in charge.rules:
            log = self._logs.get(rule.key)
            if log is None:
                continue
            kept = deque(entry for entry in log.entries if entry[1] != charge.id)
            log.entries = kept
            if not kept:
                del self._logs[rule.key]

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self._SWEEP_EVERY:
            return
        self._last_sweep = now
        for key in list(self._logs):
            log = self._logs[key]
            log.prune(now)
            if not log.entries:
                del self._logs[key]


# KEYS: one sorted set per rule (member = charge id, score = time in ms).
# ARGV: now in ms ("" = ask Redis), charge id, then max_failures and window_ms for each key.
# Returns {1, 0} when charged, {0, wait_ms} when refused.
_CHARGE_SCRIPT: Final = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local over = redis.call('ZCARD', key) - limit
  if over >= 0 then
    local oldest = redis.call('ZRANGE', key, over, over, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then
  return {0, math.ceil(wait)}
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return {1, 0}
"""


class RedisFailureLimiter:
    """Counters in Redis, shared by every node, so a guesser gains nothing by spreading out.

    Each key is a sorted set of failure times updated by one Lua script, so check-and-count is
    atomic across nodes. Keys expire by themselves one window after their last failure. Time
    comes from the Redis server (``TIME``) so nodes with skewed clocks still agree; tests may
    pass ``clock`` (seconds) instead. All keys share the hash tag in ``prefix`` so the
    multi-key script also runs on Redis Cluster.

    The caller owns ``redis`` (it is usually shared with the cluster bus) and closes it.
    If Redis is unreachable the error propagates: joins fail closed rather than unlimited.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "lophoc:{failures}:",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._charge_script = redis.register_script(_CHARGE_SCRIPT)

    async def charge(self, rules: Sequence[Rule]) -> Charge | Refusal:
        charge = Charge(uuid.uuid4().hex, tuple(rules))
        now = "" if self._clock is None else repr(self._clock() * 1000)
        args: list[str | int] = [now, charge.id]
        for rule in rules:
            args += [rule.limit.max_failures, rule.limit.window_seconds * 1000]
        charged, wait_ms = await self._charge_script(
            keys=[self._prefix + rule.key for rule in rules], args=args
        )
        if not charged:
            return Refusal(_retry_after(int(wait_ms) / 1000))
        return charge

    async def refund(self, charge: Charge) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for rule in charge.rules:
                pipe.zrem(self._prefix + rule.key, charge.id)
            await pipe.execute()
