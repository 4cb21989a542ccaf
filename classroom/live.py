"""A live lesson: who is in it, who waits, and the rules they all live by.

Plain synchronous code, no I/O: a command goes in (admit, mute, raise a hand, post to the
chat, end the lesson …), the lesson's state changes, and :class:`Event` values come out — what
to tell whom, by participant id. Nothing here knows sockets, SDP or the SFU; the signaling
layer carries the events to the sockets and turns "stop this participant's microphone" into a
media operation. So every rule is unit-tested in milliseconds (``tests/classroom/test_live.py``)
and the same rules hold whether the lesson's people are on one node or reach it from many.

A :class:`Participant` is a person's state in the lesson: id, name, role, whether it is
admitted or waiting, connected or reconnecting, its hand, what staff turned off, what its
downlink carries. The rules on roles and permissions are ``classroom.moderation``'s; the chat's
text rules and history are ``classroom.chat``'s.

Where an action must be written to the audit log *before* it takes effect, the caller asks the
check first (:meth:`LiveLesson.check`), writes the record, then gives the command: the check is
pure, so asking it twice costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .chat import ChatLog, ChatMessage, clean_text
from .errors import ClassroomError
from .lessons import Admission, Lesson
from .moderation import (
    STAFF,
    Controls,
    Permission,
    WaitingRoom,
    check_action,
    check_permission,
    check_staff,
    forbidden,
    may,
    must_wait,
)
from .safety import Action, Party

Presence = Literal["connected", "reconnecting"]


def refused(code: str, message: str, **extra: Any) -> ClassroomError:
    return ClassroomError(code, message, extra)


def lesson_full() -> ClassroomError:
    return refused("lesson_full", "This lesson is full.")


def not_a_participant() -> ClassroomError:
    return refused("not_found", "There is no such participant in this lesson.")


@dataclass(frozen=True, slots=True)
class Event:
    """Something the lesson tells people: the protocol event ``name`` with ``data``, for the
    participants ``to`` (admitted or waiting), in that order."""

    name: str
    data: dict[str, Any]
    to: tuple[str, ...]


@dataclass(eq=False)
class Participant:
    """A person's state in one live lesson (no socket: it outlives a dropped connection)."""

    id: str
    admission: Admission
    device_digest: str | None = None
    role: str = ""
    """The role now: the admission's, or ``moderator`` while the teacher says so."""
    state: Literal["waiting", "admitted"] = "waiting"
    presence: Presence = "connected"
    hand_raised_at: float | None = None
    muted_by_staff: set[str] = field(default_factory=set)
    """Kinds (``audio``, ``video``) staff turned off; the participant may turn them back on
    only if the lesson's permissions let it."""
    unmute_invited: bool = False
    """Staff asked this participant to turn its microphone on (once)."""
    link: str = "ok"
    """What the downlink carries: ``ok``, ``weak`` or ``audio_only``."""
    data_saver: bool = False
    removal_reason: str = "removed_by_teacher"

    def __post_init__(self) -> None:
        if not self.role:
            self.role = self.base_role

    @property
    def base_role(self) -> str:
        """The role the participant was admitted with: teacher, student or guest."""
        if self.admission.role == "student" and self.admission.guest:
            return "guest"
        return self.admission.role

    @property
    def name(self) -> str:
        return self.admission.name

    @property
    def roster_entry_id(self) -> str | None:
        return self.admission.roster_entry_id

    @property
    def staff(self) -> bool:
        return self.role in STAFF

    def party(self) -> Party:
        """This participant as the safety records name it."""
        return Party(self.id, self.name, self.role, self.roster_entry_id)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "state": self.presence,
            "link": self.link,
        }


@dataclass(frozen=True, slots=True)
class Entered:
    """A participant came in: what to tell, and who it replaced (the same rostered student
    on another device: the newer connection wins, never two)."""

    events: list[Event]
    replaced: list[Participant]


@dataclass(frozen=True, slots=True)
class Muted:
    """Staff turned ``kind`` off for ``targets``: the caller stops their tracks of that kind."""

    kind: str
    targets: list[Participant]
    events: list[Event]


@dataclass(frozen=True, slots=True)
class ControlsChange:
    """The settings staff change in one request (``None``: left as it is)."""

    locked: bool | None = None
    chat: bool | None = None
    waiting_room: WaitingRoom | None = None
    permissions: frozenset[Permission] | None = None


class LiveLesson:
    """One lesson while someone is in it or waiting for it."""

    def __init__(
        self,
        lesson: Lesson,
        *,
        waiting_room: WaitingRoom = "guests",
        capacity: int = 100,
        waiting_capacity: int = 100,
        chat_history: int = 100,
    ) -> None:
        self.lesson = lesson
        self.controls = Controls(waiting_room=waiting_room)
        self.chat = ChatLog(chat_history)
        self.capacity = capacity
        self.waiting_capacity = waiting_capacity
        self.participants: dict[str, Participant] = {}
        """Admitted participants (also while reconnecting), in order of arrival."""
        self.waiting: dict[str, Participant] = {}
        """Participants knocking in the waiting room, first come first: no media, no names."""
        self.ended = False

    # -- who is here -----------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not self.participants and not self.waiting

    def staff_present(self) -> bool:
        """Whether a teacher or moderator is in the lesson (also while reconnecting)."""
        return any(p.staff for p in self.participants.values())

    def staff_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.participants.values() if p.staff)

    def everyone(self, *, exclude: str | None = None) -> tuple[str, ...]:
        return tuple(pid for pid in self.participants if pid != exclude)

    def get(self, participant_id: str) -> Participant | None:
        return self.participants.get(participant_id)

    def target(self, actor: Participant, participant_id: str) -> Participant:
        """Another admitted participant (also while reconnecting)."""
        if participant_id == actor.id:
            raise forbidden("Use your own buttons to do that to yourself.")
        target = self.participants.get(participant_id)
        if target is None:
            raise not_a_participant()
        return target

    def knocking(self, participant: str) -> list[Participant]:
        """Those waiting that ``participant`` names: one id, or ``all``."""
        if participant == "all":
            return list(self.waiting.values())
        target = self.waiting.get(participant)
        if target is None:
            raise refused("not_found", "Nobody with that id is waiting.")
        return [target]

    def same_student_elsewhere(self, participant: Participant) -> list[Participant]:
        """Other admitted participants who are the same rostered student."""
        entry = participant.roster_entry_id
        if entry is None:
            return []
        return [
            p
            for p in self.participants.values()
            if p is not participant and p.roster_entry_id == entry
        ]

    def knock_json(self, participant: Participant) -> dict[str, Any]:
        """What staff see of someone waiting: who, whether on the class list, and whether the
        same student is already in the lesson from another device."""
        return {
            "id": participant.id,
            "name": participant.name,
            "role": participant.base_role,
            "on_class_list": participant.roster_entry_id is not None,
            "already_connected": bool(self.same_student_elsewhere(participant)),
        }

    def to_staff(self, name: str, data: dict[str, Any]) -> list[Event]:
        return [Event(name, data, self.staff_ids())]

    def summary(self) -> dict[str, Any]:
        return {"id": self.lesson.id, "code": self.lesson.code, "title": self.lesson.title}

    def hand_queue(self) -> list[str]:
        """Raised hands, first raised first."""
        raised = [
            (p.hand_raised_at, pid)
            for pid, p in self.participants.items()
            if p.hand_raised_at is not None
        ]
        return [pid for _, pid in sorted(raised)]

    # -- what flows ------------------------------------------------------------------------

    @staticmethod
    def may_receive(viewer_role: str, publisher_role: str, kind: str) -> bool:
        """Whether a participant in ``viewer_role`` receives a ``kind`` track of a publisher in
        ``publisher_role``. Staff receive everyone and everyone receives staff; students hear
        each other (they speak up in class) but do not see each other: 40 cameras must not land
        on every phone."""
        return viewer_role in STAFF or publisher_role in STAFF or kind == "audio"

    def receivers(self, publisher_id: str, kind: str) -> tuple[str, ...]:
        """Everyone admitted who receives the publisher's ``kind`` tracks."""
        publisher = self.participants.get(publisher_id)
        publisher_role = publisher.role if publisher is not None else ""
        return tuple(
            p.id
            for p in self.participants.values()
            if p.id != publisher_id and self.may_receive(p.role, publisher_role, kind)
        )

    def may_send(self, participant: Participant, kind: str) -> bool:
        """Whether ``participant`` may have a live ``kind`` track right now."""
        if kind == "audio":
            if participant.unmute_invited:
                return True
            return may(participant.role, Permission.UNMUTE, self.controls) and (
                "audio" not in participant.muted_by_staff or participant.staff
            )
        return may(participant.role, Permission.VIDEO, self.controls)

    # -- arriving ----------------------------------------------------------------------------

    def must_wait(self, participant: Participant) -> bool:
        """Whether a newcomer waits: the waiting room's mode says so, or no teacher or moderator
        is here yet to teach."""
        on_class_list = participant.roster_entry_id is not None
        return must_wait(participant.base_role, on_class_list, self.controls.waiting_room) or (
            participant.role not in STAFF and not self.staff_present()
        )

    def check_open(self, participant: Participant) -> None:
        """Refuse a newcomer if the lesson has ended, or is locked to all but the teacher."""
        if self.ended:
            raise refused("lesson_ended", "The lesson has ended.")
        if self.controls.locked and participant.base_role != "teacher":
            raise refused(
                "lesson_locked", "The teacher has locked this lesson: nobody new can join now."
            )

    def arrive(self, participant: Participant) -> bool:
        """Check a newcomer whose credentials proved themselves; ``True`` if it must wait.

        A locked lesson is said only now, after the password or link: from outside, a locked
        lesson looks like any other."""
        self.check_open(participant)
        wait = self.must_wait(participant)
        if wait and len(self.waiting) >= self.waiting_capacity:
            raise refused(
                "waiting_room_full", "Too many people are waiting to join. Try again in a minute."
            )
        if not wait and len(self.participants) >= self.capacity:
            raise lesson_full()
        return wait

    def knock(self, participant: Participant) -> list[Event]:
        """Wait in the waiting room: staff see the knock."""
        participant.state = "waiting"
        self.waiting[participant.id] = participant
        return [Event("knocking", self.knock_json(participant), self.staff_ids())]

    def stop_knocking(self, participant: Participant, reason: str) -> list[Event]:
        """No longer knocking (admitted, denied, gone): staff stop seeing the knock."""
        if self.waiting.get(participant.id) is not participant:
            return []
        del self.waiting[participant.id]
        return [Event("knock_ended", {"id": participant.id, "reason": reason}, self.staff_ids())]

    def enter(self, participant: Participant) -> Entered:
        """Come into the lesson (straight away, or admitted from the waiting room)."""
        if self.ended:
            raise refused("lesson_ended", "The lesson has ended.")
        events = self.stop_knocking(participant, "admitted")
        replaced = self.same_student_elsewhere(participant)
        participant.state = "admitted"
        participant.presence = "connected"
        self.participants[participant.id] = participant
        events.append(
            Event(
                "participant_joined", participant.describe(), self.everyone(exclude=participant.id)
            )
        )
        return Entered(events, replaced)

    def who_may_enter(self) -> list[Participant]:
        """Those who wait only because no staff was present (or because of a waiting-room mode
        that changed since), first come first, as many as the lesson has room for."""
        if not self.staff_present():
            return []
        room = self.capacity - len(self.participants)
        free = [
            p
            for p in self.waiting.values()
            if not must_wait(p.base_role, p.roster_entry_id is not None, self.controls.waiting_room)
        ]
        return free[: max(0, room)]

    def room_for(self, count: int = 1) -> bool:
        return len(self.participants) + count <= self.capacity

    # -- connection comes and goes ---------------------------------------------------------

    def connection_lost(self, participant: Participant) -> list[Event]:
        """The participant's socket dropped: it stays, as reconnecting, for a grace period."""
        participant.presence = "reconnecting"
        return [
            Event(
                "participant_updated", participant.describe(), self.everyone(exclude=participant.id)
            )
        ]

    def reconnected(self, participant: Participant) -> list[Event]:
        participant.presence = "connected"
        return [
            Event(
                "participant_updated", participant.describe(), self.everyone(exclude=participant.id)
            )
        ]

    def link_changed(self, participant: Participant, link: str) -> list[Event]:
        """What the participant's downlink carries changed: staff see it."""
        if participant.link == link:
            return []
        participant.link = link
        staff = tuple(pid for pid in self.staff_ids() if pid != participant.id)
        return [Event("participant_updated", participant.describe(), staff)]

    def leave(self, participant: Participant, reason: str) -> list[Event]:
        """The participant leaves the lesson for good."""
        if self.participants.get(participant.id) is not participant:
            return []
        del self.participants[participant.id]
        events = [
            Event("participant_left", {"id": participant.id, "reason": reason}, self.everyone())
        ]
        if participant.hand_raised_at is not None:
            participant.hand_raised_at = None
            events.append(self._hands())
        return events

    # -- staff actions ---------------------------------------------------------------------

    @staticmethod
    def check(actor: Participant, action: Action, target: Participant | None = None) -> None:
        """Raise ``forbidden`` unless ``actor`` may take ``action`` (on ``target``)."""
        check_action(actor.role, action, target.role if target is not None else None)

    @staticmethod
    def check_staff(actor: Participant) -> None:
        check_staff(actor.role)

    def set_moderator(self, actor: Participant, target: Participant, on: bool) -> list[Event]:
        """Make ``target`` a moderator (or take it back): it sees the knocks from now on."""
        self.check(actor, Action.MAKE_MODERATOR if on else Action.REVOKE_MODERATOR, target)
        new_role = "moderator" if on else target.base_role
        if target.role == new_role:
            return []
        target.role = new_role
        events = [Event("participant_updated", target.describe(), self.everyone())]
        if new_role == "moderator":
            events += [
                Event("knocking", self.knock_json(w), (target.id,)) for w in self.waiting.values()
            ]
        return events

    def mute(self, actor: Participant, participant: str, kind: str) -> Muted:
        """Turn ``kind`` off for one participant, or for every student (``students``)."""
        action = Action.MUTE if kind == "audio" else Action.STOP_VIDEO
        if participant == "students":
            self.check(actor, action)
            targets = [p for p in self.participants.values() if not p.staff]
        else:
            target = self.target(actor, participant)
            self.check(actor, action, target)
            targets = [target]
        for target in targets:
            target.muted_by_staff.add(kind)
            if kind == "audio":
                target.unmute_invited = False
        events = [Event("muted", {"kind": kind, "by": actor.id}, (t.id,)) for t in targets]
        return Muted(kind, targets, events)

    def ask_unmute(self, actor: Participant, target: Participant) -> list[Event]:
        self.check(actor, Action.ASK_UNMUTE, target)
        target.unmute_invited = True
        return [Event("unmute_requested", {"by": actor.id}, (target.id,))]

    def unmuted_self(self, participant: Participant, kind: str) -> None:
        """The participant turned ``kind`` back on (the lesson allowed it)."""
        if not self.may_send(participant, kind):
            raise forbidden(
                "The teacher has not allowed you to turn your microphone on."
                if kind == "audio"
                else "The teacher has not allowed you to turn your camera on."
            )
        participant.muted_by_staff.discard(kind)
        if kind == "audio":
            participant.unmute_invited = False  # the invitation is used up

    def settings_changes(
        self, actor: Participant, change: ControlsChange
    ) -> list[tuple[Action, dict[str, Any]]]:
        """What ``change`` would change, as audit actions (nothing changes yet)."""
        self.check(actor, Action.SET_PERMISSIONS)
        controls = self.controls
        changes: list[tuple[Action, dict[str, Any]]] = []
        if change.locked is not None and change.locked != controls.locked:
            changes.append((Action.LOCK if change.locked else Action.UNLOCK, {}))
        if change.chat is not None and change.chat != controls.chat:
            changes.append((Action.CHAT_ON if change.chat else Action.CHAT_OFF, {}))
        mode = change.waiting_room
        if mode is not None and mode != controls.waiting_room:
            changes.append((Action.SET_WAITING_ROOM, {"mode": mode}))
        permissions = change.permissions
        if permissions is not None and permissions != controls.permissions:
            changes.append((Action.SET_PERMISSIONS, {"permissions": sorted(permissions)}))
        return changes

    def set_controls(self, actor: Participant, change: ControlsChange) -> list[Event]:
        self.check(actor, Action.SET_PERMISSIONS)
        controls = self.controls
        if change.locked is not None:
            controls.locked = change.locked
        if change.chat is not None:
            controls.chat = change.chat
        if change.waiting_room is not None:
            controls.waiting_room = change.waiting_room
        if change.permissions is not None:
            controls.permissions = change.permissions
        return [Event("settings", controls.to_json(), self.everyone())]

    def _hands(self) -> Event:
        return Event("hands", {"queue": self.hand_queue()}, self.everyone())

    def raise_hand(self, participant: Participant, raised: bool, now: float) -> list[Event]:
        if raised and participant.hand_raised_at is None:
            participant.hand_raised_at = now
            return [self._hands()]
        if not raised and participant.hand_raised_at is not None:
            participant.hand_raised_at = None
            return [self._hands()]
        return []

    def lower_hand(self, actor: Participant, target: Participant) -> list[Event]:
        self.check(actor, Action.LOWER_HAND, target)
        if target.hand_raised_at is None:
            return []
        target.hand_raised_at = None
        return [self._hands()]

    def admit_checks(self, actor: Participant, selector: str) -> list[Participant]:
        """Those an ``admit`` lets in now, as many as there is room for (a single one that
        does not fit is refused)."""
        self.check(actor, Action.ADMIT)
        candidates = self.knocking(selector)
        room = self.capacity - len(self.participants)
        if selector != "all" and room < len(candidates):
            raise lesson_full()
        return candidates[: max(0, room)]

    def deny_checks(self, actor: Participant, selector: str, ban: bool) -> list[Participant]:
        if ban and selector == "all":
            raise forbidden("Ban people one at a time.")
        self.check(actor, Action.BAN if ban else Action.DENY)
        return self.knocking(selector)

    def deny(self, actor: Participant, target: Participant, ban: bool) -> list[Event]:
        events = self.stop_knocking(target, "denied")
        events.append(Event("denied", {"by": actor.id, "banned": ban}, (target.id,)))
        return events

    def remove(self, actor: Participant, target: Participant, ban: bool) -> list[Event]:
        """Staff remove (or ban) ``target``: it is told; the caller closes its connection and
        media, and :meth:`leave` tells everyone else."""
        self.check(actor, Action.BAN if ban else Action.REMOVE, target)
        target.removal_reason = "banned_by_teacher" if ban else "removed_by_teacher"
        return [Event("removed", {"by": actor.id, "banned": ban}, (target.id,))]

    # -- chat --------------------------------------------------------------------------------

    def draft(
        self, sender: Participant, text: str, *, to: str | None, at: float, max_chars: int
    ) -> ChatMessage:
        """A chat message to the lesson, or privately to ``to``, checked but not posted yet
        (the caller may still refuse it for its rate)."""
        private = to is not None
        check_permission(
            sender.role, Permission.PRIVATE_CHAT if private else Permission.CHAT, self.controls
        )
        recipient = self.target(sender, to) if to is not None else None
        if recipient is not None and "teacher" not in (sender.role, recipient.role):
            # No private messages between students (child safety): only to the teacher.
            raise forbidden("Private messages can only go to the teacher.")
        return ChatMessage(
            id=self.chat.new_id(),
            sender=sender.id,
            name=sender.name,
            role=sender.role,
            text=clean_text(text, max_chars),
            at=at,
            to=recipient.id if recipient is not None else None,
        )

    def post(self, message: ChatMessage) -> list[Event]:
        """Keep a drafted message in the history and tell those who see it."""
        if message.sender not in self.participants:
            raise not_a_participant()
        if message.to is not None and message.to not in self.participants:
            raise not_a_participant()
        self.chat.add(message)
        if message.to is not None:
            return [Event("chat", message.to_json(), (message.to,))]
        return [Event("chat", message.to_json(), self.everyone(exclude=message.sender))]

    def message_to_delete(self, actor: Participant, message_id: str) -> ChatMessage:
        """The message ``actor`` may delete (staff: their own, and anyone's but the teacher's
        for a moderator)."""
        message = self.chat.get(message_id)
        if message is None:
            raise refused("not_found", "There is no such message.")
        own = message.sender == actor.id
        check_action(actor.role, Action.DELETE_MESSAGE, None if own else message.role)
        return message

    def delete_message(self, actor: Participant, message_id: str) -> list[Event]:
        message = self.message_to_delete(actor, message_id)
        self.chat.delete(message.id)
        return [Event("message_deleted", {"id": message.id, "by": actor.id}, self.everyone())]

    # -- the end -----------------------------------------------------------------------------

    def end(self, actor: Participant) -> list[Event]:
        """The teacher ends the lesson: everyone, waiting or in, is told; nobody new comes."""
        self.check(actor, Action.END_LESSON)
        self.ended = True
        everyone = (*self.participants, *self.waiting)
        return [Event("lesson_ended", {"reason": "ended_by_teacher"}, everyone)]

    # -- what a newcomer is told ----------------------------------------------------------

    def welcome(self, participant: Participant) -> dict[str, Any]:
        """The lesson as ``participant`` sees it on joining (media and tokens aside)."""
        return {
            "participant": participant.describe(),
            "lesson": self.summary(),
            "participants": [
                p.describe() for pid, p in self.participants.items() if pid != participant.id
            ],
            "controls": self.controls.to_json(),
            "hands": self.hand_queue(),
            "chat": [m.to_json() for m in self.chat.visible_to(participant.id)],
            "knocking": [self.knock_json(w) for w in self.waiting.values()]
            if participant.staff
            else [],
        }

    def incident_context(self, last_messages: int) -> dict[str, Any]:
        """The lesson as an incident report stores it."""
        return {
            "lesson": self.summary(),
            "participants": [
                {**p.describe(), "roster_entry_id": p.roster_entry_id}
                for p in self.participants.values()
            ],
            "waiting": [self.knock_json(w) for w in self.waiting.values()],
            "chat": [m.to_json() for m in self.chat.last(last_messages)],
            "controls": self.controls.to_json(),
        }
