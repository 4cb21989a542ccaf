"""The one exception the classroom raises when a request is refused.

Clients switch on ``code`` (stable, snake_case, listed in docs/protocol.md); ``message`` is for
people and may change; ``extra`` carries the few fields a code promises (``retry_after`` for
``rate_limited``). Messages are fixed English sentences built here and never interpolate user
input, so a password can never leak into an error, a log line or a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

BAD_PASSWORD: Final = "bad_password"
RATE_LIMITED: Final = "rate_limited"
BAD_TOKEN: Final = "bad_token"
INVALID_NAME: Final = "invalid_name"
INVALID_TITLE: Final = "invalid_title"
WEAK_PASSWORD: Final = "weak_password"
LESSON_ENDED: Final = "lesson_ended"


class ClassroomError(Exception):
    """A refusal the signaling layer turns into ``{"type": "error", "code": ...}``.

    Build it through the named constructors below so that every code always comes with the same
    message and the same extra fields, wherever it is raised.
    """

    code: str
    message: str
    extra: dict[str, Any]

    def __init__(self, code: str, message: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(code, message, dict(extra or {}))
        self.code = code
        self.message = message
        self.extra = dict(extra or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @classmethod
    def bad_password(cls) -> ClassroomError:
        """Unknown code, ended lesson and wrong password all look like this (no enumeration)."""
        return cls(BAD_PASSWORD, "Wrong lesson code or password.")

    @classmethod
    def rate_limited(cls, retry_after: int) -> ClassroomError:
        """Too many failures; ``retry_after`` is whole seconds, at least 1."""
        return cls(
            RATE_LIMITED,
            "Too many failed attempts. Try again later.",
            {"retry_after": max(1, int(retry_after))},
        )

    @classmethod
    def bad_token(cls) -> ClassroomError:
        return cls(BAD_TOKEN, "This link is not valid, or the lesson has ended.")

    @classmethod
    def invalid_name(cls) -> ClassroomError:
        return cls(
            INVALID_NAME,
            "Names must be 1 to 64 characters long and contain no control characters.",
        )

    @classmethod
    def invalid_title(cls) -> ClassroomError:
        return cls(
            INVALID_TITLE,
            "Titles must be 1 to 200 characters long and contain no control characters.",
        )

    @classmethod
    def weak_password(cls, min_length: int, max_length: int) -> ClassroomError:
        return cls(
            WEAK_PASSWORD,
            f"Passwords must be {min_length} to {max_length} characters long.",
        )

    @classmethod
    def lesson_ended(cls) -> ClassroomError:
        return cls(LESSON_ENDED, "The lesson has ended.")
