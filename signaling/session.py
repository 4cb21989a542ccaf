"""One signaling session per WebSocket: connected → (waiting →) admitted → closed.

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

A newcomer who must wait (``moderation.must_wait``, or no teacher or moderator is in the lesson
yet) is ``waiting``: it sees no participant, receives no media and may only ``ping`` or
``leave`` until staff ``admit`` it (it then gets the ``admitted`` event with what ``join``
would have answered) or ``deny`` it (close 4006). The requests of teacher, moderators and
participants beyond media — moderation, chat, incident reports — are carried out by
``signaling.staff``.

A socket that drops without ``leave`` does not end the participant: it stays in the lesson as
"reconnecting" for ``Limits.resume_grace`` seconds (its media closed), and a new socket that
joins with the participant's resume token carries on as the same participant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from classroom.attendance import AttendanceRecorder, Attendee
from classroom.errors import ClassroomError
from classroom.lessons import LessonService
from classroom.live import Event, LiveLesson, Participant
from classroom.passwords import token_digest
from classroom.safety import SafetyService
from media.port import MediaError, MediaPort

from . import messages, staff, tracks
from .errors import CloseCode, SignalingError
from .hub import Hub
from .limits import Limits, TokenBucket

logger = logging.getLogger(__name__)

#: Every request of an admitted participant but ``join``, ``leave`` and ``ping``.
HANDLERS: dict[type, tracks.Handler] = {**tracks.HANDLERS, **staff.HANDLERS}

#: Shutdown reasons after which the participant may come back with its resume token.
RESUMABLE = frozenset({"disconnected"})
#: Shutdown reason when the same student joins from another device.
REPLACED_BY_DEVICE = "replaced_by_device"


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
    ) -> None:
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

    def _uncount(self) -> None:
        if self._counted_unauthenticated:
            self._counted_unauthenticated = False
            self.hub.unauthenticated[self.client_address] -= 1
            if self.hub.unauthenticated[self.client_address] <= 0:
                del self.hub.unauthenticated[self.client_address]

    async def expire_unjoined(self) -> None:
        """Close the socket if it has not joined in time."""
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
            return await self._join(request)
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

    # -- joining ---------------------------------------------------------------------------

    async def _join(self, request: messages.Join) -> dict[str, Any]:
        if self.state != "connected":
            raise SignalingError("already_joined", "This connection has already joined.")
        if request.resume is not None:
            return await self._resume(request.resume)
        if request.link is not None:
            admission = await self.lessons.admit_with_link(
                request.link, self.client_address, code=request.code
            )
        elif request.token:
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
        lesson_id = admission.lesson.id
        participant = Participant(
            "p_" + secrets.token_urlsafe(9),
            admission,
            device_digest=token_digest(request.device) if request.device is not None else None,
        )
        try:
            live = await self.hub.open(admission.lesson, self.limits)
            # Asked only after the password or link proved itself: from outside, a locked
            # lesson looks like any other.
            live.check_open(participant)
            if participant.base_role != "teacher" and self.safety is not None:
                # In the shared database: a ban holds on every node and after a restart.
                if await self.safety.banned(
                    lesson_id,
                    roster_entry_id=admission.roster_entry_id,
                    device_digest=participant.device_digest,
                ):
                    raise SignalingError("banned")
                if self.state != "connected":
                    raise SignalingError("not_authenticated", "This connection is closing.")
            wait = live.arrive(participant)
        except (SignalingError, ClassroomError):
            self.hub.drop_if_empty(lesson_id)
            raise
        self.participant = participant
        self.live = live
        if wait:
            return await self._knock(live, participant)
        await self.enter()
        return await self.welcome(resumed=False)

    async def _knock(self, live: LiveLesson, me: Participant) -> dict[str, Any]:
        """Wait in the waiting room: staff see the knock; this socket sees nothing else."""
        self.state = "waiting"
        self._uncount()
        self.hub.sockets[me.id] = self
        self.tell(live.knock(me))
        await self.hub.present(live, me, me.id)
        return {"waiting": True, "participant": me.describe(), "lesson": live.summary()}

    async def enter(self) -> None:
        """Come into the lesson (straight from ``join``, or admitted from the waiting room):
        the join is on disk before anyone — the client included — hears of it."""
        live, me = self.joined()
        await self._record("joined")
        if self.state not in ("connected", "waiting"):  # the socket closed meanwhile
            await self._record("left", reason="connection_lost")
            self.hub.drop_if_empty(live.lesson.id)
            raise SignalingError("not_authenticated", "This connection is closing.")
        entered = live.enter(me)
        self.state = "admitted"
        self._uncount()
        self.hub.sockets[me.id] = self
        self.tell(entered.events)
        await self.hub.present(live, me, me.id)
        for old in entered.replaced:
            # The same student from a second device: the newer connection wins, never two.
            session = self.hub.socket(old.id)
            if session is not None:
                session.push(messages.event("session_replaced", {}))
                await session.shutdown(CloseCode.REPLACED, REPLACED_BY_DEVICE)
        if me.staff and live.waiting:
            # Those who waited only because no teacher was here come in now; after this
            # join's own answer (the task runs once this request has been answered).
            self.hub.background(staff.admit_who_may_enter(self, live))

    async def record(self, kind: str, *, reason: str | None = None) -> None:
        await self._record(kind, reason=reason)

    async def _record(self, kind: str, *, reason: str | None = None) -> None:
        """Append one attendance event for this participant (committed when this returns).

        A join that cannot be written is refused (the error reaches the client); an event
        about leaving that cannot be written is logged — the lesson goes on, and recovery
        closes the interval at the last heartbeat."""
        if self.attendance is None or self.live is None or self.participant is None:
            return
        me = self.participant
        attendee = Attendee.of(me.admission)  # as admitted: a moderator attends as before
        args = (self.live.lesson.id, me.id, attendee)
        recorder = self.attendance
        if kind == "joined":
            await recorder.joined(*args, reason=reason)
            return
        try:
            if kind == "left":
                await recorder.left(*args, reason=reason or "left")
            elif kind == "reconnected":
                await recorder.reconnected(*args, reason=reason)
            elif kind == "replaced":
                await recorder.replaced(*args)
            elif kind == "removed":
                await recorder.removed(*args, reason=reason or "removed_by_teacher")
            elif kind == "admitted":
                await recorder.admitted(*args, reason=reason)
            elif kind == "denied":
                await recorder.denied(*args, reason=reason or "denied_by_teacher")
        except Exception:
            logger.exception("could not record %s of %s", kind, me.id)

    async def _resume(self, token: str) -> dict[str, Any]:
        """Carry on as the participant the resume token was issued to (same id and role)."""
        ticket = await self.hub.take_resume(token)
        live = self.hub.lessons.get(ticket.lesson_id) if ticket else None
        me = live.get(ticket.participant_id) if live and ticket else None
        old = self.hub.socket(me.id) if me is not None else None
        if ticket is None or live is None or me is None or old is None:
            raise SignalingError("resume_failed")
        lesson = await self.lessons.get_lesson(ticket.lesson_id)
        if lesson is None or lesson.ended:
            raise SignalingError("lesson_ended")
        if self.state != "connected" or self.hub.socket(me.id) is not old:
            raise SignalingError("resume_failed")  # this socket closed, or another resume won
        if live.get(me.id) is not me:
            raise SignalingError("resume_failed")
        self.chat_bucket = old.chat_bucket
        self.incident_bucket = old.incident_bucket
        self.live = live
        self.participant = me
        self.state = "admitted"
        self._uncount()
        self.hub.sockets[me.id] = self
        self.hub.cancel_grace(me.id)
        if me.presence == "reconnecting":
            await self._record("reconnected")
        if old.state != "closed":
            # The old socket is still open (a half-open TCP connection after a network
            # change, or a second tab): the newer connection wins.
            old.push(messages.event("session_replaced", {}))
            await old.shutdown(CloseCode.REPLACED, "replaced")
        if me.data_saver:  # the new connections keep the participant's choice
            await self.media.set_data_saver(live.lesson.id, me.id, True)
        self.tell(live.reconnected(me))
        await self.hub.present(live, me, me.id)
        return await self.welcome(resumed=True)

    async def welcome(self, *, resumed: bool) -> dict[str, Any]:
        """The ``join`` response: who you are, who is here, what you can receive."""
        live, me = self.joined()
        return {
            **live.welcome(me),
            "producers": [
                tracks.producer_json(p) for p in await tracks.visible_producers(self, live, me)
            ],
            "resume_token": await self.hub.issue_resume_token(live.lesson.id, me.id),
            "resume_grace": self.limits.resume_grace,
            "resumed": resumed,
            "data_saver": me.data_saver,
        }

    # -- leaving -------------------------------------------------------------------------

    async def shutdown(self, code: int = CloseCode.NORMAL, reason: str = "left") -> None:
        """Close this socket (once). The participant leaves the lesson — others told, media
        closed — unless the socket merely dropped (it may resume within the grace period) or a
        newer socket of the same participant replaced it.

        On a participant whose socket already dropped (reconnecting), a final reason — removed,
        lesson ended, replaced by another device — ends its grace period: it leaves now."""
        if self.state == "closed":
            if reason not in RESUMABLE and reason != "replaced" and self._is_current():
                await self._depart(reason)
            return
        was_admitted = self.state == "admitted"
        was_waiting = self.state == "waiting"
        self.state = "closed"
        self._uncount()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if was_waiting and self.live is not None and self.participant is not None:
            self.leave_waiting_room(reason)
            if self.hub.socket(self.participant.id) is self:
                self._forget_socket()
                await self.hub.present(self.live, None, self.participant.id)
            self.hub.drop_if_empty(self.live.lesson.id)
        if was_admitted and self.live is not None and self.participant is not None:
            if reason == "replaced":
                await tracks.release(self)
            elif reason in RESUMABLE and self.limits.resume_grace > 0:
                await self._await_resume()
            else:
                await self._depart(reason)
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    def leave_waiting_room(self, reason: str) -> None:
        """No longer knocking (admitted, denied, gone): staff stop seeing the knock."""
        live, me = self.joined()
        self.tell(live.stop_knocking(me, reason))

    def _forget_socket(self) -> None:
        if self.participant is not None and self.hub.socket(self.participant.id) is self:
            del self.hub.sockets[self.participant.id]

    def _is_current(self) -> bool:
        """Whether this session (not a newer one) still stands for its participant."""
        return (
            self.live is not None
            and self.participant is not None
            and self.live.get(self.participant.id) is self.participant
            and self.hub.socket(self.participant.id) is self
        )

    async def _await_resume(self) -> None:
        """The socket dropped: keep the participant as "reconnecting" for the grace period."""
        live, me = self.joined()
        if not self._is_current():
            return
        self.tell(live.connection_lost(me))
        await self.hub.present(live, me, me.id)
        # Written now, not when the grace ends: a resume within 60 s continues the interval,
        # and a crash meanwhile loses nothing.
        await self._record("left", reason="connection_lost")
        await tracks.release(self)
        if self._is_current():  # no resume arrived while the media closed

            async def expire() -> None:
                if self._is_current():
                    await self._depart("connection_lost")

            self.hub.start_grace(me.id, self.limits.resume_grace, expire)

    async def _depart(self, reason: str) -> None:
        """The participant leaves the lesson for good."""
        live, me = self.joined()
        if not self._is_current():
            return
        was_reconnecting = me.presence == "reconnecting"
        left = live.leave(me, reason)
        self._forget_socket()
        self.hub.cancel_grace(me.id)
        await self.hub.revoke_resume(me.id)
        await self.hub.present(live, None, me.id)
        await tracks.release(self)
        if reason == REPLACED_BY_DEVICE:
            await self._record("replaced")
        elif reason == "removed":
            await self._record("removed", reason=me.removal_reason)
        elif not was_reconnecting:  # a dropped socket's leaving is written already
            await self._record("left", reason=reason)
        self.tell(left)
        self.hub.drop_if_empty(live.lesson.id)
