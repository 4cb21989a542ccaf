"""The live lessons on this node: who is connected to which lesson, and who receives whom.

In-process state only: which participants are connected and their sockets. Durable records
(lessons, passwords, attendance) live in ``classroom``'s stores; media lives in ``media``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from classroom.lessons import Lesson

if TYPE_CHECKING:
    from .session import Session

PEER_MEDIA_CHOICES = ("none", "audio", "all")


@dataclass
class LiveLesson:
    lesson: Lesson
    sessions: dict[str, Session] = field(default_factory=dict)
    peer_media: str = "audio"
    """What students receive of each other: nothing, audio only (default: students can speak
    up in class but 40 cameras do not land on every phone), or audio and video."""

    def may_receive(self, viewer_role: str, publisher_role: str, kind: str) -> bool:
        """Whether a participant in ``viewer_role`` receives a ``kind`` track of a publisher in
        ``publisher_role``. The teacher hears and sees everyone; students always get the teacher
        and get each other as the lesson allows."""
        if viewer_role == "teacher" or publisher_role == "teacher":
            return True
        if self.peer_media == "all":
            return True
        return self.peer_media == "audio" and kind == "audio"

    def broadcast(self, text: str, *, exclude: str | None = None) -> None:
        for pid, session in list(self.sessions.items()):
            if pid != exclude:
                session.push(text)


class Hub:
    """Every live lesson on this node, and the unauthenticated sockets per client address."""

    def __init__(self) -> None:
        self.lessons: dict[str, LiveLesson] = {}
        self.unauthenticated: Counter[str] = Counter()
        self.lock = asyncio.Lock()

    def live(self, lesson: Lesson) -> LiveLesson:
        live = self.lessons.get(lesson.id)
        if live is None:
            live = self.lessons[lesson.id] = LiveLesson(lesson)
        return live

    def drop_if_empty(self, lesson_id: str) -> None:
        live = self.lessons.get(lesson_id)
        if live is not None and not live.sessions:
            del self.lessons[lesson_id]

    def participant_count(self) -> int:
        return sum(len(live.sessions) for live in self.lessons.values())
