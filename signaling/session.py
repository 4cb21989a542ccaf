"""One signaling session per WebSocket: connected → authenticated → (waiting →) admitted →
closed.

A ``Session`` is one socket's state machine and nothing more: it counts itself among the
unauthenticated sockets of its address until it joins, enforces the socket's limits, parses
each frame, dispatches the request and answers it exactly once, pushes events, and closes. It
is written against two small callables — ``send`` (queue one text frame) and ``close`` (close
the socket with a code) — so the socket itself stays in ``web``.

Rules enforced here, for every socket, whatever the client is:

* the first request must be ``join``; nothing else is served before it, and a socket that has
  not joined within ``Limits.join_timeout`` is closed (4001);
* every request gets one response (``ok`` or ``error`` with a stable code);
* a socket above its message rate gets ``rate_limited`` and, if it keeps going, is closed (1008);
  too many malformed frames close it too — the lesson and its other participants go on;
* a ``waiting`` socket (in the waiting room) may only ``ping`` or ``leave``.

What the requests do lives beside it: ``signaling.joining`` (join, resume, entering and
leaving the lesson), ``signaling.tracks`` (the media requests) and ``signaling.staff``
(moderation, hands, chat, incident reports). Each handler takes the socket — for its ports:
records, media, the hub — the ``LiveLesson``, the acting ``Participant`` and the request.

A socket that drops without ``leave`` does not end the participant: it stays in the lesson as
"reconnecting" for ``Limits.resume_grace`` seconds (its media closed), and a new socket that
joins with the participant's resume token carries on as the same participant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from classroom.attendance import AttendanceRecorder
from classroom.errors import ClassroomError
from classroom.lessons import LessonService
from classroom.live import Event, LiveLesson, Participant
from classroom.safety import SafetyService
from media.port import MediaError, MediaPort, TurnSettings

from . import joining, messages, staff, tracks
from .errors import CloseCode, SignalingError
from .hub import Hub
from .limits import Limits, TokenBucket

logger = logging.getLogger(__name__)

#: Every request of an admitted participant but ``join``, ``leave`` and ``ping``.
HANDLERS: dict[type, tracks.Handler] = {**tracks.HANDLERS, **staff.HANDLERS}


class Session:
    """One socket's state machine: frames in, limits, parsing, dispatch, events pushed out.

    The person behind the socket is a ``classroom.live.Participant`` of a ``LiveLesson``; the
    session holds a reference to both once it has joined (``participant`` and ``live``), plus
    what belongs to the socket alone: its state, its rate limits and its subscribe
    negotiation."""

    def __init__(
        self,
        *,
        hub: Hub,
        lessons: LessonService,
        media: MediaPort,
        limits: Limits,
        client_address: str,
        send: Callable[[str], None],
        close: Callable[[int, str], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
        attendance: AttendanceRecorder | None = None,
        safety: SafetyService | None = None,
        turn: TurnSettings | None = None,
    ) -> None:
        self.turn = turn
        self.attendance = attendance
        self.safety = safety
        self.hub = hub
        self.lessons = lessons
        self.media = media
        self.limits = limits
        self.client_address = client_address
        self._send = send
        self._close = close
        self._clock = clock
        self.state = "connected"
        self.participant: Participant | None = None
        self.live: LiveLesson | None = None
        self.subscription = tracks.Subscription()
        self.chat_bucket = TokenBucket(limits.chat_rate, limits.chat_burst)
        self.incident_bucket = TokenBucket(1 / limits.incident_interval, limits.incident_burst)
        self._bucket = TokenBucket(limits.message_rate, limits.message_burst)
        self._rate_breaches = 0
        self._malformed = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.hub.unauthenticated[client_address] += 1
        self._counted_unauthenticated = True

    # -- plumbing ------------------------------------------------------------------------

    @property
    def participant_id(self) -> str | None:
        return self.participant.id if self.participant is not None else None

    def joined(self) -> tuple[LiveLesson, Participant]:
        """The lesson and participant of a session that has joined (waiting or admitted)."""
        if self.live is None or self.participant is None:
            raise SignalingError("not_authenticated", "Join the lesson first.")
        return self.live, self.participant

    def now(self) -> float:
        return self._clock()

    def push(self, text: str) -> None:
        if self.state != "closed":
            self._send(text)

    def tell(self, events: list[Event]) -> None:
        self.hub.tell(events)

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def too_many_unauthenticated(self) -> bool:
        return (
            self.hub.unauthenticated[self.client_address] > self.limits.unauthenticated_per_address
        )

    def refused(self) -> None:
        """A join was refused after its credentials proved themselves: the socket may try
        again, as if it had just connected (a socket that closed meanwhile stays closed)."""
        if self.state == "authenticated":
            self.state = "connected"
            self.participant = None
            self.live = None

    def uncount(self) -> None:
        if self._counted_unauthenticated:
            self._counted_unauthenticated = False
            self.hub.unauthenticated[self.client_address] -= 1
            if self.hub.unauthenticated[self.client_address] <= 0:
                del self.hub.unauthenticated[self.client_address]

    async def expire_unjoined(self) -> None:
        """Close the socket if it has not joined in time."""
        await asyncio.sleep(self.limits.join_timeout)
        if self.state in ("connected", "authenticated"):
            self.push(
                messages.error(
                    None,
                    "auth_timeout",
                    "Join the lesson within "
                    f"{int(self.limits.join_timeout)} seconds of connecting.",
                )
            )
            await self.shutdown(CloseCode.AUTH_TIMEOUT, "auth_timeout")

    # -- one frame in ----------------------------------------------------------------------

    async def handle_frame(self, frame: str | bytes) -> None:
        """Process one frame; never raises (a bad frame is the sender's problem only)."""
        if self.state == "closed":
            return
        if not self._bucket.take(self._clock()):
            self._rate_breaches += 1
            if self._rate_breaches > self.limits.rate_breaches_before_close:
                await self.shutdown(CloseCode.POLICY, "rate_limited")
                return
            self.push(
                messages.error(
                    messages.peek_id(frame),
                    "rate_limited",
                    "Too many messages; slow down.",
                    retry_after=1,
                )
            )
            return
        request_id: Any = None
        try:
            request = messages.parse_request(frame, self.limits)
            request_id = request.id
            data = await self._dispatch(request)
        except SignalingError as exc:
            if exc.code in ("malformed", "unknown_type", "message_too_big"):
                self._malformed += 1
            rid = exc.request_id if exc.request_id is not None else request_id
            self.push(messages.error(rid, exc.code, exc.message, **exc.extra))
            if exc.close_code is not None:
                await self.shutdown(exc.close_code, exc.code)
            elif self._malformed > self.limits.malformed_before_close:
                await self.shutdown(CloseCode.POLICY, "malformed")
            return
        except ClassroomError as exc:
            self.push(messages.error(request_id, exc.code, exc.message, **exc.extra))
            return
        except MediaError as exc:
            self.push(messages.error(request_id, exc.code, exc.message))
            return
        except Exception:
            logger.exception("request %r failed", request_id)
            self.push(
                messages.error(
                    request_id, "internal", "Something went wrong on the server; try again."
                )
            )
            return
        if data is not None:
            self.push(messages.ok(request_id, data))

    async def _dispatch(self, request: messages.Request) -> dict[str, Any] | None:
        if isinstance(request, messages.Join):
            return await joining.join(self, request)
        if isinstance(request, messages.Leave) and self.state in ("admitted", "waiting"):
            self.push(messages.ok(request.id, {}))
            await self.shutdown(CloseCode.NORMAL, "left")
            return None
        if isinstance(request, messages.Ping) and self.state in ("admitted", "waiting"):
            return {"time": time.time()}
        if self.state == "waiting":
            raise SignalingError("waiting")
        if self.state != "admitted":
            raise SignalingError("not_authenticated", "Join the lesson first.")
        live, me = self.joined()
        handler = HANDLERS.get(type(request))
        if handler is not None:
            return await handler(self, live, me, request)
        raise SignalingError("unknown_type", "This request type is not known.")

    # -- closing -------------------------------------------------------------------------

    async def shutdown(self, code: int = CloseCode.NORMAL, reason: str = "left") -> None:
        """Close this socket (once). The participant leaves the lesson — others told, media
        closed — unless the socket merely dropped (it may resume within the grace period) or a
        newer socket of the same participant replaced it.

        On a participant whose socket already dropped (reconnecting), a final reason — removed,
        lesson ended, replaced by another device — ends its grace period: it leaves now."""
        if self.state == "closed":
            if (
                reason not in joining.RESUMABLE
                and reason != "replaced"
                and joining.is_current(self)
            ):
                await joining.depart(self, reason)
            return
        was_admitted = self.state == "admitted"
        was_waiting = self.state == "waiting"
        self.state = "closed"
        self.uncount()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if was_waiting and self.live is not None and self.participant is not None:
            joining.leave_waiting_room(self, reason)
            if self.hub.socket(self.participant.id) is self:
                self.forget_socket()
                await self.hub.present(self.live, None, self.participant.id)
            self.hub.drop_if_empty(self.live.lesson.id)
        if was_admitted and self.live is not None and self.participant is not None:
            if reason == "replaced":
                await tracks.release(self)
            elif reason in joining.RESUMABLE and self.limits.resume_grace > 0:
                await joining.await_resume(self)
            else:
                await joining.depart(self, reason)
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    def forget_socket(self) -> None:
        if self.participant is not None and self.hub.socket(self.participant.id) is self:
            del self.hub.sockets[self.participant.id]
