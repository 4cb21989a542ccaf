"""Where live lessons are: the ``LessonDirectory`` port and its in-process implementation.

A live lesson lives on one node (a class of 40–60 fits easily) and must be reachable from
every node. The directory is the small shared state that makes that possible:

* **ownership** — which node holds a lesson, as a lease the owner renews
  (:meth:`LessonDirectory.claim`); a node that dies stops renewing, its leases lapse and
  another node may claim the lesson;
* **presence** — who is in each lesson and in what state (``connected``, ``reconnecting``,
  ``waiting``), readable from any node;
* **resume tickets** — one live token per participant, each usable once, so that a client
  whose connection dropped carries on as the same participant without retyping a password;
* **commands** — requests for the owner of a lesson (``remove`` a participant, say) sent from
  whichever node received them.

Everything here may be rebuilt or may expire: durable records stay in the database. The
in-memory directory serves one process; several nodes share a Redis one with the same
contract (the tests in ``tests/classroom/test_directory.py`` are written against the port).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, cast

from .passwords import token_digest

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: Seconds a lease lasts unless renewed; owners renew every third of it.
LEASE_SECONDS: Final = 15.0
#: Seconds a resume token lives in Redis unless used or revoked (a lesson's length, with room):
#: a node that died cannot revoke its participants' tokens, so they expire by themselves.
TICKET_SECONDS: Final = 12 * 3600
#: Commands waiting for one node before the oldest are dropped (a node that stopped reading
#: must not grow the others' memory).
MAX_PENDING_COMMANDS: Final = 1000

Presence = Literal["connected", "reconnecting", "waiting"]
PRESENCE_STATES: Final = ("connected", "reconnecting", "waiting")


@dataclass(frozen=True, slots=True)
class ResumeTicket:
    """What a resume token stands for."""

    lesson_id: str
    participant_id: str


@dataclass(frozen=True, slots=True)
class Command:
    """A request for the node that owns ``lesson_id``."""

    lesson_id: str
    name: str
    data: Mapping[str, Any]


class LessonDirectory(Protocol):
    lease_seconds: float
    """How long a lease lasts unless its owner renews it."""

    async def claim(self, lesson_id: str, node: str) -> str:
        """Take (or renew) the lease on ``lesson_id`` for ``node`` unless another node holds a
        live one; the owner's node id either way."""
        ...

    async def owner(self, lesson_id: str) -> str | None:
        """The node holding a live lease on the lesson, if any."""
        ...

    async def release(self, lesson_id: str, node: str) -> None:
        """Give the lease up (only if ``node`` holds it); the lesson's presence goes too."""
        ...

    async def set_presence(
        self, lesson_id: str, participant_id: str, state: Presence | None
    ) -> None:
        """Record a participant's state in the lesson (``None``: it is gone)."""
        ...

    async def presence(self, lesson_id: str) -> dict[str, Presence]:
        """Participant id → state, for everyone in or waiting for the lesson."""
        ...

    async def issue_ticket(self, lesson_id: str, participant_id: str) -> str:
        """A new resume token for the participant; its previous one stops working."""
        ...

    async def peek_ticket(self, token: str) -> ResumeTicket | None:
        """What a live resume token stands for, without using it up."""
        ...

    async def take_ticket(self, token: str) -> ResumeTicket | None:
        """Use a resume token up: the ticket, or ``None`` if it is not live."""
        ...

    async def revoke_tickets(self, participant_id: str) -> None:
        """The participant's resume token stops working (it left for good)."""
        ...

    async def send(self, command: Command) -> bool:
        """Queue ``command`` for the owner of its lesson; ``False`` if nobody owns it."""
        ...

    async def next_command(self, node: str) -> Command:
        """Wait for the next command for a lesson ``node`` owns."""
        ...


class MemoryDirectory:
    """The directory of one process (every node of a test that shares it)."""

    def __init__(
        self, *, lease_seconds: float = LEASE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("a lease lasts a positive number of seconds")
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._leases: dict[str, tuple[str, float]] = {}  # lesson id → (node, expires at)
        self._presence: dict[str, dict[str, Presence]] = {}
        self._tickets: dict[str, ResumeTicket] = {}  # sha256(token) → ticket
        self._ticket_of: dict[str, str] = {}  # participant id → sha256 of its live token
        self._commands: dict[str, asyncio.Queue[Command]] = {}

    def _live_owner(self, lesson_id: str) -> str | None:
        lease = self._leases.get(lesson_id)
        if lease is None:
            return None
        node, expires_at = lease
        if expires_at <= self._clock():
            return None
        return node

    async def claim(self, lesson_id: str, node: str) -> str:
        owner = self._live_owner(lesson_id)
        if owner is not None and owner != node:
            return owner
        lease = self._leases.get(lesson_id)
        if lease is not None and lease[0] != node:
            self._presence.pop(lesson_id, None)  # the lapsed owner's people rejoin here
        self._leases[lesson_id] = (node, self._clock() + self.lease_seconds)
        return node

    async def owner(self, lesson_id: str) -> str | None:
        return self._live_owner(lesson_id)

    async def release(self, lesson_id: str, node: str) -> None:
        lease = self._leases.get(lesson_id)
        if lease is not None and lease[0] == node:
            del self._leases[lesson_id]
            self._presence.pop(lesson_id, None)

    async def set_presence(
        self, lesson_id: str, participant_id: str, state: Presence | None
    ) -> None:
        if state is None:
            people = self._presence.get(lesson_id)
            if people is not None:
                people.pop(participant_id, None)
                if not people:
                    del self._presence[lesson_id]
            return
        if state not in PRESENCE_STATES:
            raise ValueError(f"presence is one of {PRESENCE_STATES}")
        self._presence.setdefault(lesson_id, {})[participant_id] = state

    async def presence(self, lesson_id: str) -> dict[str, Presence]:
        return dict(self._presence.get(lesson_id, {}))

    async def issue_ticket(self, lesson_id: str, participant_id: str) -> str:
        await self.revoke_tickets(participant_id)
        token = secrets.token_urlsafe(32)
        digest = token_digest(token)
        self._tickets[digest] = ResumeTicket(lesson_id, participant_id)
        self._ticket_of[participant_id] = digest
        return token

    async def peek_ticket(self, token: str) -> ResumeTicket | None:
        return self._tickets.get(token_digest(token))

    async def take_ticket(self, token: str) -> ResumeTicket | None:
        ticket = self._tickets.pop(token_digest(token), None)
        if ticket is not None:
            self._ticket_of.pop(ticket.participant_id, None)
        return ticket

    async def revoke_tickets(self, participant_id: str) -> None:
        digest = self._ticket_of.pop(participant_id, None)
        if digest is not None:
            self._tickets.pop(digest, None)

    def _queue(self, node: str) -> asyncio.Queue[Command]:
        queue = self._commands.get(node)
        if queue is None:
            queue = self._commands[node] = asyncio.Queue(MAX_PENDING_COMMANDS)
        return queue

    async def send(self, command: Command) -> bool:
        owner = self._live_owner(command.lesson_id)
        if owner is None:
            return False
        queue = self._queue(owner)
        if queue.full():
            queue.get_nowait()  # the oldest goes: the owner stopped reading long ago
        queue.put_nowait(command)
        return True

    async def next_command(self, node: str) -> Command:
        return await self._queue(node).get()


# -- Redis -------------------------------------------------------------------------------------

_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: lease, presence. ARGV: now_ms or "", node, lease_ms.
_CLAIM = (
    _NOW
    + """
local lease_ms = tonumber(ARGV[3])
local owner = redis.call('HGET', KEYS[1], 'node')
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
if owner and owner ~= ARGV[2] then
  if expires > now then return owner end
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], 'node', ARGV[2], 'expires', now + lease_ms)
redis.call('PEXPIRE', KEYS[1], 2 * lease_ms)
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], 4 * lease_ms) end
return ARGV[2]
"""
)

# KEYS: lease. ARGV: now_ms or "".
_OWNER = (
    _NOW
    + """
local owner = redis.call('HGET', KEYS[1], 'node')
local expires = tonumber(redis.call('HGET', KEYS[1], 'expires') or '0')
if owner and expires > now then return owner end
return false
"""
)

# KEYS: lease, presence. ARGV: node.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return 0
"""

# KEYS: ticket_of(participant), ticket(new digest). ARGV: ticket prefix, new digest, value, ttl_ms.
_ISSUE = """
local old = redis.call('GET', KEYS[1])
if old then redis.call('DEL', ARGV[1] .. old) end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
return 0
"""

# KEYS: ticket(digest). ARGV: ticket_of prefix, digest.
_TAKE = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
redis.call('DEL', KEYS[1])
local participant = string.sub(value, string.find(value, '\\n', 1, true) + 1)
local of = ARGV[1] .. participant
if redis.call('GET', of) == ARGV[2] then redis.call('DEL', of) end
return value
"""

# KEYS: ticket_of(participant). ARGV: ticket prefix.
_REVOKE = """
local old = redis.call('GET', KEYS[1])
if old then redis.call('DEL', ARGV[1] .. old, KEYS[1]) end
return 0
"""


class RedisDirectory:
    """The directory shared by every node through Redis.

    Leases are a hash per lesson (owner, expiry) changed by Lua scripts, so claiming and
    renewing are atomic across nodes; time comes from the Redis server (``TIME``) so nodes
    with skewed clocks agree, and tests may pass ``clock`` (seconds) instead. Every key expires
    by itself (leases two lease periods after their last renewal, presence four, resume tokens
    after ``ticket_seconds``): what a dead node leaves behind goes away. All keys share the
    hash tag in ``prefix``, so the scripts also run on Redis Cluster.

    The caller owns ``redis`` (shared with the join rate limits) and closes it."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "lophoc:{directory}:",
        lease_seconds: float = LEASE_SECONDS,
        ticket_seconds: float = TICKET_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if lease_seconds <= 0 or ticket_seconds <= 0:
            raise ValueError("leases and tickets last a positive number of seconds")
        self._redis = redis
        self._prefix = prefix
        self.lease_seconds = lease_seconds
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._ticket_ms = max(1, int(ticket_seconds * 1000))
        self._clock = clock
        self._claim = redis.register_script(_CLAIM)
        self._owner = redis.register_script(_OWNER)
        self._release = redis.register_script(_RELEASE)
        self._issue = redis.register_script(_ISSUE)
        self._take = redis.register_script(_TAKE)
        self._revoke = redis.register_script(_REVOKE)

    def _now(self) -> str:
        return "" if self._clock is None else repr(int(self._clock() * 1000))

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    @staticmethod
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    async def claim(self, lesson_id: str, node: str) -> str:
        keys = [self._key("lease", lesson_id), self._key("presence", lesson_id)]
        owner = await self._claim(keys=keys, args=[self._now(), node, self._lease_ms])
        return self._text(owner)

    async def owner(self, lesson_id: str) -> str | None:
        owner = await self._owner(keys=[self._key("lease", lesson_id)], args=[self._now()])
        return self._text(owner) if owner else None

    async def release(self, lesson_id: str, node: str) -> None:
        keys = [self._key("lease", lesson_id), self._key("presence", lesson_id)]
        await self._release(keys=keys, args=[node])

    async def set_presence(
        self, lesson_id: str, participant_id: str, state: Presence | None
    ) -> None:
        key = self._key("presence", lesson_id)
        if state is None:
            await self._redis.hdel(key, participant_id)  # type: ignore[misc]
            return
        if state not in PRESENCE_STATES:
            raise ValueError(f"presence is one of {PRESENCE_STATES}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, participant_id, state)
            pipe.pexpire(key, 4 * self._lease_ms)
            await pipe.execute()

    async def presence(self, lesson_id: str) -> dict[str, Presence]:
        raw = await self._redis.hgetall(self._key("presence", lesson_id))  # type: ignore[misc]
        return {self._text(k): cast(Presence, self._text(v)) for k, v in raw.items()}

    async def issue_ticket(self, lesson_id: str, participant_id: str) -> str:
        token = secrets.token_urlsafe(32)
        digest = token_digest(token)
        await self._issue(
            keys=[self._key("ticket_of", participant_id), self._key("ticket", digest)],
            args=[
                self._key("ticket", ""),
                digest,
                f"{lesson_id}\n{participant_id}",
                self._ticket_ms,
            ],
        )
        return token

    @staticmethod
    def _ticket(value: Any) -> ResumeTicket | None:
        if not value:
            return None
        lesson_id, _, participant_id = RedisDirectory._text(value).partition("\n")
        return ResumeTicket(lesson_id, participant_id)

    async def peek_ticket(self, token: str) -> ResumeTicket | None:
        return self._ticket(await self._redis.get(self._key("ticket", token_digest(token))))

    async def take_ticket(self, token: str) -> ResumeTicket | None:
        digest = token_digest(token)
        value = await self._take(
            keys=[self._key("ticket", digest)], args=[self._key("ticket_of", ""), digest]
        )
        return self._ticket(value)

    async def revoke_tickets(self, participant_id: str) -> None:
        await self._revoke(
            keys=[self._key("ticket_of", participant_id)], args=[self._key("ticket", "")]
        )

    async def send(self, command: Command) -> bool:
        owner = await self.owner(command.lesson_id)
        if owner is None:
            return False
        key = self._key("commands", owner)
        body = json.dumps(
            {"lesson_id": command.lesson_id, "name": command.name, "data": dict(command.data)}
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, body)
            pipe.ltrim(key, -MAX_PENDING_COMMANDS, -1)
            pipe.pexpire(key, 4 * self._lease_ms)
            await pipe.execute()
        return True

    async def next_command(self, node: str) -> Command:
        _, body = await self._redis.blpop([self._key("commands", node)], timeout=0)  # type: ignore[misc]
        data = json.loads(body)
        return Command(data["lesson_id"], data["name"], data["data"])
