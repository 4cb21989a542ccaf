"""Every limit of the signaling protocol, in one place (docs/protocol.md, "Limits").

The defaults are those of the protocol document, and each is a tested pass criterion (the
security tests in tests/security and tests/signaling). A deployment may override any of them through
``web`` configuration, but code never hard-codes a number that lives here.

Naming: ``max_*`` bounds the size of one thing (bytes or characters); ``*_per_*`` bounds how many
things one owner may have.

``TokenBucket`` is sans-I/O: it never reads a clock, the caller passes ``now`` (any monotonic
float in seconds), so tests drive time by hand and it never needs ``asyncio``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["DEFAULT_LIMITS", "Limits", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one server. Immutable: a session keeps the one it was created with."""

    # -- one socket -------------------------------------------------------------------------
    #: A frame above this closes the socket with 1009 (counted in UTF-8 bytes).
    max_frame_bytes: int = 64 * 1024
    #: Sustained requests per second per socket (token-bucket refill rate) …
    message_rate: float = 20.0
    #: … and the burst a socket may send at once (token-bucket capacity).
    message_burst: int = 50
    #: ``rate_limited`` errors a socket may collect before it is closed with 1008.
    rate_breaches_before_close: int = 10
    #: Unreadable frames (``malformed``, ``unknown_type``) before the socket is closed with 1008.
    malformed_before_close: int = 20
    #: Seconds a socket has to ``join`` before it is closed with 4001.
    join_timeout: float = 10.0
    #: Sockets from one client address that have not joined yet; more are refused.
    unauthenticated_per_address: int = 20

    # -- one request (fields of docs/protocol.md) -------------------------------------------
    #: A request ``id`` string (the protocol allows at most 64 characters).
    max_request_id_chars: int = 64
    #: JSON nesting depth of a frame (the protocol needs 2; a bound keeps the parser shallow).
    max_json_depth: int = 8
    #: Characters of one JSON number (the largest ``id`` is 2**53: 16 digits).
    max_number_chars: int = 24
    #: Display name, after normalisation (``invalid_name`` beyond).
    max_name_chars: int = 64
    #: Lesson code as typed by a student.
    max_code_chars: int = 32
    #: Lesson password as typed.
    max_password_chars: int = 256
    #: Teacher token (``bad_token`` is the handler's answer to a wrong one; this bounds its size).
    max_token_chars: int = 512
    #: A participant, producer or consumer id sent back by the client (ours are 11–14 chars).
    max_object_id_chars: int = 64
    #: Participant ids in one ``view`` request.
    max_view_ids: int = 100

    # -- media negotiation ------------------------------------------------------------------
    #: SDP offer or answer, in UTF-8 bytes (``bad_sdp`` beyond). A teacher's subscribe answer
    #: for 40 students with cameras (~80 m-lines) is ~48 KB.
    max_sdp_bytes: int = 60 * 1024
    #: m-lines in one publish offer (``too_many_tracks`` beyond).
    m_lines_per_publish: int = 4
    #: Trickled ICE candidates per peer connection (``too_many_candidates`` beyond); also the
    #: most ``a=candidate`` lines one media section of an SDP may carry.
    candidates_per_pc: int = 50
    #: One ICE candidate attribute (real ones are under 200 characters).
    max_candidate_chars: int = 512
    #: A media ``mid``: the RTP MID header extension carries it, and a one-byte RFC 8285 header
    #: extension element holds at most 16 bytes.
    max_mid_chars: int = 16

    # -- one lesson -------------------------------------------------------------------------
    #: Participants admitted to one lesson at once (``lesson_full`` beyond).
    participants_per_lesson: int = 100
    #: Frames queued toward one socket; a client that stops reading is closed (4004) rather
    #: than let the server's memory grow.
    outbound_messages: int = 256
    #: Seconds a participant whose socket dropped stays in the lesson as "reconnecting", able
    #: to resume with its resume token (a phone moving from Wi-Fi to mobile data).
    resume_grace: float = 60.0
    #: Participants knocking in one lesson's waiting room at once (``waiting_room_full``).
    waiting_per_lesson: int = 100

    # -- chat and incident reports ----------------------------------------------------------
    #: One chat message, in characters after normalisation (``invalid_message`` beyond).
    max_chat_chars: int = 500
    #: Chat messages per participant per second (sustained) …
    chat_rate: float = 0.5
    #: … and at once (``rate_limited`` with ``retry_after`` beyond).
    chat_burst: int = 5
    #: Chat messages a lesson keeps for newcomers and incident reports (older ones drop off).
    chat_history: int = 100
    #: One incident report's text, in characters.
    max_incident_chars: int = 1000
    #: Incident reports per participant: one per this many seconds on average …
    incident_interval: float = 30.0
    #: … and at most this many at once.
    incident_burst: int = 3
    #: The browser's device key sent with ``join`` (random, URL-safe).
    max_device_chars: int = 64

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"Limits.{f.name} must be a number, not {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"Limits.{f.name} must be positive, not {value!r}")
        if self.message_burst < 1:
            raise ValueError("Limits.message_burst must allow at least one message")


DEFAULT_LIMITS = Limits()

# Refills add float fractions (20 × 0.05 s is not exactly 1.0): forgive rounding, not tokens.
_EPSILON = 1e-9


class TokenBucket:
    """Token bucket for one socket's message rate: ``rate`` tokens per second, ``burst`` at most.

    Starts full, so a client may send a burst right after connecting (join, publish, subscribe
    and a handful of trickled candidates arrive together). Time is passed in by the caller; a
    clock that goes backwards refills nothing and never makes tokens appear.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be positive, not {rate!r}")
        if not (math.isfinite(burst) and burst >= 1):
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = float(burst)
        self._last: float | None = None

    @classmethod
    def for_messages(cls, limits: Limits) -> TokenBucket:
        """The per-socket message bucket of ``limits``."""
        return cls(limits.message_rate, limits.message_burst)

    def _refill(self, now: float) -> None:
        if self._last is None:
            self._last = now
            return
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._last = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (after refilling)."""
        self._refill(now)
        return self._tokens

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available: ``True`` means the message may be served."""
        self._refill(now)
        if self._tokens + _EPSILON >= cost:
            self._tokens = max(0.0, self._tokens - cost)
            return True
        return False

    def wait_time(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``take(…, cost)`` would succeed (0.0 if it would now; inf if never)."""
        if cost > self.burst:
            return math.inf
        self._refill(now)
        missing = cost - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate

    def retry_after(self, now: float, cost: float = 1.0) -> int:
        """``wait_time`` as the protocol's ``retry_after``: whole seconds, at least 1 if waiting."""
        wait = self.wait_time(now, cost)
        if wait <= 0:
            return 0
        if math.isinf(wait):
            raise ValueError(f"cost {cost} exceeds the burst {self.burst}")
        return max(1, math.ceil(wait))
