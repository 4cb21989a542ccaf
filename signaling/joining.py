"""Joining and leaving a lesson: what a socket does for the participant behind it.

``join`` lets someone in whose credentials prove themselves (a password, a teacher token, a
personal link) — into the lesson, or into its waiting room — or resumes a participant whose
connection dropped (its resume token); ``enter`` is the moment it comes in; ``depart`` the
moment it leaves for good, and ``await_resume`` what happens when its socket merely dropped:
it stays "reconnecting" for the grace period, its media closed.

The lesson decides (``classroom.live``); this module writes attendance (a join is on disk
before anyone hears of it), keeps the directory's presence and tickets, closes media through
``signaling.tracks`` and pushes the lesson's events through the hub.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from classroom.attendance import Attendee
from classroom.live import LiveLesson, Participant
from classroom.passwords import token_digest

from . import messages, staff, tracks
from .errors import CloseCode, SignalingError

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger(__name__)

#: Shutdown reasons after which the participant may come back with its resume token.
RESUMABLE = frozenset({"disconnected"})
#: Shutdown reason when the same student joins from another device.
REPLACED_BY_DEVICE = "replaced_by_device"


async def join(session: Session, request: messages.Join) -> dict[str, Any]:
    if session.state != "connected":
        raise SignalingError("already_joined", "This connection has already joined.")
    if request.resume is not None:
        return await resume(session, request.resume)
    if request.link is not None:
        admission = await session.lessons.admit_with_link(
            request.link, session.client_address, code=request.code
        )
    elif request.token:
        admission = await session.lessons.admit_teacher(request.token)
    else:
        admission = await session.lessons.admit_guest(
            request.code or "",
            request.password or "",
            request.name or "",
            session.client_address,
        )
    if session.state != "connected":  # closed while the password was being checked
        raise SignalingError("not_authenticated", "This connection is closing.")
    session.state = "authenticated"
    lesson_id = admission.lesson.id
    participant = Participant(
        "p_" + secrets.token_urlsafe(9),
        admission,
        device_digest=token_digest(request.device) if request.device is not None else None,
    )
    try:
        live = await session.hub.open(admission.lesson, session.limits)
        # Asked only after the password or link proved itself: from outside, a locked
        # lesson looks like any other.
        live.check_open(participant)
        if participant.base_role != "teacher" and session.safety is not None:
            # In the shared database: a ban holds on every node and after a restart.
            if await session.safety.banned(
                lesson_id,
                roster_entry_id=admission.roster_entry_id,
                device_digest=participant.device_digest,
            ):
                raise SignalingError("banned")
            if session.state != "authenticated":
                raise SignalingError("not_authenticated", "This connection is closing.")
        wait = live.arrive(participant)
    except Exception:
        session.refused()
        session.hub.drop_if_empty(lesson_id)
        raise
    session.participant = participant
    session.live = live
    if wait:
        return await knock(session, live, participant)
    try:
        await enter(session)
    except Exception:
        session.refused()  # not in: it may try again
        raise
    return await welcome(session, resumed=False)


async def knock(session: Session, live: LiveLesson, me: Participant) -> dict[str, Any]:
    """Wait in the waiting room: staff see the knock; this socket sees nothing else."""
    session.state = "waiting"
    session.uncount()
    session.hub.sockets[me.id] = session
    session.tell(live.knock(me))
    await session.hub.present(live, me, me.id)
    return {"waiting": True, "participant": me.describe(), "lesson": live.summary()}


async def enter(session: Session) -> None:
    """Come into the lesson (straight from ``join``, or admitted from the waiting room):
    the join is on disk before anyone — the client included — hears of it."""
    live, me = session.joined()
    await record(session, "joined")
    if session.state not in ("authenticated", "waiting"):  # the socket closed meanwhile
        await record(session, "left", reason="connection_lost")
        session.hub.drop_if_empty(live.lesson.id)
        raise SignalingError("not_authenticated", "This connection is closing.")
    entered = live.enter(me)
    session.state = "admitted"
    session.uncount()
    session.hub.sockets[me.id] = session
    session.tell(entered.events)
    await session.hub.present(live, me, me.id)
    for old in entered.replaced:
        # The same student from a second device: the newer connection wins, never two.
        other = session.hub.socket(old.id)
        if other is not None:
            other.push(messages.event("session_replaced", {}))
            await other.shutdown(CloseCode.REPLACED, REPLACED_BY_DEVICE)
    if me.staff and live.waiting:
        # Those who waited only because no teacher was here come in now; after this
        # join's own answer (the task runs once this request has been answered).
        session.hub.background(staff.admit_who_may_enter(session, live))


async def record(session: Session, kind: str, *, reason: str | None = None) -> None:
    """Append one attendance event for this participant (committed when this returns).

    A join that cannot be written is refused (the error reaches the client); an event
    about leaving that cannot be written is logged — the lesson goes on, and recovery
    closes the interval at the last heartbeat."""
    if session.attendance is None or session.live is None or session.participant is None:
        return
    me = session.participant
    attendee = Attendee.of(me.admission)  # as admitted: a moderator attends as before
    args = (session.live.lesson.id, me.id, attendee)
    recorder = session.attendance
    if kind == "joined":
        await recorder.joined(*args, reason=reason)
        return
    try:
        if kind == "left":
            await recorder.left(*args, reason=reason or "left")
        elif kind == "reconnected":
            await recorder.reconnected(*args, reason=reason)
        elif kind == "replaced":
            await recorder.replaced(*args)
        elif kind == "removed":
            await recorder.removed(*args, reason=reason or "removed_by_teacher")
        elif kind == "admitted":
            await recorder.admitted(*args, reason=reason)
        elif kind == "denied":
            await recorder.denied(*args, reason=reason or "denied_by_teacher")
    except Exception:
        logger.exception("could not record %s of %s", kind, me.id)


async def resume(session: Session, token: str) -> dict[str, Any]:
    """Carry on as the participant the resume token was issued to (same id and role)."""
    ticket = await session.hub.take_resume(token)
    live = session.hub.lessons.get(ticket.lesson_id) if ticket else None
    me = live.get(ticket.participant_id) if live and ticket else None
    old = session.hub.socket(me.id) if me is not None else None
    if ticket is None or live is None or me is None or old is None:
        raise SignalingError("resume_failed")
    lesson = await session.lessons.get_lesson(ticket.lesson_id)
    if lesson is None or lesson.ended:
        raise SignalingError("lesson_ended")
    if session.state != "connected" or session.hub.socket(me.id) is not old:
        raise SignalingError("resume_failed")  # this socket closed, or another resume won
    if live.get(me.id) is not me:
        raise SignalingError("resume_failed")
    session.chat_bucket = old.chat_bucket
    session.incident_bucket = old.incident_bucket
    session.live = live
    session.participant = me
    session.state = "admitted"
    session.uncount()
    session.hub.sockets[me.id] = session
    session.hub.cancel_grace(me.id)
    if me.presence == "reconnecting":
        await record(session, "reconnected")
    if old.state != "closed":
        # The old socket is still open (a half-open TCP connection after a network
        # change, or a second tab): the newer connection wins.
        old.push(messages.event("session_replaced", {}))
        await old.shutdown(CloseCode.REPLACED, "replaced")
    if me.data_saver:  # the new connections keep the participant's choice
        await session.media.set_data_saver(live.lesson.id, me.id, True)
    session.tell(live.reconnected(me))
    await session.hub.present(live, me, me.id)
    return await welcome(session, resumed=True)


async def welcome(session: Session, *, resumed: bool) -> dict[str, Any]:
    """The ``join`` response: who you are, who is here, what you can receive."""
    live, me = session.joined()
    return {
        **live.welcome(me),
        "producers": [
            tracks.producer_json(p) for p in await tracks.visible_producers(session, live, me)
        ],
        "resume_token": await session.hub.issue_resume_token(live.lesson.id, me.id),
        "resume_grace": session.limits.resume_grace,
        "resumed": resumed,
        "data_saver": me.data_saver,
        # The TURN relay, with a credential minted for this participant (media.turn).
        "ice_servers": session.turn.ice_servers(me.id, time.time())
        if session.turn is not None
        else [],
    }


def leave_waiting_room(session: Session, reason: str) -> None:
    """No longer knocking (admitted, denied, gone): staff stop seeing the knock."""
    live, me = session.joined()
    session.tell(live.stop_knocking(me, reason))


def is_current(session: Session) -> bool:
    """Whether this session (not a newer one) still stands for its participant."""
    return (
        session.live is not None
        and session.participant is not None
        and session.live.get(session.participant.id) is session.participant
        and session.hub.socket(session.participant.id) is session
    )


async def await_resume(session: Session) -> None:
    """The socket dropped: keep the participant as "reconnecting" for the grace period."""
    live, me = session.joined()
    if not is_current(session):
        return
    session.tell(live.connection_lost(me))
    await session.hub.present(live, me, me.id)
    # Written now, not when the grace ends: a resume within 60 s continues the interval,
    # and a crash meanwhile loses nothing.
    await record(session, "left", reason="connection_lost")
    await tracks.release(session)
    if is_current(session):  # no resume arrived while the media closed

        async def expire() -> None:
            if is_current(session):
                await depart(session, "connection_lost")

        session.hub.start_grace(me.id, session.limits.resume_grace, expire)


async def depart(session: Session, reason: str) -> None:
    """The participant leaves the lesson for good."""
    live, me = session.joined()
    if not is_current(session):
        return
    was_reconnecting = me.presence == "reconnecting"
    left = live.leave(me, reason)
    session.forget_socket()
    session.hub.cancel_grace(me.id)
    await session.hub.revoke_resume(me.id)
    await session.hub.present(live, None, me.id)
    await tracks.release(session)
    if reason == REPLACED_BY_DEVICE:
        await record(session, "replaced")
    elif reason == "removed":
        await record(session, "removed", reason=me.removal_reason)
    elif not was_reconnecting:  # a dropped socket's leaving is written already
        await record(session, "left", reason=reason)
    session.tell(left)
    session.hub.drop_if_empty(live.lesson.id)
