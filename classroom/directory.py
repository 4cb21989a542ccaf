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
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from .passwords import token_digest

#: Seconds a lease lasts unless renewed; owners renew every third of it.
LEASE_SECONDS: Final = 15.0
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
