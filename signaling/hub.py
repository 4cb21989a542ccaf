"""The live lessons on this node and the sockets their participants are connected by.

The lessons themselves — who is in, who waits, the rules — are ``classroom.live``'s plain
objects; the hub maps each participant id to the one socket (``Session``) that speaks for it
now, and carries a lesson's events to those sockets. It also counts the sockets that have not
joined yet per client address, and holds resume tokens and the grace timers of participants
whose socket dropped. Durable records live in ``classroom``'s stores; media lives in ``media``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from classroom.directory import (
    LessonDirectory,
    MemoryDirectory,
    Presence,
    ResumeTicket,
)
from classroom.lessons import Lesson
from classroom.live import Event, LiveLesson, Participant
from classroom.moderation import WAITING_ROOM_MODES, WaitingRoom

from . import messages, tracks
from .errors import SignalingError
from .limits import Limits

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from media.port import DownlinkChange, MediaPort

    from .session import Session


def elsewhere() -> SignalingError:
    """A lesson this node cannot serve: another node of the cluster holds it."""
    return SignalingError("lesson_elsewhere")


class Hub:
    """Every live lesson this node owns, the sockets of their participants, the unauthenticated
    sockets per client address and the grace timers of those whose socket dropped.

    Ownership, presence and resume tickets go through the ``LessonDirectory`` port, so they
    are seen by every node that shares the directory."""

    def __init__(
        self,
        *,
        waiting_room: str = "guests",
        directory: LessonDirectory | None = None,
        node: str = "local",
    ) -> None:
        if waiting_room not in WAITING_ROOM_MODES:
            raise ValueError(f"waiting room mode is one of {WAITING_ROOM_MODES}")
        self.waiting_room: WaitingRoom = waiting_room  # type: ignore[assignment]
        self.directory: LessonDirectory = directory if directory is not None else MemoryDirectory()
        self.node = node
        self.lessons: dict[str, LiveLesson] = {}
        self.unauthenticated: Counter[str] = Counter()
        self.sockets: dict[str, Session] = {}
        """Participant id → the socket that speaks for it now (closed while reconnecting)."""
        self._renewer: asyncio.Task[None] | None = None
        self._grace: dict[str, asyncio.Task[Any]] = {}  # participant id → expiry task
        self._background: set[asyncio.Task[Any]] = set()

    async def follow(self, media: MediaPort) -> None:
        """Carry what the media plane reports to the participants it is about (run it as a
        task for the life of the node)."""
        async for event in media.events():
            try:
                await self.downlink_changed(event)
            except Exception:  # one participant's trouble must not stop the others'
                logger.exception("could not tell %s about its downlink", event.participant_id)

    async def downlink_changed(self, change: DownlinkChange) -> None:
        """The media plane changed what a subscriber's link carries: tell the participant
        (and the lesson's staff, when its link state changed)."""
        session = self.sockets.get(change.participant_id)
        if session is not None and session.live is not None:
            if session.live.lesson.id == change.lesson_id:
                await tracks.downlink_changed(session, change)

    # -- telling people ----------------------------------------------------------------------

    def socket(self, participant_id: str) -> Session | None:
        return self.sockets.get(participant_id)

    def tell(self, events: Iterable[Event]) -> None:
        """Push each event to the sockets of the participants it is for."""
        for event in events:
            text = messages.event(event.name, event.data)
            for pid in event.to:
                session = self.sockets.get(pid)
                if session is not None:
                    session.push(text)

    def background(self, work: Awaitable[None]) -> None:
        """Run ``work`` on its own, not tied to the socket that started it (letting the
        waiting in must not stop half-way because the teacher's socket closed)."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the directory: resume tickets and presence ---------------------------------------

    async def issue_resume_token(self, lesson_id: str, participant_id: str) -> str:
        """A new resume token for the participant; the previous one stops working."""
        return await self.directory.issue_ticket(lesson_id, participant_id)

    async def take_resume(self, token: str) -> ResumeTicket | None:
        """Use a resume token up: the ticket it stood for, or ``None`` if it is not live.

        A token for a lesson another node owns is left for that node (``lesson_elsewhere``)."""
        seen = await self.directory.peek_ticket(token)
        if seen is None:
            return None
        if seen.lesson_id not in self.lessons:
            owner = await self.directory.owner(seen.lesson_id)
            if owner is not None and owner != self.node:
                raise elsewhere()
        return await self.directory.take_ticket(token)

    async def revoke_resume(self, participant_id: str) -> None:
        await self.directory.revoke_tickets(participant_id)

    async def present(self, live: LiveLesson, participant: Participant | None, pid: str) -> None:
        """Say in the directory where the participant stands now (``None``: gone)."""
        state: Presence | None = None
        if participant is not None:
            state = "waiting" if participant.state == "waiting" else participant.presence
        try:
            await self.directory.set_presence(live.lesson.id, pid, state)
        except Exception:  # presence is advisory: the lesson goes on without it
            logger.exception("could not record the presence of %s", pid)

    # -- grace periods of dropped participants ---------------------------------------------

    def start_grace(
        self, participant_id: str, seconds: float, expire: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``expire`` after ``seconds`` unless the participant resumes first."""
        self.cancel_grace(participant_id)

        async def wait_then_expire() -> None:
            await asyncio.sleep(seconds)
            self._grace.pop(participant_id, None)
            await expire()

        self._grace[participant_id] = asyncio.ensure_future(wait_then_expire())

    def cancel_grace(self, participant_id: str) -> None:
        task = self._grace.pop(participant_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def close(self) -> None:
        """Stop every grace timer (the server is stopping)."""
        tasks = [*self._grace.values(), *self._background]
        if self._renewer is not None:
            tasks.append(self._renewer)
        self._grace.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def open(self, lesson: Lesson, limits: Limits) -> LiveLesson:
        """The live lesson, opened on this node if no other node owns it."""
        live = self.lessons.get(lesson.id)
        if live is not None:
            return live
        owner = await self.directory.claim(lesson.id, self.node)
        if owner != self.node:
            raise elsewhere()
        live = self.lessons.get(lesson.id)  # another join opened it meanwhile
        if live is None:
            live = self.lessons[lesson.id] = LiveLesson(
                lesson,
                waiting_room=self.waiting_room,
                capacity=limits.participants_per_lesson,
                waiting_capacity=limits.waiting_per_lesson,
                chat_history=limits.chat_history,
            )
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.ensure_future(self._renew_leases())
        return live

    async def _renew_leases(self) -> None:
        """Renew the lease of every lesson this node holds, three times per lease."""
        interval = self.directory.lease_seconds / 3
        while self.lessons:
            await asyncio.sleep(interval)
            for lesson_id in list(self.lessons):
                try:
                    owner = await self.directory.claim(lesson_id, self.node)
                except Exception:
                    logger.exception("could not renew the lease of %s", lesson_id)
                    continue
                if owner != self.node:
                    logger.error("lesson %s is now owned by %s, not this node", lesson_id, owner)

    def drop_if_empty(self, lesson_id: str) -> None:
        live = self.lessons.get(lesson_id)
        if live is not None and live.empty:
            del self.lessons[lesson_id]
            self.background(self.directory.release(lesson_id, self.node))

    def participant_count(self) -> int:
        return sum(len(live.participants) for live in self.lessons.values())
