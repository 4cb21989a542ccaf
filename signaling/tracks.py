"""The media requests of an admitted participant, carried out through the ``MediaPort``:
publishing, the subscribe negotiation, trickled candidates, pausing one's own tracks, choosing
whose video to receive, audio only — and what staff and the lesson do to a participant's media
(pausing its tracks, closing its connections).

Who receives what is the lesson's rule (``LiveLesson.may_receive``, ``receivers``); whether a
participant may send a kind of track now is too (``LiveLesson.may_send``). A track the lesson
does not allow is paused at the server, whatever the client does.

Each handler takes the participant's socket, the lesson, the participant and the request, and
returns the ``ok`` data. The subscribe negotiation is per socket (:class:`Subscription`): one
offer at a time, and a change that arrives while an offer waits for its answer is offered right
after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from classroom.live import Event, LiveLesson, Participant
from media.port import DownlinkChange, MediaError, ProducerInfo

from . import messages
from .errors import SignalingError
from .sdp_guard import check_answer, check_offer

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger(__name__)


class Subscription:
    """One socket's subscribe negotiation."""

    def __init__(self) -> None:
        self.wanted = False
        """The client asked to receive media (``subscribe``)."""
        self.offer_version: int | None = None
        """The offer awaiting its answer."""
        self.again = False
        """Something changed while an offer waited: offer again after its answer."""
        self.lock = asyncio.Lock()

    def reset(self) -> None:
        self.wanted = False
        self.offer_version = None


def producer_json(p: ProducerInfo) -> dict[str, Any]:
    return {"id": p.id, "participant": p.participant_id, "kind": p.kind, "paused": p.paused}


def _role_of(live: LiveLesson, participant_id: str) -> str:
    participant = live.get(participant_id)
    return participant.role if participant is not None else ""


async def visible_producers(
    session: Session, live: LiveLesson, me: Participant
) -> list[ProducerInfo]:
    """The lesson's producers ``me`` receives."""
    return [
        p
        for p in await session.media.producers(live.lesson.id)
        if p.participant_id != me.id
        and live.may_receive(me.role, _role_of(live, p.participant_id), p.kind)
    ]


def tell_receivers(session: Session, live: LiveLesson, p: ProducerInfo, name: str) -> None:
    """Tell everyone in the lesson who receives the producer ``p``."""
    receivers = live.receivers(p.participant_id, p.kind)
    session.tell([Event(name, producer_json(p), receivers)])


def resync_everyone(session: Session, live: LiveLesson, exclude: str | None = None) -> None:
    """Ask every subscribed participant of the lesson to bring its media up to date."""
    for pid in live.everyone(exclude=exclude):
        other = session.hub.socket(pid)
        if other is not None and other.subscription.wanted:
            other.spawn(resync(other))


async def resync(session: Session) -> None:
    """Offer ``session``'s participant what it should receive now, if that changed."""
    sub = session.subscription
    async with sub.lock:
        if session.state != "admitted" or not sub.wanted:
            return
        if sub.offer_version is not None:
            sub.again = True  # after the outstanding answer
            return
        offer = await _make_offer(session)
        if offer is not None:
            session.push(messages.event("offer", offer))


async def _make_offer(session: Session) -> dict[str, Any] | None:
    live, me = session.joined()
    try:
        offer = await session.media.subscribe(
            live.lesson.id, me.id, [p.id for p in await visible_producers(session, live, me)]
        )
    except MediaError:
        logger.exception("subscribe offer failed")
        return None
    if offer is None:
        return None
    session.subscription.offer_version = offer.version
    return {
        "sdp": offer.sdp,
        "version": offer.version,
        "consumers": [
            {
                "id": c.id,
                "producer": c.producer_id,
                "participant": c.participant_id,
                "kind": c.kind,
                "mid": c.mid,
            }
            for c in offer.consumers
        ],
    }


# -- requests ------------------------------------------------------------------------------


async def publish(
    session: Session, live: LiveLesson, me: Participant, request: messages.Publish
) -> dict[str, Any]:
    check_offer(request.sdp, session.limits)
    # The teacher's video comes first in every student's downlink.
    priority = 0 if me.base_role == "teacher" else None
    answer, producers = await session.media.publish(
        live.lesson.id, me.id, request.sdp, priority=priority
    )
    # A track the lesson does not let this participant use starts paused at the server.
    refused = {p.id for p in producers if not live.may_send(me, p.kind)}
    for producer_id in refused:
        await session.media.pause(live.lesson.id, producer_id)
    producers = [replace(p, paused=True) if p.id in refused else p for p in producers]
    for p in producers:
        tell_receivers(session, live, p, "track_published")
    resync_everyone(session, live, exclude=me.id)
    return {
        "sdp": answer,
        "producers": [
            {"id": p.id, "kind": p.kind, "mid": p.mid, "paused": p.paused} for p in producers
        ],
    }


async def subscribe(
    session: Session, live: LiveLesson, me: Participant, request: messages.Subscribe
) -> dict[str, Any]:
    sub = session.subscription
    async with sub.lock:
        sub.wanted = True
        if sub.offer_version is not None:
            raise SignalingError("bad_version", "An offer is already waiting for its answer.")
        offer = await _make_offer(session)
    return offer or {"sdp": None, "version": None, "consumers": []}


async def answer(
    session: Session, live: LiveLesson, me: Participant, request: messages.Answer
) -> dict[str, Any]:
    check_answer(request.sdp, session.limits)
    sub = session.subscription
    async with sub.lock:
        if sub.offer_version is None or request.version != sub.offer_version:
            raise SignalingError("bad_version", "This answer is not for the current offer.")
        await session.media.accept_answer(live.lesson.id, me.id, request.sdp)
        sub.offer_version = None
        again, sub.again = sub.again, False
    if again:
        session.spawn(resync(session))
    return {"version": request.version}


async def ice(
    session: Session, live: LiveLesson, me: Participant, request: messages.Ice
) -> dict[str, Any]:
    candidate = request.candidate.to_json() if request.candidate is not None else None
    accepted = await session.media.add_candidate(live.lesson.id, me.id, request.pc, candidate)
    return {"accepted": accepted}


async def pause(
    session: Session, live: LiveLesson, me: Participant, request: messages.Pause
) -> dict[str, Any]:
    lesson_id = live.lesson.id
    mine = {p.id: p for p in await session.media.producers(lesson_id)}
    producer = mine.get(request.producer)
    if producer is None or producer.participant_id != me.id:
        raise SignalingError("not_found")
    if not request.paused:
        live.unmuted_self(me, producer.kind)
    if producer.paused != request.paused:
        if request.paused:
            await session.media.pause(lesson_id, producer.id)
        else:
            await session.media.resume(lesson_id, producer.id)
        tell_receivers(session, live, replace(producer, paused=request.paused), "track_state")
    return {"id": producer.id, "paused": request.paused}


async def view(
    session: Session, live: LiveLesson, me: Participant, request: messages.View
) -> dict[str, Any]:
    publishers = frozenset(request.video) if request.video is not None else None
    await session.media.set_video_view(live.lesson.id, me.id, publishers)
    return {"video": list(request.video) if request.video is not None else None}


async def data_saver(
    session: Session, live: LiveLesson, me: Participant, request: messages.DataSaver
) -> dict[str, Any]:
    """Audio only, whatever the link carries (or back): the server stops forwarding video
    to this participant; the ``downlink`` event that follows says so."""
    me.data_saver = request.on
    if not await session.media.set_data_saver(live.lesson.id, me.id, request.on):
        await downlink_changed(session, None)  # no subscribe connection yet to say so
    return {"on": request.on}


# -- what happens to a participant's media -------------------------------------------------


async def downlink_changed(session: Session, change: DownlinkChange | None) -> None:
    """Tell the participant what its downlink carries now; staff see its link state."""
    if session.state != "admitted" or session.live is None or session.participant is None:
        return
    live, me = session.live, session.participant
    if change is None:
        data = await session.media.downlink(live.lesson.id, me.id)
    else:
        data = {
            "state": change.state,
            "reason": change.reason,
            "estimate": change.estimate,
            "paused": change.paused,
        }
    session.push(messages.event("downlink", data))
    session.tell(live.link_changed(me, data["state"]))


async def pause_producers(session: Session, kind: str) -> list[ProducerInfo]:
    """Stop forwarding the ``kind`` tracks of ``session``'s participant at once; tell their
    receivers and the participant."""
    live, me = session.joined()
    lesson_id = live.lesson.id
    paused = []
    for p in await session.media.producers(lesson_id):
        if p.participant_id == me.id and p.kind == kind and not p.paused:
            await session.media.pause(lesson_id, p.id)
            changed = replace(p, paused=True)
            tell_receivers(session, live, changed, "track_state")
            session.push(messages.event("track_state", producer_json(changed)))
            paused.append(changed)
    return paused


async def release(session: Session) -> None:
    """Close the participant's peer connections; tell the others its tracks ended."""
    live, me = session.joined()
    session.subscription.reset()
    ended = await session.media.close_participant(live.lesson.id, me.id)
    session.tell([Event("track_unpublished", producer_json(p), live.everyone()) for p in ended])
    if ended:
        resync_everyone(session, live)


Handler = Callable[["Session", LiveLesson, Participant, Any], Awaitable[dict[str, Any] | None]]

HANDLERS: dict[type, Handler] = {
    messages.Publish: publish,
    messages.Subscribe: subscribe,
    messages.Answer: answer,
    messages.Ice: ice,
    messages.Pause: pause,
    messages.View: view,
    messages.DataSaver: data_saver,
}
