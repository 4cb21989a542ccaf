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
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from classroom.lessons import Lesson
from classroom.live import Event, LiveLesson
from classroom.moderation import WAITING_ROOM_MODES, WaitingRoom
from classroom.passwords import token_digest

from . import messages
from .limits import Limits

if TYPE_CHECKING:
    from media.service import DownlinkChange

    from .session import Session


@dataclass(frozen=True)
class ResumeTicket:
    lesson_id: str
    participant_id: str


class Hub:
    """Every live lesson on this node, the unauthenticated sockets per client address, the
    resume tokens of its participants and the grace timers of those whose socket dropped."""

    def __init__(self, *, waiting_room: str = "guests") -> None:
        if waiting_room not in WAITING_ROOM_MODES:
            raise ValueError(f"waiting room mode is one of {WAITING_ROOM_MODES}")
        self.waiting_room: WaitingRoom = waiting_room  # type: ignore[assignment]
        self.lessons: dict[str, LiveLesson] = {}
        self.unauthenticated: Counter[str] = Counter()
        self.sockets: dict[str, Session] = {}
        """Participant id → the socket that speaks for it now (closed while reconnecting)."""
        self._resume: dict[str, ResumeTicket] = {}  # sha256(token) → ticket
        self._resume_of: dict[str, str] = {}  # participant id → sha256 of its current token
        self._grace: dict[str, asyncio.Task[Any]] = {}  # participant id → expiry task
        self._background: set[asyncio.Task[Any]] = set()

    def downlink_changed(self, change: DownlinkChange) -> None:
        """The media plane changed what a subscriber's link carries: tell the participant
        (and the lesson's staff, when its link state changed)."""
        session = self.sockets.get(change.participant_id)
        if session is not None and session.live is not None:
            if session.live.lesson.id == change.lesson_id:
                session.downlink_changed(change)

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

    # -- resume tokens: one live token per participant, each usable once ------------------

    def issue_resume_token(self, lesson_id: str, participant_id: str) -> str:
        """A new resume token for the participant; the previous one stops working."""
        self.revoke_resume(participant_id)
        token = secrets.token_urlsafe(32)
        digest = token_digest(token)
        self._resume[digest] = ResumeTicket(lesson_id, participant_id)
        self._resume_of[participant_id] = digest
        return token

    def take_resume(self, token: str) -> ResumeTicket | None:
        """Use a resume token up: the ticket it stood for, or ``None`` if it is not live."""
        ticket = self._resume.pop(token_digest(token), None)
        if ticket is not None:
            self._resume_of.pop(ticket.participant_id, None)
        return ticket

    def revoke_resume(self, participant_id: str) -> None:
        digest = self._resume_of.pop(participant_id, None)
        if digest is not None:
            self._resume.pop(digest, None)

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
        self._grace.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def live(self, lesson: Lesson, limits: Limits) -> LiveLesson:
        live = self.lessons.get(lesson.id)
        if live is None:
            live = self.lessons[lesson.id] = LiveLesson(
                lesson,
                waiting_room=self.waiting_room,
                capacity=limits.participants_per_lesson,
                waiting_capacity=limits.waiting_per_lesson,
                chat_history=limits.chat_history,
            )
        return live

    def drop_if_empty(self, lesson_id: str) -> None:
        live = self.lessons.get(lesson_id)
        if live is not None and live.empty:
            del self.lessons[lesson_id]

    def participant_count(self) -> int:
        return sum(len(live.participants) for live in self.lessons.values())
