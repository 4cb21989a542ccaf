"""Stable error codes of the signaling protocol (docs/protocol.md) and the one exception type.

Clients switch on ``code``; ``message`` is for people (a teacher or a student reads it, so it is
plain English with no protocol jargon) and may change between releases. Keeping every code in one
``StrEnum`` means a typo in a handler fails at the raise, not silently on a phone in a lesson:
``SignalingError`` refuses a code that is not listed here.

Close codes follow RFC 6455 §7.4.1 (1000 normal, 1008 policy violation, 1009 message too big,
1011 internal error); 4000–4999 are private-use codes (RFC 6455 §7.4.2) that lophoc assigns.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum
from typing import Any

__all__ = [
    "DEFAULT_MESSAGES",
    "CloseCode",
    "ErrorCode",
    "RequestId",
    "SignalingError",
]

#: A request ``id`` as chosen by the client: a JSON integer 0 … 2**53 or a short string.
RequestId = int | str


class ErrorCode(StrEnum):
    """Every ``code`` the server may put in an ``error`` response (stable: clients switch on it)."""

    # frames and requests
    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown_type"
    MESSAGE_TOO_BIG = "message_too_big"
    RATE_LIMITED = "rate_limited"
    BAD_VERSION = "bad_version"
    INTERNAL = "internal"
    # session life
    NOT_AUTHENTICATED = "not_authenticated"
    AUTH_TIMEOUT = "auth_timeout"
    # join
    BAD_PASSWORD = "bad_password"
    BAD_TOKEN = "bad_token"
    INVALID_NAME = "invalid_name"
    LESSON_FULL = "lesson_full"
    ALREADY_JOINED = "already_joined"
    LESSON_ENDED = "lesson_ended"
    LESSON_LOCKED = "lesson_locked"
    RESUME_FAILED = "resume_failed"
    LESSON_ELSEWHERE = "lesson_elsewhere"
    BANNED = "banned"
    WAITING_ROOM_FULL = "waiting_room_full"
    # waiting room
    WAITING = "waiting"
    # personal join links (raised by classroom.links, listed here as protocol codes)
    BAD_LINK = "bad_link"
    LINK_EXPIRED = "link_expired"
    LINK_REVOKED = "link_revoked"
    WRONG_LESSON = "wrong_lesson"
    # acting in a lesson
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    INVALID_MESSAGE = "invalid_message"
    UNAVAILABLE = "unavailable"
    # media negotiation
    BAD_SDP = "bad_sdp"
    UNSUPPORTED_CODEC = "unsupported_codec"
    TOO_MANY_TRACKS = "too_many_tracks"
    BAD_CANDIDATE = "bad_candidate"
    NO_TRANSPORT = "no_transport"
    TOO_MANY_CANDIDATES = "too_many_candidates"


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (RFC 6455 §7.4)."""

    NORMAL = 1000
    POLICY = 1008  # flood, too many malformed frames, too many unauthenticated sockets
    TOO_BIG = 1009
    INTERNAL = 1011
    AUTH_TIMEOUT = 4001
    REPLACED = 4002  # the same participant resumed on a newer connection
    LESSON_ENDED = 4003
    SLOW_CONSUMER = 4004  # the client did not read its events
    REMOVED = 4005  # staff removed the participant
    DENIED = 4006  # staff did not let the participant in from the waiting room


#: Default human message per code: what a teacher or student should understand and do.
DEFAULT_MESSAGES: Mapping[ErrorCode, str] = {
    ErrorCode.MALFORMED: (
        "The app sent a message the server could not read. Reload the page and try again."
    ),
    ErrorCode.UNKNOWN_TYPE: (
        "The app asked for something this server does not know. Reload the page to get the "
        "current version of the app."
    ),
    ErrorCode.MESSAGE_TOO_BIG: "The app sent a message that is too large.",
    ErrorCode.RATE_LIMITED: "Too many attempts. Please wait a moment and try again.",
    ErrorCode.BAD_VERSION: (
        "That reply was for an older media update. The app will answer the current one."
    ),
    ErrorCode.INTERNAL: "Something went wrong on the server. Please try again.",
    ErrorCode.NOT_AUTHENTICATED: "Join the lesson first.",
    ErrorCode.AUTH_TIMEOUT: "The lesson was not joined in time. Reload the page to try again.",
    ErrorCode.BAD_PASSWORD: "Wrong lesson code or password.",
    ErrorCode.BAD_TOKEN: "This sign-in link is not valid any more. Ask for a new one.",
    ErrorCode.INVALID_NAME: (
        "Please enter a name of 1 to 64 characters, without special control characters."
    ),
    ErrorCode.LESSON_FULL: "This lesson is full.",
    ErrorCode.ALREADY_JOINED: "You have already joined the lesson on this connection.",
    ErrorCode.LESSON_ENDED: "The lesson has ended.",
    ErrorCode.LESSON_LOCKED: "The teacher has locked this lesson: nobody new can join now.",
    ErrorCode.RESUME_FAILED: (
        "The connection was away too long to carry on where it left off. Join the lesson again."
    ),
    ErrorCode.LESSON_ELSEWHERE: (
        "This lesson is being taught from another server right now. Try again in a moment."
    ),
    ErrorCode.BANNED: "The teacher has removed you from this lesson; you cannot join it again.",
    ErrorCode.WAITING_ROOM_FULL: "Too many people are waiting to join. Try again in a minute.",
    ErrorCode.WAITING: "Please wait: the teacher has not let you in yet.",
    ErrorCode.BAD_LINK: "This join link is not valid.",
    ErrorCode.LINK_EXPIRED: "This join link has expired.",
    ErrorCode.LINK_REVOKED: "This join link has been cancelled. Ask your teacher for a new one.",
    ErrorCode.WRONG_LESSON: "This join link belongs to another lesson.",
    ErrorCode.FORBIDDEN: "Only the teacher can do that.",
    ErrorCode.NOT_FOUND: "There is no such track or participant in this lesson.",
    ErrorCode.INVALID_MESSAGE: "Write a message of 1 to 500 characters.",
    ErrorCode.UNAVAILABLE: "This is not available on this server.",
    ErrorCode.BAD_SDP: (
        "The browser described its camera and microphone in a way the server cannot use. "
        "Reload the page, or try another browser."
    ),
    ErrorCode.UNSUPPORTED_CODEC: (
        "The browser offers no audio or video format the server can pass on. Try an "
        "up-to-date Chrome, Firefox or Safari."
    ),
    ErrorCode.TOO_MANY_TRACKS: "Too many cameras or microphones are being shared at once.",
    ErrorCode.BAD_CANDIDATE: "The browser sent network details the server cannot read.",
    ErrorCode.NO_TRANSPORT: (
        "There is no audio/video connection for these network details yet. Start sharing "
        "or watching first."
    ),
    ErrorCode.TOO_MANY_CANDIDATES: "The browser sent too many network addresses.",
}


class SignalingError(Exception):
    """A request failed in a way the client is told about with a stable ``code``.

    ``request_id`` is the request's ``id`` when it could be read (``None`` otherwise: the error
    response then carries ``"id": null``). ``extra`` holds additional response fields (for
    example ``retry_after`` for ``rate_limited``). ``close_code`` is set when the socket must be
    closed after the error is sent (1009 for an oversized frame, 1008 for floods, 4001 for the
    join timeout); ``None`` means the session goes on.
    """

    code: ErrorCode
    message: str
    request_id: RequestId | None
    extra: dict[str, Any]
    close_code: int | None

    def __init__(
        self,
        code: ErrorCode | str,
        message: str | None = None,
        *,
        request_id: RequestId | None = None,
        extra: Mapping[str, Any] | None = None,
        close_code: int | None = None,
    ) -> None:
        self.code = ErrorCode(code)  # ValueError on a code that is not stable: a server bug
        self.message = message if message is not None else DEFAULT_MESSAGES[self.code]
        self.request_id = request_id
        self.extra = dict(extra or {})
        self.close_code = close_code
        super().__init__(f"{self.code}: {self.message}")

    def with_request_id(self, request_id: RequestId | None) -> SignalingError:
        """The same error, attributed to ``request_id`` (``self`` is left unchanged)."""
        return SignalingError(
            self.code,
            self.message,
            request_id=request_id,
            extra=self.extra,
            close_code=self.close_code,
        )

    def __repr__(self) -> str:
        return (
            f"SignalingError({self.code.value!r}, {self.message!r}, "
            f"request_id={self.request_id!r}, extra={self.extra!r}, "
            f"close_code={self.close_code!r})"
        )
