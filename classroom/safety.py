"""Safety records of a lesson: the moderation audit log, bans and incident reports.

Three durable records, written by the signaling layer *before* it tells anyone an action is
done (the audit before the acknowledgement):

* **Audit log** (``moderation_actions``, append-only): every moderation action — who (participant
  id, name, role), what (:class:`Action`), to whom, when, on which node, with a reason code and a
  small JSON ``detail`` (e.g. the text of a deleted chat message, the settings that changed).
* **Bans** (``lesson_bans``): a removed participant who may not come back into *this* lesson.
  A ban names the roster entry (so every personal link of that student for this lesson is
  refused, also links reissued later) and the browser's device key (so a guest cannot come back
  with the password under another name from the same browser). Bans live in the shared
  database, so they hold on every node and after a restart; lifting one keeps the row (with
  who lifted it and when) and the audit log keeps both actions.
* **Incidents** (``incidents``, append-only): a participant's report of a problem (category and
  free text) stored with its context — who was present, the last chat messages, the recent
  moderation actions — for the school's leadership.

Times come from the injected clock; ids are random. Free text (incident text, chat text in a
``detail``) is stored as given after the signaling layer's checks; reason codes are snake_case.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from classroom.lessons import looks_like_id


class Action(StrEnum):
    """Moderation actions: the audit log's ``action`` column."""

    ADMIT = "admit"
    DENY = "deny"
    REMOVE = "remove"
    BAN = "ban"
    UNBAN = "unban"
    MUTE = "mute"
    STOP_VIDEO = "stop_video"
    ASK_UNMUTE = "ask_unmute"
    MAKE_MODERATOR = "make_moderator"
    REVOKE_MODERATOR = "revoke_moderator"
    LOCK = "lock"
    UNLOCK = "unlock"
    SET_PERMISSIONS = "set_permissions"
    SET_WAITING_ROOM = "set_waiting_room"
    CHAT_OFF = "chat_off"
    CHAT_ON = "chat_on"
    DELETE_MESSAGE = "delete_message"
    LOWER_HAND = "lower_hand"
    END_LESSON = "end_lesson"


class IncidentCategory(StrEnum):
    """What kind of problem a participant reports."""

    INTRUDER = "intruder"  # someone who should not be in the lesson
    HARASSMENT = "harassment"  # bullying, threats, insults
    INAPPROPRIATE = "inappropriate"  # content or behaviour unsuitable for a class
    TECHNICAL = "technical"  # cannot see, hear or be heard
    OTHER = "other"


#: Longest incident text, in characters (a paragraph; a report is not an essay).
MAX_INCIDENT_CHARS: Final = 1000
#: Recent moderation actions stored with an incident.
INCIDENT_RECENT_ACTIONS: Final = 20

_REASON: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_PARTICIPANT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DETAIL_MAX_BYTES: Final = 64 * 1024
_CONTEXT_MAX_BYTES: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class Party:
    """A participant as the safety records name them: the actor, the target, the reporter."""

    participant_id: str
    name: str
    role: str
    roster_entry_id: str | None = None

    def __post_init__(self) -> None:
        if not _PARTICIPANT_ID.fullmatch(self.participant_id):
            raise ValueError("participant ids are 1-64 of A-Z a-z 0-9 _ -")
        if not 1 <= len(self.name) <= 64:
            raise ValueError("names are 1-64 characters")
        if self.role not in ("teacher", "moderator", "student", "guest"):
            raise ValueError("role is teacher, moderator, student or guest")
        if self.roster_entry_id is not None and not looks_like_id(self.roster_entry_id):
            raise ValueError("roster entry ids are UUIDs")

    def to_json(self) -> dict[str, Any]:
        return {
            "participant": self.participant_id,
            "name": self.name,
            "role": self.role,
            "roster_entry_id": self.roster_entry_id,
        }


@dataclass(frozen=True, slots=True)
class ModerationEntry:
    """One row of the audit log. ``id`` grows with every append: the log's order."""

    id: int
    lesson_id: str
    at: datetime
    node_id: str
    actor: Party
    action: Action
    target: Party | None
    reason: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lesson_id": self.lesson_id,
            "at": self.at.isoformat(),
            "node": self.node_id,
            "actor": self.actor.to_json(),
            "action": str(self.action),
            "target": self.target.to_json() if self.target else None,
            "reason": self.reason,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class Ban:
    """A participant who may not come back into a lesson (until ``lifted_at``)."""

    id: str
    lesson_id: str
    participant_id: str
    name: str
    roster_entry_id: str | None
    device_digest: str | None
    banned_at: datetime
    banned_by: str
    lifted_at: datetime | None = None
    lifted_by: str | None = None

    @property
    def live(self) -> bool:
        return self.lifted_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "participant": self.participant_id,
            "name": self.name,
            "on_class_list": self.roster_entry_id is not None,
            "banned_at": self.banned_at.isoformat(),
            "banned_by": self.banned_by,
            "lifted_at": self.lifted_at.isoformat() if self.lifted_at else None,
            "lifted_by": self.lifted_by,
        }


@dataclass(frozen=True, slots=True)
class Incident:
    """A participant's report of a problem, with the lesson's state when it was made."""

    id: str
    lesson_id: str
    at: datetime
    node_id: str
    reporter: Party
    category: IncidentCategory
    text: str
    context: Mapping[str, Any]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lesson_id": self.lesson_id,
            "at": self.at.isoformat(),
            "reporter": self.reporter.to_json(),
            "category": str(self.category),
            "text": self.text,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "node": self.node_id, "context": dict(self.context)}


@dataclass(frozen=True, slots=True)
class NewAction:
    """An audit-log row about to be appended (the store assigns ``id``)."""

    lesson_id: str
    at: datetime
    node_id: str
    actor: Party
    action: Action
    target: Party | None
    reason: str | None
    detail: str  # JSON


class SafetyStore(Protocol):
    """Durable safety records. Every write commits before it returns; a ban or a lift and its
    audit-log row commit together."""

    async def append_action(self, entry: NewAction) -> ModerationEntry: ...

    async def actions(self, lesson_id: str, *, last: int | None = None) -> list[ModerationEntry]:
        """The lesson's audit log, oldest first (only the ``last`` n when given)."""
        ...

    async def add_ban(self, ban: Ban, audit: NewAction) -> None: ...

    async def lift_ban(
        self, lesson_id: str, ban_id: str, at: datetime, by: str, audit: Callable[[Ban], NewAction]
    ) -> Ban | None:
        """Lift a live ban and log ``audit(ban)``; ``None`` if there is no live ban with that
        id in the lesson (nothing is written then)."""
        ...

    async def bans(self, lesson_id: str) -> list[Ban]:
        """The lesson's live bans, oldest first."""
        ...

    async def banned(
        self, lesson_id: str, roster_entry_id: str | None, device_digest: str | None
    ) -> Ban | None: ...

    async def add_incident(self, incident: Incident) -> None: ...

    async def incidents(
        self, lesson_ids: Sequence[str] | None, *, limit: int
    ) -> list[Incident]: ...

    async def incident(self, incident_id: str) -> Incident | None: ...


def _now() -> datetime:
    return datetime.now(UTC)


def encode_json(value: Mapping[str, Any], limit: int) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > limit:
        raise ValueError(f"JSON record larger than {limit} bytes")
    return text


class SafetyService:
    """The audit log, bans and incidents of every lesson; one node's view of the shared store."""

    def __init__(
        self, store: SafetyStore, node_id: str, *, clock: Callable[[], datetime] = _now
    ) -> None:
        self._store = store
        self.node_id = node_id
        self._clock = clock

    # -- audit log --------------------------------------------------------------------------

    async def record(
        self,
        lesson_id: str,
        actor: Party,
        action: Action,
        target: Party | None = None,
        *,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> ModerationEntry:
        """Append one action to the audit log (committed when this returns)."""
        return await self._store.append_action(
            self._entry(lesson_id, actor, action, target, reason=reason, detail=detail)
        )

    def _entry(
        self,
        lesson_id: str,
        actor: Party,
        action: Action,
        target: Party | None,
        *,
        reason: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> NewAction:
        _check_lesson(lesson_id)
        if reason is not None and not _REASON.fullmatch(reason):
            raise ValueError("reasons are snake_case codes, never free text")
        return NewAction(
            lesson_id=lesson_id,
            at=self._clock(),
            node_id=self.node_id,
            actor=actor,
            action=Action(action),
            target=target,
            reason=reason,
            detail=encode_json(detail or {}, _DETAIL_MAX_BYTES),
        )

    async def actions(self, lesson_id: str, *, last: int | None = None) -> list[ModerationEntry]:
        _check_lesson(lesson_id)
        return await self._store.actions(lesson_id, last=last)

    # -- bans -------------------------------------------------------------------------------

    async def ban(
        self, lesson_id: str, actor: Party, target: Party, device_digest: str | None
    ) -> Ban:
        """Ban ``target`` from the lesson and log it, in one transaction."""
        _check_lesson(lesson_id)
        if device_digest is not None and not re.fullmatch(r"[0-9a-f]{64}", device_digest):
            raise ValueError("device digests are SHA-256 hex")
        ban = Ban(
            id="b_" + secrets.token_urlsafe(12),
            lesson_id=lesson_id,
            participant_id=target.participant_id,
            name=target.name,
            roster_entry_id=target.roster_entry_id,
            device_digest=device_digest,
            banned_at=self._clock(),
            banned_by=actor.name,
        )
        audit = self._entry(lesson_id, actor, Action.BAN, target, detail={"ban": ban.id})
        await self._store.add_ban(ban, audit)
        return ban

    async def lift(self, lesson_id: str, ban_id: str, actor: Party) -> Ban | None:
        """Lift a live ban (``None`` if there is none with that id in this lesson)."""
        _check_lesson(lesson_id)

        def audit(ban: Ban) -> NewAction:
            role = "student" if ban.roster_entry_id else "guest"
            target = Party(ban.participant_id, ban.name, role, ban.roster_entry_id)
            return self._entry(lesson_id, actor, Action.UNBAN, target, detail={"ban": ban.id})

        return await self._store.lift_ban(lesson_id, ban_id, self._clock(), actor.name, audit)

    async def bans(self, lesson_id: str) -> list[Ban]:
        _check_lesson(lesson_id)
        return await self._store.bans(lesson_id)

    async def banned(
        self, lesson_id: str, *, roster_entry_id: str | None, device_digest: str | None
    ) -> Ban | None:
        """The live ban that keeps this student (roster entry) or browser (device) out."""
        if roster_entry_id is None and device_digest is None:
            return None
        return await self._store.banned(lesson_id, roster_entry_id, device_digest)

    # -- incidents --------------------------------------------------------------------------

    async def report(
        self,
        lesson_id: str,
        reporter: Party,
        category: IncidentCategory,
        text: str,
        context: Mapping[str, Any],
    ) -> Incident:
        """Store an incident with its context (committed when this returns). The recent
        moderation actions are added to ``context`` here, from the audit log itself."""
        _check_lesson(lesson_id)
        if len(text) > MAX_INCIDENT_CHARS:
            raise ValueError("incident text too long")
        recent = await self._store.actions(lesson_id, last=INCIDENT_RECENT_ACTIONS)
        full = {**context, "recent_actions": [entry.to_json() for entry in recent]}
        encode_json(full, _CONTEXT_MAX_BYTES)  # refuse before writing, not half-way
        incident = Incident(
            id="i_" + secrets.token_urlsafe(12),
            lesson_id=lesson_id,
            at=self._clock(),
            node_id=self.node_id,
            reporter=reporter,
            category=IncidentCategory(category),
            text=text,
            context=full,
        )
        await self._store.add_incident(incident)
        return incident

    async def incidents(
        self, lesson_ids: Sequence[str] | None = None, *, limit: int = 500
    ) -> list[Incident]:
        """Newest first; ``lesson_ids=None`` means every lesson (the school's leadership)."""
        return await self._store.incidents(lesson_ids, limit=limit)

    async def incident(self, incident_id: str) -> Incident | None:
        if not re.fullmatch(r"i_[A-Za-z0-9_-]{1,32}", incident_id):
            return None
        return await self._store.incident(incident_id)


def _check_lesson(lesson_id: str) -> None:
    if not looks_like_id(lesson_id):
        raise ValueError("lesson ids are UUIDs")
