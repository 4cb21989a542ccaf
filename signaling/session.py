"""One signaling session per WebSocket: connected → admitted → closed.

The session turns each request into a ``classroom`` command and a ``media`` operation and
answers it exactly once. It is written against two small callables — ``send`` (queue one text
frame) and ``close`` (close the socket with a code) — so the socket itself stays in ``web``.

Rules enforced here, for every socket, whatever the client is:

* the first request must be ``join``; nothing else is served before it, and a socket that has
  not joined within ``Limits.join_timeout`` is closed (4001);
* every request gets one response (``ok`` or ``error`` with a stable code);
* a socket above its message rate gets ``rate_limited`` and, if it keeps going, is closed (1008);
  too many malformed frames close it too — the lesson and its other participants go on;
* a participant receives only what the lesson lets its role receive, and only of its own lesson
  (the media service binds the participant to one lesson's router).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from classroom.errors import ClassroomError
from classroom.lessons import Admission, LessonService
from media.service import MediaError, MediaService, ProducerInfo

from . import messages
from .errors import SignalingError
from .hub import Hub, LiveLesson
from .limits import Limits, TokenBucket
from .sdp_guard import check_answer, check_offer

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_AUTH_TIMEOUT = 4001
CLOSE_REPLACED = 4002
CLOSE_LESSON_ENDED = 4003
CLOSE_SLOW_CONSUMER = 4004


class Session:
    def __init__(
        self,
        *,
        hub: Hub,
        lessons: LessonService,
        media: MediaService,
        limits: Limits,
        client_address: str,
        send: Callable[[str], None],
        close: Callable[[int, str], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.lessons = lessons
        self.media = media
        self.limits = limits
        self.client_address = client_address
        self._send = send
        self._close = close
        self._clock = clock
        self.state = "connected"
        self.participant_id: str | None = None
        self.admission: Admission | None = None
        self.live: LiveLesson | None = None
        self.subscribed = False
        self._offer_version: int | None = None  # the subscribe offer awaiting its answer
        self._resync = False
        self._media_lock = asyncio.Lock()
        self._bucket = TokenBucket(limits.message_rate, limits.message_burst)
        self._rate_breaches = 0
        self._malformed = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.hub.unauthenticated[client_address] += 1
        self._counted_unauthenticated = True

    # -- plumbing ------------------------------------------------------------------------

    @property
    def role(self) -> str:
        return self.admission.role if self.admission else ""

    @property
    def name(self) -> str:
        return self.admission.name if self.admission else ""

    def push(self, text: str) -> None:
        if self.state != "closed":
            self._send(text)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def too_many_unauthenticated(self) -> bool:
        return (
            self.hub.unauthenticated[self.client_address] > self.limits.unauthenticated_per_address
        )

    def _uncount(self) -> None:
        if self._counted_unauthenticated:
            self._counted_unauthenticated = False
            self.hub.unauthenticated[self.client_address] -= 1
            if self.hub.unauthenticated[self.client_address] <= 0:
                del self.hub.unauthenticated[self.client_address]

    async def expire_unjoined(self) -> None:
        """Close the socket if it has not joined in time (SECURITY.md item 7)."""
        await asyncio.sleep(self.limits.join_timeout)
        if self.state == "connected":
            self.push(
                messages.error(
                    None,
                    "auth_timeout",
                    "Join the lesson within "
                    f"{int(self.limits.join_timeout)} seconds of connecting.",
                )
            )
            await self.shutdown(CLOSE_AUTH_TIMEOUT, "auth_timeout")

    # -- one frame in ----------------------------------------------------------------------

    async def handle_frame(self, frame: str | bytes) -> None:
        """Process one frame; never raises (a bad frame is the sender's problem only)."""
        if self.state == "closed":
            return
        if not self._bucket.take(self._clock()):
            self._rate_breaches += 1
            if self._rate_breaches > self.limits.rate_breaches_before_close:
                await self.shutdown(CLOSE_POLICY, "rate_limited")
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
                await self.shutdown(CLOSE_POLICY, "malformed")
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
            return await self._join(request)
        if self.state != "admitted":
            raise SignalingError("not_authenticated", "Join the lesson first.")
        if isinstance(request, messages.Publish):
            return await self._publish(request)
        if isinstance(request, messages.Subscribe):
            return await self._subscribe()
        if isinstance(request, messages.Answer):
            return await self._answer(request)
        if isinstance(request, messages.Ice):
            return await self._ice(request)
        if isinstance(request, messages.Ping):
            return {"time": time.time()}
        if isinstance(request, messages.Leave):
            self.push(messages.ok(request.id, {}))
            await self.shutdown(CLOSE_NORMAL, "left")
            return None
        raise SignalingError("unknown_type", "This request type is not known.")

    # -- requests ------------------------------------------------------------------------

    async def _join(self, request: messages.Join) -> dict[str, Any]:
        if self.state != "connected":
            raise SignalingError("already_joined", "This connection has already joined.")
        if request.token:
            admission = await self.lessons.admit_teacher(request.token)
        else:
            admission = await self.lessons.admit_guest(
                request.code or "",
                request.password or "",
                request.name or "",
                self.client_address,
            )
        if self.state != "connected":  # closed while the password was being checked
            raise SignalingError("not_authenticated", "This connection is closing.")
        live = self.hub.live(admission.lesson)
        if len(live.sessions) >= self.limits.participants_per_lesson:
            self.hub.drop_if_empty(admission.lesson.id)
            raise SignalingError("lesson_full", "This lesson is full.")
        self.admission = admission
        self.live = live
        self.participant_id = "p_" + secrets.token_urlsafe(9)
        self.state = "admitted"
        self._uncount()
        others = [s.describe() for s in live.sessions.values()]
        live.sessions[self.participant_id] = self
        live.broadcast(
            messages.event("participant_joined", self.describe()), exclude=self.participant_id
        )
        return {
            "participant": self.describe(),
            "lesson": {
                "id": admission.lesson.id,
                "code": admission.lesson.code,
                "title": admission.lesson.title,
            },
            "participants": others,
            "producers": [self._producer_json(p) for p in self._visible_producers()],
        }

    def describe(self) -> dict[str, Any]:
        return {"id": self.participant_id, "name": self.name, "role": self.role}

    def _role_of(self, participant_id: str) -> str:
        assert self.live is not None
        session = self.live.sessions.get(participant_id)
        return session.role if session else ""

    def _visible_producers(self) -> list[ProducerInfo]:
        assert self.live is not None
        return [
            p
            for p in self.media.producers(self.live.lesson.id)
            if p.participant_id != self.participant_id
            and self.live.may_receive(self.role, self._role_of(p.participant_id), p.kind)
        ]

    @staticmethod
    def _producer_json(p: ProducerInfo) -> dict[str, Any]:
        return {"id": p.id, "participant": p.participant_id, "kind": p.kind}

    async def _publish(self, request: messages.Publish) -> dict[str, Any]:
        assert self.live is not None and self.participant_id is not None
        check_offer(request.sdp, self.limits)
        answer, producers = await self.media.publish(
            self.live.lesson.id, self.participant_id, request.sdp
        )
        for p in producers:
            for session in list(self.live.sessions.values()):
                if session is not self and self.live.may_receive(session.role, self.role, p.kind):
                    session.push(messages.event("track_published", self._producer_json(p)))
        self.live_resync(exclude=self.participant_id)
        return {
            "sdp": answer,
            "producers": [{"id": p.id, "kind": p.kind} for p in producers],
        }

    def live_resync(self, exclude: str | None = None) -> None:
        """Ask every subscribed participant of the lesson to bring its media up to date."""
        assert self.live is not None
        for pid, session in list(self.live.sessions.items()):
            if pid != exclude and session.subscribed:
                session.schedule_resync()

    def schedule_resync(self) -> None:
        self._spawn(self._resync_now())

    async def _resync_now(self) -> None:
        async with self._media_lock:
            if self.state != "admitted" or not self.subscribed:
                return
            if self._offer_version is not None:
                self._resync = True  # after the outstanding answer
                return
            offer = await self._make_offer()
            if offer is not None:
                self.push(messages.event("offer", offer))

    async def _make_offer(self) -> dict[str, Any] | None:
        assert self.live is not None and self.participant_id is not None
        try:
            offer = await self.media.subscribe(
                self.live.lesson.id,
                self.participant_id,
                [p.id for p in self._visible_producers()],
            )
        except MediaError:
            logger.exception("subscribe offer failed")
            return None
        if offer is None:
            return None
        self._offer_version = offer.version
        return {
            "sdp": offer.sdp,
            "version": offer.version,
            "consumers": [
                {
                    "id": c.id,
                    "producer": c.producer_id,
                    "participant": c.participant_id,
                    "kind": c.kind,
                    "mid": c.mid,
                }
                for c in offer.consumers
            ],
        }

    async def _subscribe(self) -> dict[str, Any]:
        async with self._media_lock:
            self.subscribed = True
            if self._offer_version is not None:
                raise SignalingError("bad_version", "An offer is already waiting for its answer.")
            offer = await self._make_offer()
        return offer or {"sdp": None, "version": None, "consumers": []}

    async def _answer(self, request: messages.Answer) -> dict[str, Any]:
        assert self.live is not None and self.participant_id is not None
        check_answer(request.sdp, self.limits)
        async with self._media_lock:
            if self._offer_version is None or request.version != self._offer_version:
                raise SignalingError("bad_version", "This answer is not for the current offer.")
            await self.media.accept_answer(self.live.lesson.id, self.participant_id, request.sdp)
            self._offer_version = None
            again = self._resync
            self._resync = False
        if again:
            self.schedule_resync()
        return {"version": request.version}

    async def _ice(self, request: messages.Ice) -> dict[str, Any]:
        assert self.live is not None and self.participant_id is not None
        candidate = request.candidate.to_json() if request.candidate is not None else None
        accepted = await self.media.add_candidate(
            self.live.lesson.id, self.participant_id, request.pc, candidate
        )
        return {"accepted": accepted}

    # -- leaving -------------------------------------------------------------------------

    async def shutdown(self, code: int = CLOSE_NORMAL, reason: str = "left") -> None:
        """Leave the lesson (once): media closed, others told, socket closed."""
        if self.state == "closed":
            return
        was_admitted = self.state == "admitted"
        self.state = "closed"
        self._uncount()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if was_admitted and self.live is not None and self.participant_id is not None:
            live = self.live
            live.sessions.pop(self.participant_id, None)
            ended = await self.media.close_participant(live.lesson.id, self.participant_id)
            for p in ended:
                live.broadcast(messages.event("track_unpublished", self._producer_json(p)))
            live.broadcast(
                messages.event("participant_left", {"id": self.participant_id, "reason": reason})
            )
            if ended:
                for session in list(live.sessions.values()):
                    if session.subscribed:
                        session.schedule_resync()
            self.hub.drop_if_empty(live.lesson.id)
        with contextlib.suppress(Exception):
            await self._close(code, reason)
