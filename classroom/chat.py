"""A lesson's chat, without I/O: message text rules, who sees which message, recent history.

Two kinds of message (docs/protocol.md, "Chat"):

* **to the lesson** — every admitted participant sees it;
* **private** (``to`` a participant) — only the sender and the recipient see it. Students and
  guests may write privately to the teacher only, never to each other (child safety); the
  teacher may answer anyone privately.

The text is normalised to NFC and stripped; line breaks are kept (at most
:data:`MAX_LINE_BREAKS`), every other control or format character is refused — bidirectional
overrides would let one message display as another, exactly as in names.

The history keeps the last ``Limits.chat_history`` messages in memory for newcomers and for
incident reports; nothing else stores chat (a school does not want a transcript of every
lesson). A deleted message leaves the history at once and every client is told to hide it; its
text stays only in the audit log entry of the deletion.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from .errors import ClassroomError

#: Line breaks one message may carry (a short list, not a page of empty lines).
MAX_LINE_BREAKS: Final = 10


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    sender: str  # participant id
    name: str
    role: str
    text: str
    at: float  # Unix time
    to: str | None = None  # recipient's participant id for a private message

    def visible_to(self, participant_id: str) -> bool:
        return self.to is None or participant_id in (self.sender, self.to)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender,
            "name": self.name,
            "role": self.role,
            "text": self.text,
            "at": self.at,
            "to": self.to,
        }


def clean_text(text: str, max_chars: int) -> str:
    """The message as it will be shown, or ``ClassroomError("invalid_message")``."""
    invalid = ClassroomError(
        "invalid_message",
        f"Write a message of 1 to {max_chars} characters, without special control characters.",
    )
    normalised = unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()
    for char in normalised:
        if char != "\n" and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            raise invalid
    if not 0 < len(normalised) <= max_chars or normalised.count("\n") > MAX_LINE_BREAKS:
        raise invalid
    return normalised


class ChatLog:
    """The recent messages of one lesson, oldest first."""

    def __init__(self, keep: int) -> None:
        self._messages: deque[ChatMessage] = deque(maxlen=keep)

    @staticmethod
    def new_id() -> str:
        return "m_" + secrets.token_urlsafe(9)

    def add(self, message: ChatMessage) -> None:
        self._messages.append(message)

    def get(self, message_id: str) -> ChatMessage | None:
        return next((m for m in self._messages if m.id == message_id), None)

    def delete(self, message_id: str) -> ChatMessage | None:
        message = self.get(message_id)
        if message is not None:
            self._messages.remove(message)
        return message

    def visible_to(self, participant_id: str) -> list[ChatMessage]:
        return [m for m in self._messages if m.visible_to(participant_id)]

    def last(self, count: int) -> list[ChatMessage]:
        return list(self._messages)[-count:] if count > 0 else []

    def __len__(self) -> int:
        return len(self._messages)
