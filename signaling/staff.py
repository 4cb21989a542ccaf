"""Lesson requests beyond media: what the teacher and moderators do to others, and each
participant's hand, chat and incident reports.

``classroom.live`` decides who may and what changes; this module carries it out — the audit
log, the sockets, the media. **Every moderation action is written to the audit log before it
takes effect and before the actor hears ``ok``**: an action that cannot be recorded is not
taken, and the actor gets the error instead. Incident reports, likewise, are stored before
anyone is told.

Each handler takes the acting socket (for its ports: records, media, the hub), the lesson, the
acting participant and the request, and returns the ``ok`` data — or ``None`` when it answered
by itself, because the answer must reach the actor before a socket is closed (removing,
denying, ending the lesson).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from classroom.chat import clean_text
from classroom.live import ControlsChange, LiveLesson, Participant
from classroom.moderation import parse_permissions
from classroom.safety import Action, IncidentCategory
from media.port import MediaError

from . import joining, messages, tracks
from .errors import CloseCode, SignalingError

if TYPE_CHECKING:
    from .session import Session

#: Chat messages and moderation actions stored with an incident report.
INCIDENT_CHAT_MESSAGES = 20


async def _audit(
    ctx: Session,
    live: LiveLesson,
    actor: Participant,
    action: Action,
    target: Participant | None = None,
    *,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one action to the audit log (committed when this returns)."""
    if ctx.safety is None:
        return  # a server built without records (unit tests of the protocol alone)
    await ctx.safety.record(
        live.lesson.id,
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


def _socket(ctx: Session, participant: Participant) -> Session:
    session = ctx.hub.socket(participant.id)
    if session is None:
        raise SignalingError("not_found", "There is no such participant in this lesson.")
    return session


# -- roles ---------------------------------------------------------------------------------


async def set_moderator(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.SetModerator
) -> dict[str, Any]:
    target = live.target(actor, request.participant)
    action = Action.MAKE_MODERATOR if request.moderator else Action.REVOKE_MODERATOR
    live.check(actor, action, target)
    if target.role != ("moderator" if request.moderator else target.base_role):
        await _audit(ctx, live, actor, action, target)
        ctx.tell(live.set_moderator(actor, target, request.moderator))
        tracks.resync_everyone(ctx, live)  # what each side may receive changed with the role
    return target.describe()


# -- microphones and cameras ---------------------------------------------------------------


async def mute(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Mute
) -> dict[str, Any]:
    action = Action.MUTE if request.kind == "audio" else Action.STOP_VIDEO
    if request.participant == "students":
        live.check(actor, action)
        students = [p for p in live.participants.values() if not p.staff]
        await _audit(
            ctx, live, actor, action, detail={"kind": request.kind, "students": len(students)}
        )
    else:
        target = live.target(actor, request.participant)
        live.check(actor, action, target)
        await _audit(ctx, live, actor, action, target, detail={"kind": request.kind})
    muted = live.mute(actor, request.participant, request.kind)
    for target in muted.targets:
        await tracks.pause_producers(_socket(ctx, target), request.kind)
    ctx.tell(muted.events)
    return {"participants": [t.id for t in muted.targets], "kind": request.kind}


async def ask_unmute(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.AskUnmute
) -> dict[str, Any]:
    target = live.target(actor, request.participant)
    live.check(actor, Action.ASK_UNMUTE, target)
    await _audit(ctx, live, actor, Action.ASK_UNMUTE, target)
    ctx.tell(live.ask_unmute(actor, target))
    return {"participant": target.id}


# -- the lesson's settings -----------------------------------------------------------------


async def settings(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Settings
) -> dict[str, Any]:
    LiveLesson.check(actor, Action.SET_PERMISSIONS)
    wanted = ControlsChange(
        locked=request.locked,
        chat=request.chat,
        waiting_room=request.waiting_room,  # type: ignore[arg-type]
        permissions=parse_permissions(list(request.permissions))
        if request.permissions is not None
        else None,
    )
    changes = live.settings_changes(actor, wanted)
    for action, detail in changes:
        await _audit(ctx, live, actor, action, detail=detail)
    ctx.tell(live.set_controls(actor, wanted))
    if any(action is Action.SET_WAITING_ROOM for action, _ in changes) and live.waiting:
        ctx.hub.background(admit_who_may_enter(ctx, live))
    return live.controls.to_json()


# -- hands ---------------------------------------------------------------------------------


async def raise_hand(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.RaiseHand
) -> dict[str, Any]:
    ctx.tell(live.raise_hand(actor, request.raised, ctx.now()))
    return {"raised": request.raised}


async def lower_hand(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.LowerHand
) -> dict[str, Any]:
    target = live.target(actor, request.participant)
    live.check(actor, Action.LOWER_HAND, target)
    if target.hand_raised_at is not None:
        await _audit(ctx, live, actor, Action.LOWER_HAND, target)
        ctx.tell(live.lower_hand(actor, target))
    return {"participant": target.id}


# -- remove, ban, unban --------------------------------------------------------------------


async def _ban(ctx: Session, live: LiveLesson, actor: Participant, target: Participant) -> None:
    """Ban ``target`` from this lesson (with its audit row, in one transaction)."""
    if ctx.safety is None:
        raise SignalingError("unavailable", "Banning needs the server's database.")
    await ctx.safety.ban(live.lesson.id, actor.party(), target.party(), target.device_digest)


async def remove(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Remove
) -> None:
    target = live.target(actor, request.participant)
    live.check(actor, Action.BAN if request.ban else Action.REMOVE, target)
    if request.ban:
        await _ban(ctx, live, actor, target)
    else:
        await _audit(ctx, live, actor, Action.REMOVE, target)
    # Media first: nothing of theirs is forwarded, and nothing reaches them, from now on.
    ctx.tell(live.remove(actor, target, request.ban))
    ctx.push(messages.ok(request.id, {"participant": target.id, "banned": request.ban}))
    await _socket(ctx, target).shutdown(CloseCode.REMOVED, "removed")


async def bans(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Bans
) -> dict[str, Any]:
    LiveLesson.check_staff(actor)
    if ctx.safety is None:
        return {"bans": []}
    listed = await ctx.safety.bans(live.lesson.id)
    return {"bans": [ban.to_json() for ban in listed]}


async def unban(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Unban
) -> dict[str, Any]:
    LiveLesson.check(actor, Action.UNBAN)
    if ctx.safety is None:
        raise SignalingError("unavailable", "Bans need the server's database.")
    lifted = await ctx.safety.lift(live.lesson.id, request.ban, actor.party())
    if lifted is None:
        raise SignalingError("not_found", "There is no such ban in this lesson.")
    return {"ban": lifted.to_json()}


# -- the waiting room ----------------------------------------------------------------------


async def _let_in(ctx: Session, live: LiveLesson, target: Participant, reason: str) -> bool:
    """Move ``target`` from the waiting room into the lesson; ``False`` if it left meanwhile."""
    session = ctx.hub.socket(target.id)
    if live.waiting.get(target.id) is not target or session is None:
        return False
    joining.leave_waiting_room(session, "admitted")
    try:
        await joining.record(session, "admitted", reason=reason)
        await joining.enter(session)
    except SignalingError:
        return False  # its socket closed meanwhile
    session.push(messages.event("admitted", await joining.welcome(session, resumed=False)))
    return True


async def admit(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Admit
) -> dict[str, Any]:
    admitted = []
    for target in live.admit_checks(actor, request.participant):
        if live.waiting.get(target.id) is not target:
            continue  # admitted by someone else, or gone
        if not live.room_for():
            if request.participant != "all":
                raise SignalingError("lesson_full", "This lesson is full.")
            break
        await _audit(ctx, live, actor, Action.ADMIT, target)
        if await _let_in(ctx, live, target, "admitted_by_staff"):
            admitted.append(target.id)
    return {"participants": admitted}


async def deny(ctx: Session, live: LiveLesson, actor: Participant, request: messages.Deny) -> None:
    targets = live.deny_checks(actor, request.participant, request.ban)
    sessions = [(t, ctx.hub.socket(t.id)) for t in targets]
    for target, session in sessions:
        if request.ban:
            await _ban(ctx, live, actor, target)
        else:
            await _audit(ctx, live, actor, Action.DENY, target)
        if session is not None:
            await joining.record(
                session, "denied", reason="banned_by_teacher" if request.ban else None
            )
    ctx.push(
        messages.ok(request.id, {"participants": [t.id for t in targets], "banned": request.ban})
    )
    for target, session in sessions:
        ctx.tell(live.deny(actor, target, request.ban))
        if session is not None:
            await session.shutdown(CloseCode.DENIED, "denied")


async def admit_who_may_enter(ctx: Session, live: LiveLesson) -> None:
    """Let in everyone who waits only because no staff was present (or because of a waiting
    room mode that changed). Not an action of a person: attendance records the reason."""
    for target in live.who_may_enter():
        if not live.room_for():
            break
        await _let_in(ctx, live, target, "no_wait_needed")


# -- chat ----------------------------------------------------------------------------------


async def chat(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Chat
) -> dict[str, Any]:
    message = live.draft(
        actor, request.text, to=request.to, at=time.time(), max_chars=ctx.limits.max_chat_chars
    )
    if not ctx.chat_bucket.take(ctx.now()):
        raise _rate_limited(ctx.limits.chat_rate, "messages")
    ctx.tell(live.post(message))
    return {"message": message.to_json()}


async def delete_message(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.DeleteMessage
) -> dict[str, Any]:
    message = live.message_to_delete(actor, request.message)
    await _audit(
        ctx,
        live,
        actor,
        Action.DELETE_MESSAGE,
        live.get(message.sender),
        detail={"message": message.to_json()},
    )
    ctx.tell(live.delete_message(actor, message.id))
    return {"message": message.id}


# -- incident reports and the audit log ----------------------------------------------------


async def report_incident(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.ReportIncident
) -> dict[str, Any]:
    if ctx.safety is None:
        raise SignalingError("unavailable", "Incident reports need the server's database.")
    text = request.text.strip()
    if text:
        text = clean_text(text, ctx.limits.max_incident_chars)
    if not ctx.incident_bucket.take(ctx.now()):
        raise _rate_limited(1 / ctx.limits.incident_interval, "reports")
    context = live.incident_context(INCIDENT_CHAT_MESSAGES)
    incident = await ctx.safety.report(
        live.lesson.id, actor.party(), IncidentCategory(request.category), text, context
    )
    ctx.tell(live.to_staff("incident", incident.summary()))
    return {"incident": incident.id}


async def moderation_log(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.ModerationLog
) -> dict[str, Any]:
    LiveLesson.check_staff(actor)
    if ctx.safety is None:
        return {"actions": []}
    entries = await ctx.safety.actions(live.lesson.id, last=200)
    return {"actions": [entry.to_json() for entry in entries]}


async def stats(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.Stats
) -> dict[str, Any]:
    """One participant's connection figures for staff: the downlink estimate and its inputs,
    what the server holds back, what it publishes."""
    LiveLesson.check_staff(actor)
    target = live.get(request.participant)
    if target is None:
        raise SignalingError("not_found", "There is no such participant in this lesson.")
    try:
        figures = await ctx.media.stats(live.lesson.id, request.participant)
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


async def end_lesson(
    ctx: Session, live: LiveLesson, actor: Participant, request: messages.EndLesson
) -> None:
    LiveLesson.check(actor, Action.END_LESSON)
    await _audit(ctx, live, actor, Action.END_LESSON)
    await ctx.lessons.end_lesson(live.lesson.id)
    ctx.push(messages.ok(request.id, {}))
    ended = live.end(actor)
    sessions = [ctx.hub.socket(pid) for event in ended for pid in event.to]
    ctx.tell(ended)
    for session in sessions:
        if session is not None:
            await session.shutdown(CloseCode.LESSON_ENDED, "lesson_ended")
    await ctx.media.close_lesson(live.lesson.id)


HANDLERS: dict[type, tracks.Handler] = {
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
