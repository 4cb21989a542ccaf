"""Lesson requests beyond media: what the teacher and moderators do to others, and each
participant's hand, chat and incident reports.

``signaling.moderation`` decides who may; this module carries it out. **Every moderation
action is written to the audit log before it takes effect and before the actor hears ``ok``**
(SECURITY.md item 21): an action that cannot be recorded is not taken, and the actor gets the
error instead. Incident reports, likewise, are stored before anyone is told.

Each handler takes the acting session and its request and returns the ``ok`` data — or
``None`` when it answered by itself, because the answer must reach the actor before a socket is
closed (removing, denying, ending the lesson).
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from classroom.chat import ChatMessage, clean_text
from classroom.moderation import (
    STAFF,
    Permission,
    check_action,
    check_permission,
    check_staff,
    forbidden,
    must_wait,
    parse_permissions,
)
from classroom.safety import Action, IncidentCategory
from media.service import MediaError

from . import messages
from .errors import CloseCode, SignalingError

if TYPE_CHECKING:
    from .hub import LiveLesson
    from .session import Session

#: Chat messages and moderation actions stored with an incident report.
INCIDENT_CHAT_MESSAGES = 20


def _live(actor: Session) -> LiveLesson:
    assert actor.live is not None and actor.participant_id is not None
    return actor.live


async def _audit(
    actor: Session,
    action: Action,
    target: Session | None = None,
    *,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one action to the audit log (committed when this returns)."""
    if actor.safety is None:
        return  # a server built without records (unit tests of the protocol alone)
    await actor.safety.record(
        _live(actor).lesson.id,
        actor.party(),
        action,
        target.party() if target is not None else None,
        reason=reason,
        detail=detail,
    )


def _rate_limited(bucket_rate: float, what: str) -> SignalingError:
    return SignalingError(
        "rate_limited",
        f"You are sending {what} too fast; wait a moment.",
        extra={"retry_after": max(1, math.ceil(1 / bucket_rate))},
    )


# -- roles ---------------------------------------------------------------------------------


async def set_moderator(actor: Session, request: messages.SetModerator) -> dict[str, Any]:
    live = _live(actor)
    target = actor.target(request.participant)
    action = Action.MAKE_MODERATOR if request.moderator else Action.REVOKE_MODERATOR
    check_action(actor.role, action, target.role)
    new_role = "moderator" if request.moderator else target.base_role
    if target.role != new_role:
        await _audit(actor, action, target)
        target.set_role(new_role)
        live.broadcast(messages.event("participant_updated", target.describe()))
        actor.live_resync()  # what each side may receive changed with the role
        if new_role == "moderator":
            for waiting in live.waiting.values():
                target.push(messages.event("knocking", waiting.knock_json()))
    return target.describe()


# -- microphones and cameras ---------------------------------------------------------------


async def mute(actor: Session, request: messages.Mute) -> dict[str, Any]:
    live = _live(actor)
    action = Action.MUTE if request.kind == "audio" else Action.STOP_VIDEO
    if request.participant == "students":
        check_action(actor.role, action)
        targets = [s for s in live.sessions.values() if s.role not in STAFF]
        await _audit(actor, action, detail={"kind": request.kind, "students": len(targets)})
    else:
        target = actor.target(request.participant)
        check_action(actor.role, action, target.role)
        targets = [target]
        await _audit(actor, action, target, detail={"kind": request.kind})
    for target in targets:
        target.muted_by_staff.add(request.kind)
        if request.kind == "audio":
            target.unmute_invited = False
        target.pause_producers(request.kind)
        target.push(messages.event("muted", {"kind": request.kind, "by": actor.participant_id}))
    return {"participants": [t.participant_id for t in targets], "kind": request.kind}


async def ask_unmute(actor: Session, request: messages.AskUnmute) -> dict[str, Any]:
    target = actor.target(request.participant)
    check_action(actor.role, Action.ASK_UNMUTE, target.role)
    await _audit(actor, Action.ASK_UNMUTE, target)
    target.unmute_invited = True
    target.push(messages.event("unmute_requested", {"by": actor.participant_id}))
    return {"participant": target.participant_id}


# -- the lesson's settings -----------------------------------------------------------------


async def settings(actor: Session, request: messages.Settings) -> dict[str, Any]:
    live = _live(actor)
    check_action(actor.role, Action.SET_PERMISSIONS)
    controls = live.controls
    permissions = (
        parse_permissions(list(request.permissions)) if request.permissions is not None else None
    )
    changes: list[tuple[Action, dict[str, Any]]] = []
    if request.locked is not None and request.locked != controls.locked:
        changes.append((Action.LOCK if request.locked else Action.UNLOCK, {}))
    if request.chat is not None and request.chat != controls.chat:
        changes.append((Action.CHAT_ON if request.chat else Action.CHAT_OFF, {}))
    if request.waiting_room is not None and request.waiting_room != controls.waiting_room:
        changes.append((Action.SET_WAITING_ROOM, {"mode": request.waiting_room}))
    if permissions is not None and permissions != controls.permissions:
        changes.append((Action.SET_PERMISSIONS, {"permissions": sorted(permissions)}))
    for action, detail in changes:
        await _audit(actor, action, detail=detail)
    if request.locked is not None:
        controls.locked = request.locked
    if request.chat is not None:
        controls.chat = request.chat
    if request.waiting_room is not None:
        controls.waiting_room = request.waiting_room  # type: ignore[assignment]
    if permissions is not None:
        controls.permissions = permissions
    live.broadcast(messages.event("settings", controls.to_json()))
    if any(action is Action.SET_WAITING_ROOM for action, _ in changes) and live.waiting:
        actor.hub.background(admit_who_may_enter(actor))
    return controls.to_json()


# -- hands ---------------------------------------------------------------------------------


def _hands_changed(live: LiveLesson) -> None:
    live.broadcast(messages.event("hands", {"queue": live.hand_queue()}))


async def raise_hand(actor: Session, request: messages.RaiseHand) -> dict[str, Any]:
    live = _live(actor)
    if request.raised and actor.hand_raised_at is None:
        actor.hand_raised_at = actor.now()
        _hands_changed(live)
    elif not request.raised and actor.hand_raised_at is not None:
        actor.hand_raised_at = None
        _hands_changed(live)
    return {"raised": request.raised}


async def lower_hand(actor: Session, request: messages.LowerHand) -> dict[str, Any]:
    target = actor.target(request.participant)
    check_action(actor.role, Action.LOWER_HAND, target.role)
    if target.hand_raised_at is not None:
        await _audit(actor, Action.LOWER_HAND, target)
        target.hand_raised_at = None
        _hands_changed(_live(actor))
    return {"participant": target.participant_id}


# -- remove, ban, unban --------------------------------------------------------------------


async def _ban(actor: Session, target: Session) -> None:
    """Ban ``target`` from this lesson (with its audit row, in one transaction)."""
    if actor.safety is None:
        raise SignalingError("unavailable", "Banning needs the server's database.")
    await actor.safety.ban(
        _live(actor).lesson.id, actor.party(), target.party(), target.device_digest
    )


async def remove(actor: Session, request: messages.Remove) -> None:
    target = actor.target(request.participant)
    check_action(actor.role, Action.BAN if request.ban else Action.REMOVE, target.role)
    if request.ban:
        await _ban(actor, target)
        target.removal_reason = "banned_by_teacher"
    else:
        await _audit(actor, Action.REMOVE, target)
    # Media first: nothing of theirs is forwarded, and nothing reaches them, from now on.
    target.push(messages.event("removed", {"by": actor.participant_id, "banned": request.ban}))
    actor.push(
        messages.ok(request.id, {"participant": target.participant_id, "banned": request.ban})
    )
    await target.shutdown(CloseCode.REMOVED, "removed")


async def bans(actor: Session, request: messages.Bans) -> dict[str, Any]:
    check_staff(actor.role)
    if actor.safety is None:
        return {"bans": []}
    listed = await actor.safety.bans(_live(actor).lesson.id)
    return {"bans": [ban.to_json() for ban in listed]}


async def unban(actor: Session, request: messages.Unban) -> dict[str, Any]:
    check_action(actor.role, Action.UNBAN)
    if actor.safety is None:
        raise SignalingError("unavailable", "Bans need the server's database.")
    lifted = await actor.safety.lift(_live(actor).lesson.id, request.ban, actor.party())
    if lifted is None:
        raise SignalingError("not_found", "There is no such ban in this lesson.")
    return {"ban": lifted.to_json()}


# -- the waiting room ----------------------------------------------------------------------


def _knocking(live: LiveLesson, participant: str) -> list[Session]:
    if participant == "all":
        return list(live.waiting.values())
    target = live.waiting.get(participant)
    if target is None:
        raise SignalingError("not_found", "Nobody with that id is waiting.")
    return [target]


async def _let_in(target: Session, reason: str) -> bool:
    """Move ``target`` from the waiting room into the lesson; ``False`` if it left meanwhile."""
    live = _live(target)
    if live.waiting.get(target.participant_id or "") is not target:
        return False
    target.leave_waiting_room("admitted")
    try:
        await target.record("admitted", reason=reason)
        await target.enter()
    except SignalingError:
        return False  # its socket closed meanwhile
    target.push(messages.event("admitted", target.welcome(resumed=False)))
    return True


async def admit(actor: Session, request: messages.Admit) -> dict[str, Any]:
    live = _live(actor)
    check_action(actor.role, Action.ADMIT)
    admitted = []
    for target in _knocking(live, request.participant):
        if live.waiting.get(target.participant_id or "") is not target:
            continue  # admitted by someone else, or gone
        if len(live.sessions) >= actor.limits.participants_per_lesson:
            if request.participant != "all":
                raise SignalingError("lesson_full", "This lesson is full.")
            break
        await _audit(actor, Action.ADMIT, target)
        if await _let_in(target, "admitted_by_staff"):
            admitted.append(target.participant_id)
    return {"participants": admitted}


async def deny(actor: Session, request: messages.Deny) -> None:
    live = _live(actor)
    if request.ban and request.participant == "all":
        raise forbidden("Ban people one at a time.")
    check_action(actor.role, Action.BAN if request.ban else Action.DENY)
    targets = _knocking(live, request.participant)
    for target in targets:
        if request.ban:
            await _ban(actor, target)
        else:
            await _audit(actor, Action.DENY, target)
        await target.record("denied", reason="banned_by_teacher" if request.ban else None)
    actor.push(
        messages.ok(
            request.id,
            {"participants": [t.participant_id for t in targets], "banned": request.ban},
        )
    )
    for target in targets:
        target.push(messages.event("denied", {"by": actor.participant_id, "banned": request.ban}))
        await target.shutdown(CloseCode.DENIED, "denied")


async def admit_who_may_enter(actor: Session) -> None:
    """Let in everyone who waits only because no staff was present (or because of a waiting
    room mode that changed). Not an action of a person: attendance records the reason."""
    live = _live(actor)
    if not live.staff_present():
        return
    for target in list(live.waiting.values()):
        assert target.admission is not None
        on_class_list = target.admission.roster_entry_id is not None
        if must_wait(target.base_role, on_class_list, live.controls.waiting_room):
            continue
        if len(live.sessions) >= actor.limits.participants_per_lesson:
            break
        await _let_in(target, "no_wait_needed")


# -- chat ----------------------------------------------------------------------------------


async def chat(actor: Session, request: messages.Chat) -> dict[str, Any]:
    live = _live(actor)
    assert actor.participant_id is not None
    private = request.to is not None
    check_permission(
        actor.role, Permission.PRIVATE_CHAT if private else Permission.CHAT, live.controls
    )
    recipient = actor.target(request.to) if request.to is not None else None
    if recipient is not None and "teacher" not in (actor.role, recipient.role):
        # No private messages between students (child safety): only to the teacher.
        raise forbidden("Private messages can only go to the teacher.")
    text = clean_text(request.text, actor.limits.max_chat_chars)
    if not actor.chat_bucket.take(actor.now()):
        raise _rate_limited(actor.limits.chat_rate, "messages")
    message = ChatMessage(
        id=live.chat.new_id(),
        sender=actor.participant_id,
        name=actor.name,
        role=actor.role,
        text=text,
        at=time.time(),
        to=recipient.participant_id if recipient is not None else None,
    )
    live.chat.add(message)
    event = messages.event("chat", message.to_json())
    if recipient is not None:
        recipient.push(event)
    else:
        live.broadcast(event, exclude=actor.participant_id)
    return {"message": message.to_json()}


async def delete_message(actor: Session, request: messages.DeleteMessage) -> dict[str, Any]:
    live = _live(actor)
    message = live.chat.get(request.message)
    if message is None:
        raise SignalingError("not_found", "There is no such message.")
    # Staff may delete their own messages; a moderator may not delete the teacher's.
    own = message.sender == actor.participant_id
    check_action(actor.role, Action.DELETE_MESSAGE, None if own else message.role)
    author = live.sessions.get(message.sender)
    await _audit(
        actor,
        Action.DELETE_MESSAGE,
        author,
        detail={"message": message.to_json()},
    )
    live.chat.delete(message.id)
    live.broadcast(
        messages.event("message_deleted", {"id": message.id, "by": actor.participant_id})
    )
    return {"message": message.id}


# -- incident reports and the audit log ----------------------------------------------------


async def report_incident(actor: Session, request: messages.ReportIncident) -> dict[str, Any]:
    live = _live(actor)
    if actor.safety is None:
        raise SignalingError("unavailable", "Incident reports need the server's database.")
    text = request.text.strip()
    if text:
        text = clean_text(text, actor.limits.max_incident_chars)
    if not actor.incident_bucket.take(actor.now()):
        raise _rate_limited(1 / actor.limits.incident_interval, "reports")
    lesson = live.lesson
    context = {
        "lesson": {"id": lesson.id, "code": lesson.code, "title": lesson.title},
        "participants": [
            {
                **session.describe(),
                "roster_entry_id": session.admission.roster_entry_id if session.admission else None,
            }
            for session in live.sessions.values()
        ],
        "waiting": [session.knock_json() for session in live.waiting.values()],
        "chat": [m.to_json() for m in live.chat.last(INCIDENT_CHAT_MESSAGES)],
        "controls": live.controls.to_json(),
    }
    incident = await actor.safety.report(
        lesson.id, actor.party(), IncidentCategory(request.category), text, context
    )
    live.tell_staff(messages.event("incident", incident.summary()))
    return {"incident": incident.id}


async def moderation_log(actor: Session, request: messages.ModerationLog) -> dict[str, Any]:
    check_staff(actor.role)
    if actor.safety is None:
        return {"actions": []}
    entries = await actor.safety.actions(_live(actor).lesson.id, last=200)
    return {"actions": [entry.to_json() for entry in entries]}


async def stats(actor: Session, request: messages.Stats) -> dict[str, Any]:
    """One participant's connection figures for staff: the downlink estimate and its inputs,
    what the server holds back, what it publishes."""
    check_staff(actor.role)
    live = _live(actor)
    target = live.sessions.get(request.participant)
    if target is None:
        raise SignalingError("not_found", "There is no such participant in this lesson.")
    try:
        figures = actor.media.stats(live.lesson.id, request.participant)
    except MediaError:
        figures = {"downlink": None, "uplink": []}
    down = figures["downlink"] or {}
    estimator = down.get("estimator") or {}
    rtt = down.get("rtt")  # None until a consent check has measured one
    return {
        "participant": request.participant,
        "link": target.link,
        "state": down.get("state", target.link),
        "estimate": down.get("estimate"),
        "source": estimator.get("source"),
        "rtt": round(rtt * 1000) if isinstance(rtt, int | float) else None,
        "loss": estimator.get("loss_fraction"),
        "sent_bitrate": down.get("sent_bitrate"),
        "tracks": [
            {"producer": t["producer"], "kind": t["kind"], "paused": t["paused"]}
            for t in down.get("tracks", [])
        ],
        **figures,
    }


# -- the end -------------------------------------------------------------------------------


async def end_lesson(actor: Session, request: messages.EndLesson) -> None:
    live = _live(actor)
    check_action(actor.role, Action.END_LESSON)
    await _audit(actor, Action.END_LESSON)
    await actor.lessons.end_lesson(live.lesson.id)
    actor.push(messages.ok(request.id, {}))
    ended = messages.event("lesson_ended", {"reason": "ended_by_teacher"})
    everyone = [*live.sessions.values(), *live.waiting.values()]
    for session in everyone:
        session.push(ended)
    for session in everyone:
        await session.shutdown(CloseCode.LESSON_ENDED, "lesson_ended")
    await actor.media.close_lesson(live.lesson.id)


Handler = Callable[["Session", Any], Awaitable[dict[str, Any] | None]]

HANDLERS: dict[type, Handler] = {
    messages.EndLesson: end_lesson,
    messages.SetModerator: set_moderator,
    messages.Mute: mute,
    messages.AskUnmute: ask_unmute,
    messages.Settings: settings,
    messages.RaiseHand: raise_hand,
    messages.LowerHand: lower_hand,
    messages.Remove: remove,
    messages.Bans: bans,
    messages.Unban: unban,
    messages.Admit: admit,
    messages.Deny: deny,
    messages.Chat: chat,
    messages.DeleteMessage: delete_message,
    messages.ReportIncident: report_incident,
    messages.ModerationLog: moderation_log,
    messages.Stats: stats,
}
