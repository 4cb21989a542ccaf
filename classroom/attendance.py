"""Attendance: an append-only log of what happened to each participant, and crash recovery.

The signaling layer reports every change to an :class:`AttendanceRecorder`; reports
(``classroom.reports``) are derived from the log, never kept as counters that a crash could
leave half-updated.

Event kinds (:data:`EVENT_KINDS`), and what each means for presence:

==============  ============================================================================
``joined``      a participant was admitted and is now in the lesson — **opens** presence.
                Record it *before* telling the client it has joined. Recorded once per
                participant id: a retried call returns the first event.
``reconnected`` the same participant (same id) is back after a dropped connection — opens.
``left``        the participant left, closed the page, or its connection was lost — closes.
``replaced``    a newer connection of the same student (another device) took over; the old
                participant is gone — closes. The new one records its own ``joined``.
``removed``     the teacher or a moderator removed the participant — closes.
``admitted``    a waiting-room decision: let in (presence starts at the ``joined`` after it).
``denied``      a waiting-room decision or a refused entry: not let in.
==============  ============================================================================

Each event stores the lesson, the participant id, the identity (role; roster entry for a
student admitted by personal link; ``guest`` and the typed name for someone who came in with the
lesson password), the node that hosts the participant, a reason code, and two times: ``at``
(when it happened) and ``recorded_at`` (when it was written; they differ only for recovery).

**Append-only, three times over**: this API has no update or delete; the SQL store has none;
and triggers in the database refuse UPDATE and DELETE on both SQLite and PostgreSQL.

**Every call commits before it returns** (SQLite ``synchronous=FULL``, PostgreSQL
``synchronous_commit=on``): when ``joined`` returns, the join survives ``kill -9``.

**Crash recovery.** Each node calls :meth:`AttendanceRecorder.heartbeat` at least every
:data:`HEARTBEAT_INTERVAL` (15 s). After a crash, :meth:`AttendanceRecorder.recover` — called
by the restarted node for itself *before its first new heartbeat*, or by another node for a
node whose heartbeat is stale — appends a ``left`` event with reason ``closed_by_recovery`` and
``recovered = True`` for every participant whose last presence event on that node opened an
interval. The interval is closed at the node's last heartbeat — the last moment the server
*knew* it was running, never a guess after it — or at the opening itself if that came later;
a node that crashed before its first heartbeat closes at the last event it recorded.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, Protocol

from classroom.errors import ClassroomError
from classroom.lessons import Admission, looks_like_id, normalise_name

log = logging.getLogger(__name__)

EventKind = Literal["joined", "left", "reconnected", "replaced", "removed", "admitted", "denied"]
ParticipantRole = Literal["teacher", "moderator", "student"]

EVENT_KINDS: Final[tuple[EventKind, ...]] = (
    "joined",
    "left",
    "reconnected",
    "replaced",
    "removed",
    "admitted",
    "denied",
)
OPENING_KINDS: Final[frozenset[str]] = frozenset({"joined", "reconnected"})
CLOSING_KINDS: Final[frozenset[str]] = frozenset({"left", "replaced", "removed"})
PRESENCE_KINDS: Final[frozenset[str]] = OPENING_KINDS | CLOSING_KINDS
PARTICIPANT_ROLES: Final[tuple[ParticipantRole, ...]] = ("teacher", "moderator", "student")

HEARTBEAT_INTERVAL: Final = timedelta(seconds=15)
RECOVERY_REASON: Final = "closed_by_recovery"

_REASON: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PARTICIPANT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NODE_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True, slots=True)
class Attendee:
    """Who an event is about. Build it from the admission with :meth:`of`."""

    role: ParticipantRole
    name: str
    roster_entry_id: str | None = None
    guest: bool = False

    def __post_init__(self) -> None:
        if self.role not in PARTICIPANT_ROLES:
            raise ValueError("role is teacher, moderator or student")
        if self.guest and self.roster_entry_id is not None:
            raise ValueError("a guest has no roster entry")
        if self.roster_entry_id is not None and not looks_like_id(self.roster_entry_id):
            raise ValueError("roster entry ids are UUIDs")
        try:
            normalised = normalise_name(self.name)
        except ClassroomError:
            normalised = None
        if normalised != self.name:
            raise ValueError("names are normalised before they reach attendance")

    @classmethod
    def of(cls, admission: Admission) -> Attendee:
        return cls(
            role=admission.role,
            name=admission.name,
            roster_entry_id=admission.roster_entry_id,
            guest=admission.guest,
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended (the store assigns ``id``)."""

    lesson_id: str
    participant_id: str
    kind: EventKind
    attendee: Attendee
    node_id: str
    reason: str | None
    at: datetime
    recorded_at: datetime
    recovered: bool = False


@dataclass(frozen=True, slots=True)
class AttendanceEvent:
    """An event as stored. ``id`` grows with every append: the log's order."""

    id: int
    lesson_id: str
    participant_id: str
    kind: EventKind
    role: ParticipantRole
    roster_entry_id: str | None
    guest: bool
    display_name: str
    node_id: str
    reason: str | None
    at: datetime
    recorded_at: datetime
    recovered: bool = False


class AttendanceStore(Protocol):
    """The durable log. Deliberately no update and no delete. Every write commits first."""

    async def append(self, event: NewEvent) -> AttendanceEvent:
        """Append one event; for ``joined``, if the participant already has one, return it
        instead (idempotent retries)."""
        ...

    async def events(self, lesson_id: str, *, up_to_id: int | None = None) -> list[AttendanceEvent]:
        """The lesson's events in log order, optionally only those with ``id <= up_to_id``."""
        ...

    async def record_heartbeat(self, node_id: str, at: datetime) -> None: ...

    async def last_heartbeat(self, node_id: str) -> datetime | None: ...

    async def close_open_presences(
        self, node_id: str, reason: str, recorded_at: datetime
    ) -> list[AttendanceEvent]:
        """In one transaction: find every (lesson, participant) whose last presence event is an
        opening recorded by ``node_id``, and append a recovered ``left`` for each at the
        node's last known moment (see the module docstring). Returns the appended events."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


def default_node_id() -> str:
    """``LOPHOC_NODE_ID`` if set, else the host name: stable across restarts of one machine,
    which is what lets a restarted node recover its own open intervals."""
    configured = os.environ.get("LOPHOC_NODE_ID", "").strip()
    candidate = configured or socket.gethostname()
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", candidate)[:64]
    return cleaned or "node"


class AttendanceRecorder:
    """What the signaling layer calls. One per node; ``node_id`` goes into every event."""

    def __init__(
        self,
        store: AttendanceStore,
        node_id: str,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        _check_node(node_id)
        self._store = store
        self.node_id = node_id
        self._clock = clock

    async def joined(
        self, lesson_id: str, participant_id: str, attendee: Attendee, *, reason: str | None = None
    ) -> AttendanceEvent:
        """Call after admission and before the client hears it has joined."""
        return await self._append("joined", lesson_id, participant_id, attendee, reason)

    async def left(
        self, lesson_id: str, participant_id: str, attendee: Attendee, *, reason: str = "left"
    ) -> AttendanceEvent:
        """Call when the participant leaves or its connection is lost (e.g. reason
        ``connection_lost``); a ``reconnected`` within 60 s continues the same interval."""
        return await self._append("left", lesson_id, participant_id, attendee, reason)

    async def reconnected(
        self,
        lesson_id: str,
        participant_id: str,
        attendee: Attendee,
        *,
        reason: str | None = None,
    ) -> AttendanceEvent:
        """Call when a participant resumes with the same id after a dropped connection."""
        return await self._append("reconnected", lesson_id, participant_id, attendee, reason)

    async def replaced(
        self,
        lesson_id: str,
        participant_id: str,
        attendee: Attendee,
        *,
        reason: str = "new_device",
    ) -> AttendanceEvent:
        """Call for the *old* participant when a newer connection of the same student takes
        over (``participant_id`` is the old one; the new one records ``joined``)."""
        return await self._append("replaced", lesson_id, participant_id, attendee, reason)

    async def removed(
        self,
        lesson_id: str,
        participant_id: str,
        attendee: Attendee,
        *,
        reason: str = "removed_by_teacher",
    ) -> AttendanceEvent:
        """Call when the teacher or a moderator removes the participant."""
        return await self._append("removed", lesson_id, participant_id, attendee, reason)

    async def admitted(
        self,
        lesson_id: str,
        participant_id: str,
        attendee: Attendee,
        *,
        reason: str | None = None,
    ) -> AttendanceEvent:
        """A waiting-room admission; presence starts with the ``joined`` that follows."""
        return await self._append("admitted", lesson_id, participant_id, attendee, reason)

    async def denied(
        self,
        lesson_id: str,
        participant_id: str,
        attendee: Attendee,
        *,
        reason: str = "denied_by_teacher",
    ) -> AttendanceEvent:
        """A waiting-room refusal."""
        return await self._append("denied", lesson_id, participant_id, attendee, reason)

    async def heartbeat(self, node_id: str | None = None) -> datetime:
        """Record that the node is alive now; call at least every 15 s."""
        node = self.node_id if node_id is None else _check_node(node_id)
        now = self._clock()
        await self._store.record_heartbeat(node, now)
        return now

    async def recover(self, node_id: str | None = None) -> list[AttendanceEvent]:
        """Close the intervals a crashed node left open (see the module docstring).

        Idempotent. Call it for this node at start-up *before* the first heartbeat (the
        previous run's last heartbeat is what the intervals close at), or for another node
        once its heartbeat is older than a few intervals.
        """
        node = self.node_id if node_id is None else _check_node(node_id)
        closed = await self._store.close_open_presences(node, RECOVERY_REASON, self._clock())
        if closed:
            log.warning("closed %d attendance intervals left open by node %s", len(closed), node)
        return closed

    async def events(self, lesson_id: str) -> list[AttendanceEvent]:
        if not looks_like_id(lesson_id):
            return []
        return await self._store.events(lesson_id)

    async def _append(
        self,
        kind: EventKind,
        lesson_id: str,
        participant_id: str,
        attendee: Attendee,
        reason: str | None,
    ) -> AttendanceEvent:
        # Programming errors, not user input: the signaling layer passes ids it issued.
        if not looks_like_id(lesson_id):
            raise ValueError("lesson ids are UUIDs")
        if not isinstance(participant_id, str) or not _PARTICIPANT_ID.fullmatch(participant_id):
            raise ValueError("participant ids are 1-64 of A-Z a-z 0-9 _ -")
        if reason is not None and not _REASON.fullmatch(reason):
            raise ValueError("reasons are snake_case codes, never free text")
        if not isinstance(attendee, Attendee):
            raise TypeError("attendee must be an Attendee")
        now = self._clock()
        return await self._store.append(
            NewEvent(
                lesson_id=lesson_id,
                participant_id=participant_id,
                kind=kind,
                attendee=attendee,
                node_id=self.node_id,
                reason=reason,
                at=now,
                recorded_at=now,
            )
        )


def _check_node(node_id: object) -> str:
    if not isinstance(node_id, str) or not _NODE_ID.fullmatch(node_id):
        raise ValueError("node ids are 1-64 of A-Z a-z 0-9 . _ -")
    return node_id
