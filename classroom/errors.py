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
# Accounts and rosters
BAD_LOGIN: Final = "bad_login"
NOT_AUTHENTICATED: Final = "not_authenticated"
FORBIDDEN: Final = "forbidden"
NOT_FOUND: Final = "not_found"
INVALID_USERNAME: Final = "invalid_username"
USERNAME_TAKEN: Final = "username_taken"
DISABLE_SELF: Final = "cannot_disable_self"
LAST_ADMIN: Final = "last_admin"
INVALID_CLASS_NAME: Final = "invalid_class_name"
CLASS_EXISTS: Final = "class_exists"
BAD_ROSTER: Final = "bad_roster"
# Class lessons and personal join links
INVALID_SCHEDULE: Final = "invalid_schedule"
BAD_LINK: Final = "bad_link"
LINK_EXPIRED: Final = "link_expired"
LINK_REVOKED: Final = "link_revoked"
WRONG_LESSON: Final = "wrong_lesson"
# Reports
REPORT_CLOSED: Final = "report_closed"
INVALID_RANGE: Final = "invalid_range"
LESSON_NOT_OVER: Final = "lesson_not_over"
INVALID_LANGUAGE: Final = "invalid_language"


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

    # -- accounts and rosters ----------------------------------------------------------------

    @classmethod
    def bad_login(cls) -> ClassroomError:
        """Unknown user, disabled user and wrong password all look like this."""
        return cls(BAD_LOGIN, "Wrong username or password.")

    @classmethod
    def not_authenticated(cls) -> ClassroomError:
        """No session, an unknown one, an expired one or one that was logged out."""
        return cls(NOT_AUTHENTICATED, "Log in first: there is no valid session.")

    @classmethod
    def forbidden(cls) -> ClassroomError:
        return cls(FORBIDDEN, "Your account may not do this.")

    @classmethod
    def not_found(cls) -> ClassroomError:
        """Also what a teacher gets for another teacher's records, so ids cannot be probed."""
        return cls(NOT_FOUND, "There is no such record.")

    @classmethod
    def invalid_username(cls) -> ClassroomError:
        return cls(
            INVALID_USERNAME,
            "Usernames must be 3 to 32 characters: lower-case letters a-z, digits, "
            "dots, dashes and underscores, starting with a letter.",
        )

    @classmethod
    def username_taken(cls) -> ClassroomError:
        return cls(USERNAME_TAKEN, "This username is already in use.")

    @classmethod
    def cannot_disable_self(cls) -> ClassroomError:
        return cls(DISABLE_SELF, "You cannot disable your own account.")

    @classmethod
    def last_admin(cls) -> ClassroomError:
        """Disabling the only administrator left would lock the school out of its records."""
        return cls(LAST_ADMIN, "This is the last active administrator: create another first.")

    @classmethod
    def invalid_class_name(cls) -> ClassroomError:
        return cls(
            INVALID_CLASS_NAME,
            "Class names must be 1 to 64 characters long and contain no control characters.",
        )

    @classmethod
    def class_exists(cls) -> ClassroomError:
        return cls(CLASS_EXISTS, "A class with this name already exists.")

    @classmethod
    def bad_roster(cls, errors: list[dict[str, Any]]) -> ClassroomError:
        """``errors`` lists every problem as ``{"line": int | None, "reason": code, ...}``
        (``line`` is None for the file as a whole; see ``RosterIssue.to_json`` in
        ``classroom.roster_files`` for ``column``, ``value``, ``sheet``, ``cell`` and the
        ``messages`` in vi and en). The value is the uploader's own cell, given back so that
        they can find it; this message, the reasons and the messages never contain file
        content, and nothing of it is logged."""
        return cls(
            BAD_ROSTER,
            "The roster file has errors; nothing was imported.",
            {"errors": errors},
        )

    # -- class lessons and personal join links -------------------------------------------------

    @classmethod
    def invalid_schedule(cls, max_hours: int) -> ClassroomError:
        return cls(
            INVALID_SCHEDULE,
            f"A lesson needs a start and an end with a time zone, the end after the start, "
            f"at most {max_hours} hours apart.",
        )

    @classmethod
    def bad_link(cls) -> ClassroomError:
        """Malformed, forged or unknown: the three are not told apart."""
        return cls(BAD_LINK, "This join link is not valid.")

    @classmethod
    def link_expired(cls) -> ClassroomError:
        return cls(LINK_EXPIRED, "This join link has expired.")

    @classmethod
    def link_revoked(cls) -> ClassroomError:
        return cls(
            LINK_REVOKED, "This join link has been cancelled. Ask your teacher for a new one."
        )

    @classmethod
    def wrong_lesson(cls) -> ClassroomError:
        return cls(WRONG_LESSON, "This join link belongs to another lesson.")

    # -- reports ---------------------------------------------------------------------------------

    @classmethod
    def report_closed(cls) -> ClassroomError:
        return cls(REPORT_CLOSED, "This lesson's report is already closed.")

    @classmethod
    def lesson_not_over(cls) -> ClassroomError:
        return cls(
            LESSON_NOT_OVER,
            "The report can be closed once the lesson has ended or its scheduled time is over.",
        )

    @classmethod
    def invalid_range(cls, max_days: int) -> ClassroomError:
        return cls(
            INVALID_RANGE,
            f"Give dates as YYYY-MM-DD, the last not before the first, at most {max_days} "
            "days apart.",
        )

    @classmethod
    def invalid_language(cls, languages: tuple[str, ...]) -> ClassroomError:
        return cls(
            INVALID_LANGUAGE,
            f"Exports are in {' or '.join(languages)}: give lang={'|'.join(languages)}.",
            {"languages": list(languages)},
        )
