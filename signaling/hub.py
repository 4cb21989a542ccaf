"""The live lessons on this node: who is connected to which lesson, and who receives whom.

In-process state only: which participants are connected and their sockets. Durable records
(lessons, passwords, attendance) live in ``classroom``'s stores; media lives in ``media``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from classroom.chat import ChatLog
from classroom.lessons import Lesson
from classroom.moderation import STAFF, WAITING_ROOM_MODES, Controls, WaitingRoom
from classroom.passwords import token_digest

if TYPE_CHECKING:
    from media.service import DownlinkChange

    from .session import Session


@dataclass
class LiveLesson:
    lesson: Lesson
    sessions: dict[str, Session] = field(default_factory=dict)
    controls: Controls = field(default_factory=Controls)
    waiting: dict[str, Session] = field(default_factory=dict)
    """Participants knocking in the waiting room, first come first: no media, no names."""
    chat: ChatLog = field(default_factory=lambda: ChatLog(100))

    def staff_present(self) -> bool:
        """Whether a teacher or moderator is in the lesson (also while reconnecting)."""
        return any(s.role in STAFF for s in self.sessions.values())

    def staff(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.role in STAFF]

    def tell_staff(self, text: str) -> None:
        for session in self.staff():
            session.push(text)

    def may_receive(self, viewer_role: str, publisher_role: str, kind: str) -> bool:
        """Whether a participant in ``viewer_role`` receives a ``kind`` track of a publisher in
        ``publisher_role``. The teacher and moderators hear and see everyone; students always
        get the teacher and moderators, and hear each other — students can speak up in class,
        but 40 cameras do not land on every phone."""
        return viewer_role in STAFF or publisher_role in STAFF or kind == "audio"

    def hand_queue(self) -> list[str]:
        """Raised hands, first raised first."""
        raised = [
            (s.hand_raised_at, pid)
            for pid, s in self.sessions.items()
            if s.hand_raised_at is not None
        ]
        return [pid for _, pid in sorted(raised)]

    def broadcast(self, text: str, *, exclude: str | None = None) -> None:
        for pid, session in list(self.sessions.items()):
            if pid != exclude:
                session.push(text)


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
        self._resume: dict[str, ResumeTicket] = {}  # sha256(token) → ticket
        self._resume_of: dict[str, str] = {}  # participant id → sha256 of its current token
        self._grace: dict[str, asyncio.Task[Any]] = {}  # participant id → expiry task
        self._background: set[asyncio.Task[Any]] = set()

    def downlink_changed(self, change: DownlinkChange) -> None:
        """The media plane changed what a subscriber's link carries: tell the participant
        (and the lesson's staff, when its link state changed)."""
        live = self.lessons.get(change.lesson_id)
        session = live.sessions.get(change.participant_id) if live is not None else None
        if session is not None:
            session.downlink_changed(change)

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

    def live(self, lesson: Lesson, *, chat_history: int = 100) -> LiveLesson:
        live = self.lessons.get(lesson.id)
        if live is None:
            live = self.lessons[lesson.id] = LiveLesson(
                lesson,
                controls=Controls(waiting_room=self.waiting_room),
                chat=ChatLog(chat_history),
            )
        return live

    def drop_if_empty(self, lesson_id: str) -> None:
        live = self.lessons.get(lesson_id)
        if live is not None and not live.sessions and not live.waiting:
            del self.lessons[lesson_id]

    def participant_count(self) -> int:
        return sum(len(live.sessions) for live in self.lessons.values())
