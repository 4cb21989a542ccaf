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
from dataclasses import replace
from typing import Any

from classroom.attendance import AttendanceRecorder, Attendee
from classroom.errors import ClassroomError
from classroom.lessons import Admission, LessonService
from classroom.moderation import STAFF, Permission, may, must_wait
from classroom.passwords import token_digest
from classroom.safety import Party, SafetyService
from media.service import DownlinkChange, MediaError, MediaService, ProducerInfo

from . import messages, staff
from .errors import CloseCode, SignalingError
from .hub import Hub, LiveLesson
from .limits import Limits, TokenBucket
from .sdp_guard import check_answer, check_offer

logger = logging.getLogger(__name__)

#: Shutdown reasons after which the participant may come back with its resume token.
RESUMABLE = frozenset({"disconnected"})
#: Shutdown reason when the same student joins from another device.
REPLACED_BY_DEVICE = "replaced_by_device"


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
        self.participant_id: str | None = None
        self.admission: Admission | None = None
        self.live: LiveLesson | None = None
        self.subscribed = False
        self.presence = "connected"  # or "reconnecting": the socket dropped, grace running
        self._role = ""  # the admission's role, or "moderator" while the teacher says so
        self.hand_raised_at: float | None = None
        self.muted_by_staff: set[str] = set()  # kinds ("audio", "video") staff turned off
        self.unmute_invited = False  # staff asked this participant to turn the mic on
        self.removal_reason = "removed_by_teacher"  # or "banned_by_teacher"
        self.device_digest: str | None = None  # sha256 of the browser's device key, if sent
        self.link = "ok"  # what the downlink carries: "ok", "weak" or "audio_only"
        self.data_saver = False  # the participant asked for audio only
        self.chat_bucket = TokenBucket(limits.chat_rate, limits.chat_burst)
        self.incident_bucket = TokenBucket(1 / limits.incident_interval, limits.incident_burst)
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
        return self._role

    @property
    def base_role(self) -> str:
        """The role the participant was admitted with: teacher, student or guest."""
        if self.admission is None:
            return ""
        if self.admission.role == "student" and getattr(self.admission, "guest", False):
            return "guest"
        return self.admission.role

    @property
    def name(self) -> str:
        return self.admission.name if self.admission else ""

    def set_role(self, role: str) -> None:
        self._role = role

    def party(self) -> Party:
        """This participant as the safety records name it."""
        assert self.participant_id is not None and self.admission is not None
        return Party(self.participant_id, self.name, self.role, self.admission.roster_entry_id)

    def now(self) -> float:
        return self._clock()

    def push(self, text: str) -> None:
        if self.state != "closed":
            self._send(text)

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
        if isinstance(request, messages.Publish):
            return await self._publish(request)
        if isinstance(request, messages.Subscribe):
            return await self._subscribe()
        if isinstance(request, messages.Answer):
            return await self._answer(request)
        if isinstance(request, messages.Ice):
            return await self._ice(request)
        if isinstance(request, messages.Pause):
            return self._pause(request)
        if isinstance(request, messages.View):
            return self._view(request)
        if isinstance(request, messages.DataSaver):
            return self._data_saver(request)
        handler = staff.HANDLERS.get(type(request))
        if handler is not None:
            return await handler(self, request)
        raise SignalingError("unknown_type", "This request type is not known.")

    # -- requests ------------------------------------------------------------------------

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
        if request.device is not None:
            self.device_digest = token_digest(request.device)
        live = self.hub.live(admission.lesson, chat_history=self.limits.chat_history)
        try:
            if live.controls.locked and admission.role != "teacher":
                # Asked only after the password or link proved itself: from outside, a locked
                # lesson looks like any other (SECURITY.md item 2).
                raise SignalingError("lesson_locked")
            if admission.role != "teacher" and self.safety is not None:
                # In the shared database: a ban holds on every node and after a restart.
                if await self.safety.banned(
                    lesson_id,
                    roster_entry_id=admission.roster_entry_id,
                    device_digest=self.device_digest,
                ):
                    raise SignalingError("banned")
                if self.state != "connected":
                    raise SignalingError("not_authenticated", "This connection is closing.")
            role = "guest" if admission.guest else admission.role
            on_class_list = admission.roster_entry_id is not None
            wait = must_wait(role, on_class_list, live.controls.waiting_room) or (
                role not in STAFF and not live.staff_present()
            )
            if wait and len(live.waiting) >= self.limits.waiting_per_lesson:
                raise SignalingError("waiting_room_full")
            if not wait and len(live.sessions) >= self.limits.participants_per_lesson:
                raise SignalingError("lesson_full", "This lesson is full.")
        except SignalingError:
            self.hub.drop_if_empty(lesson_id)
            raise
        self.admission = admission
        self._role = self.base_role
        self.live = live
        self.participant_id = "p_" + secrets.token_urlsafe(9)
        if wait:
            return self._knock()
        await self.enter()
        return self.welcome(resumed=False)

    def _knock(self) -> dict[str, Any]:
        """Wait in the waiting room: staff see the knock; this socket sees nothing else."""
        assert self.live is not None and self.participant_id is not None
        self.state = "waiting"
        self._uncount()
        self.live.waiting[self.participant_id] = self
        self.live.tell_staff(messages.event("knocking", self.knock_json()))
        lesson = self.live.lesson
        return {
            "waiting": True,
            "participant": self.describe(),
            "lesson": {"id": lesson.id, "code": lesson.code, "title": lesson.title},
        }

    def knock_json(self) -> dict[str, Any]:
        """What staff see of someone waiting: who, whether on the class list, and whether the
        same student is already in the lesson from another device."""
        assert self.admission is not None
        return {
            "id": self.participant_id,
            "name": self.name,
            "role": self.base_role,
            "on_class_list": self.admission.roster_entry_id is not None,
            "already_connected": bool(self._same_student_elsewhere()),
        }

    async def enter(self) -> None:
        """Come into the lesson (straight from ``join``, or admitted from the waiting room):
        the join is on disk before anyone — the client included — hears of it."""
        assert self.live is not None and self.participant_id is not None
        live = self.live
        await self._record("joined")
        if self.state not in ("connected", "waiting"):  # the socket closed meanwhile
            await self._record("left", reason="connection_lost")
            self.hub.drop_if_empty(live.lesson.id)
            raise SignalingError("not_authenticated", "This connection is closing.")
        self.state = "admitted"
        self._uncount()
        earlier = self._same_student_elsewhere()
        live.sessions[self.participant_id] = self
        live.broadcast(
            messages.event("participant_joined", self.describe()), exclude=self.participant_id
        )
        for old in earlier:
            # The same student from a second device: the newer connection wins, never two.
            old.push(messages.event("session_replaced", {}))
            await old.shutdown(CloseCode.REPLACED, REPLACED_BY_DEVICE)
        if self.role in STAFF and live.waiting:
            # Those who waited only because no teacher was here come in now; after this
            # join's own answer (the task runs once this request has been answered).
            self.hub.background(staff.admit_who_may_enter(self))

    def _same_student_elsewhere(self) -> list[Session]:
        """Other participants of this lesson who are the same rostered student."""
        assert self.live is not None and self.admission is not None
        entry = self.admission.roster_entry_id
        if entry is None:
            return []
        return [
            s
            for pid, s in self.live.sessions.items()
            if pid != self.participant_id
            and s.admission is not None
            and s.admission.roster_entry_id == entry
        ]

    async def record(self, kind: str, *, reason: str | None = None) -> None:
        await self._record(kind, reason=reason)

    async def _record(self, kind: str, *, reason: str | None = None) -> None:
        """Append one attendance event for this participant (committed when this returns).

        A join that cannot be written is refused (the error reaches the client); an event
        about leaving that cannot be written is logged — the lesson goes on, and recovery
        closes the interval at the last heartbeat."""
        if self.attendance is None or self.live is None or self.admission is None:
            return
        assert self.participant_id is not None
        admission = self.admission
        attendee = Attendee.of(admission)  # as admitted: a moderator attends as before
        args = (self.live.lesson.id, self.participant_id, attendee)
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
            logger.exception("could not record %s of %s", kind, self.participant_id)

    async def _resume(self, token: str) -> dict[str, Any]:
        """Carry on as the participant the resume token was issued to (same id and role)."""
        ticket = self.hub.take_resume(token)
        live = self.hub.lessons.get(ticket.lesson_id) if ticket else None
        old = live.sessions.get(ticket.participant_id) if live and ticket else None
        if ticket is None or live is None or old is None:
            raise SignalingError("resume_failed")
        lesson = await self.lessons.get_lesson(ticket.lesson_id)
        if lesson is None or lesson.ended:
            raise SignalingError("lesson_ended")
        if self.state != "connected" or live.sessions.get(ticket.participant_id) is not old:
            raise SignalingError("resume_failed")  # this socket closed, or another resume won
        pid = ticket.participant_id
        self.admission = old.admission
        self._role = old._role
        self.hand_raised_at = old.hand_raised_at
        self.muted_by_staff = old.muted_by_staff
        self.unmute_invited = old.unmute_invited
        self.device_digest = old.device_digest
        self.link = old.link
        self.data_saver = old.data_saver
        self.chat_bucket = old.chat_bucket
        self.incident_bucket = old.incident_bucket
        self.live = live
        self.participant_id = pid
        self.state = "admitted"
        self._uncount()
        live.sessions[pid] = self
        self.hub.cancel_grace(pid)
        if old.presence == "reconnecting":
            await self._record("reconnected")
        if old.state != "closed":
            # The old socket is still open (a half-open TCP connection after a network
            # change, or a second tab): the newer connection wins.
            old.push(messages.event("session_replaced", {}))
            await old.shutdown(CloseCode.REPLACED, "replaced")
        if self.data_saver:  # the new connections keep the participant's choice
            self.media.set_data_saver(live.lesson.id, pid, True)
        live.broadcast(messages.event("participant_updated", self.describe()), exclude=pid)
        return self.welcome(resumed=True)

    def welcome(self, *, resumed: bool) -> dict[str, Any]:
        """The ``join`` response: who you are, who is here, what you can receive."""
        assert self.live is not None and self.participant_id is not None
        lesson = self.live.lesson
        return {
            "participant": self.describe(),
            "lesson": {"id": lesson.id, "code": lesson.code, "title": lesson.title},
            "participants": [
                s.describe() for pid, s in self.live.sessions.items() if pid != self.participant_id
            ],
            "producers": [self._producer_json(p) for p in self._visible_producers()],
            "controls": self.live.controls.to_json(),
            "hands": self.live.hand_queue(),
            "chat": [m.to_json() for m in self.live.chat.visible_to(self.participant_id)],
            "knocking": [s.knock_json() for s in self.live.waiting.values()]
            if self.role in STAFF
            else [],
            "resume_token": self.hub.issue_resume_token(lesson.id, self.participant_id),
            "resume_grace": self.limits.resume_grace,
            "resumed": resumed,
            "data_saver": self.data_saver,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.participant_id,
            "name": self.name,
            "role": self.role,
            "state": self.presence,
            "link": self.link,
        }

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
        return {"id": p.id, "participant": p.participant_id, "kind": p.kind, "paused": p.paused}

    def _tell_receivers(self, p: ProducerInfo, text: str) -> None:
        """Send ``text`` to everyone in the lesson who may receive the producer ``p``."""
        assert self.live is not None
        publisher_role = self._role_of(p.participant_id)
        for session in list(self.live.sessions.values()):
            if session.participant_id != p.participant_id and self.live.may_receive(
                session.role, publisher_role, p.kind
            ):
                session.push(text)

    async def _publish(self, request: messages.Publish) -> dict[str, Any]:
        assert self.live is not None and self.participant_id is not None
        check_offer(request.sdp, self.limits)
        if self.base_role == "teacher":
            # The teacher's video comes first in every student's downlink.
            self.media.set_priority(self.live.lesson.id, self.participant_id, 0)
        answer, producers = await self.media.publish(
            self.live.lesson.id, self.participant_id, request.sdp
        )
        # A track the lesson does not let this participant use starts paused at the server.
        refused = {p.id for p in producers if not self._may_send(p.kind)}
        for producer_id in refused:
            self.media.set_producer_paused(self.live.lesson.id, producer_id, True)
        producers = [replace(p, paused=True) if p.id in refused else p for p in producers]
        for p in producers:
            self._tell_receivers(p, messages.event("track_published", self._producer_json(p)))
        self.live_resync(exclude=self.participant_id)
        return {
            "sdp": answer,
            "producers": [
                {"id": p.id, "kind": p.kind, "mid": p.mid, "paused": p.paused} for p in producers
            ],
        }

    def _may_send(self, kind: str) -> bool:
        """Whether this participant may have a live ``kind`` track right now."""
        assert self.live is not None
        controls = self.live.controls
        if kind == "audio":
            if self.unmute_invited:
                return True
            return may(self.role, Permission.UNMUTE, controls) and (
                "audio" not in self.muted_by_staff or self.role in STAFF
            )
        return may(self.role, Permission.VIDEO, controls)

    def live_resync(self, exclude: str | None = None) -> None:
        """Ask every subscribed participant of the lesson to bring its media up to date."""
        assert self.live is not None
        for pid, session in list(self.live.sessions.items()):
            if pid != exclude and session.subscribed:
                session.schedule_resync()

    def schedule_resync(self) -> None:
        self.spawn(self._resync_now())

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

    def _pause(self, request: messages.Pause) -> dict[str, Any]:
        assert self.live is not None and self.participant_id is not None
        lesson_id = self.live.lesson.id
        mine = {p.id: p for p in self.media.producers(lesson_id)}
        producer = mine.get(request.producer)
        if producer is None or producer.participant_id != self.participant_id:
            raise SignalingError("not_found")
        if not request.paused and not self._may_send(producer.kind):
            raise SignalingError(
                "forbidden",
                "The teacher has not allowed you to turn your microphone on."
                if producer.kind == "audio"
                else "The teacher has not allowed you to turn your camera on.",
            )
        if not request.paused:
            self.muted_by_staff.discard(producer.kind)
            if producer.kind == "audio":
                self.unmute_invited = False  # the invitation is used up
        if producer.paused != request.paused:
            self.media.set_producer_paused(lesson_id, producer.id, request.paused)
            changed = next(p for p in self.media.producers(lesson_id) if p.id == producer.id)
            self._tell_receivers(
                changed, messages.event("track_state", self._producer_json(changed))
            )
        return {"id": producer.id, "paused": request.paused}

    def _view(self, request: messages.View) -> dict[str, Any]:
        assert self.live is not None and self.participant_id is not None
        publishers = frozenset(request.video) if request.video is not None else None
        self.media.set_video_view(self.live.lesson.id, self.participant_id, publishers)
        return {"video": list(request.video) if request.video is not None else None}

    def _data_saver(self, request: messages.DataSaver) -> dict[str, Any]:
        """Audio only, whatever the link carries (or back): the server stops forwarding video
        to this participant; the ``downlink`` event that follows says so."""
        assert self.live is not None and self.participant_id is not None
        self.data_saver = request.on
        if not self.media.set_data_saver(self.live.lesson.id, self.participant_id, request.on):
            self.downlink_changed(None)  # no subscribe connection yet to say so
        return {"on": request.on}

    def downlink_changed(self, change: DownlinkChange | None) -> None:
        """Tell the participant what its downlink carries now; staff see its link state."""
        if self.state != "admitted" or self.live is None or self.participant_id is None:
            return
        if change is None:
            data = self.media.downlink(self.live.lesson.id, self.participant_id)
        else:
            data = {
                "state": change.state,
                "reason": change.reason,
                "estimate": change.estimate,
                "paused": change.paused,
            }
        self.push(messages.event("downlink", data))
        if data["state"] != self.link:
            self.link = data["state"]
            update = messages.event("participant_updated", self.describe())
            for session in self.live.staff():
                if session is not self:
                    session.push(update)

    # -- helpers for signaling.staff ---------------------------------------------------------

    def target(self, participant_id: str) -> Session:
        """Another participant of this lesson (also while reconnecting)."""
        assert self.live is not None
        if participant_id == self.participant_id:
            raise SignalingError("forbidden", "Use your own buttons to do that to yourself.")
        target = self.live.sessions.get(participant_id)
        if target is None:
            raise SignalingError("not_found", "There is no such participant in this lesson.")
        return target

    def pause_producers(self, kind: str) -> list[ProducerInfo]:
        """Stop forwarding this participant's ``kind`` tracks at once; tell their receivers
        and the participant."""
        assert self.live is not None
        lesson_id = self.live.lesson.id
        paused = []
        for p in self.media.producers(lesson_id):
            if p.participant_id == self.participant_id and p.kind == kind and not p.paused:
                self.media.set_producer_paused(lesson_id, p.id, True)
                changed = replace(p, paused=True)
                state = messages.event("track_state", self._producer_json(changed))
                self._tell_receivers(changed, state)
                self.push(state)
                paused.append(changed)
        return paused

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
        if was_waiting:
            self.leave_waiting_room(reason)
        if was_admitted and self.live is not None and self.participant_id is not None:
            if reason == "replaced":
                await self._release_media()
            elif reason in RESUMABLE and self.limits.resume_grace > 0:
                await self._await_resume()
            else:
                await self._depart(reason)
        with contextlib.suppress(Exception):
            await self._close(code, reason)

    def leave_waiting_room(self, reason: str) -> None:
        """No longer knocking (admitted, denied, gone): staff stop seeing the knock."""
        assert self.live is not None and self.participant_id is not None
        if self.live.waiting.get(self.participant_id) is self:
            del self.live.waiting[self.participant_id]
            self.live.tell_staff(
                messages.event("knock_ended", {"id": self.participant_id, "reason": reason})
            )
            self.hub.drop_if_empty(self.live.lesson.id)

    def _is_current(self) -> bool:
        """Whether this session (not a newer one) still stands for its participant."""
        return (
            self.live is not None
            and self.participant_id is not None
            and self.live.sessions.get(self.participant_id) is self
        )

    async def _release_media(self) -> None:
        """Close the participant's peer connections; tell the others its tracks ended."""
        assert self.live is not None and self.participant_id is not None
        live = self.live
        self.subscribed = False
        self._offer_version = None
        ended = await self.media.close_participant(live.lesson.id, self.participant_id)
        for p in ended:
            live.broadcast(messages.event("track_unpublished", self._producer_json(p)))
        if ended:
            for session in list(live.sessions.values()):
                if session.subscribed:
                    session.schedule_resync()

    async def _await_resume(self) -> None:
        """The socket dropped: keep the participant as "reconnecting" for the grace period."""
        assert self.live is not None and self.participant_id is not None
        if not self._is_current():
            return
        self.presence = "reconnecting"
        self.live.broadcast(
            messages.event("participant_updated", self.describe()), exclude=self.participant_id
        )
        # Written now, not when the grace ends: a resume within 60 s continues the interval,
        # and a crash meanwhile loses nothing.
        await self._record("left", reason="connection_lost")
        await self._release_media()
        if self._is_current():  # no resume arrived while the media closed

            async def expire() -> None:
                if self._is_current():
                    await self._depart("connection_lost")

            self.hub.start_grace(self.participant_id, self.limits.resume_grace, expire)

    async def _depart(self, reason: str) -> None:
        """The participant leaves the lesson for good."""
        assert self.live is not None and self.participant_id is not None
        live = self.live
        if not self._is_current():
            return
        live.sessions.pop(self.participant_id, None)
        self.hub.cancel_grace(self.participant_id)
        self.hub.revoke_resume(self.participant_id)
        await self._release_media()
        if reason == REPLACED_BY_DEVICE:
            await self._record("replaced")
        elif reason == "removed":
            await self._record("removed", reason=self.removal_reason)
        elif self.presence != "reconnecting":  # a dropped socket's leaving is written already
            await self._record("left", reason=reason)
        live.broadcast(
            messages.event("participant_left", {"id": self.participant_id, "reason": reason})
        )
        if self.hand_raised_at is not None:
            self.hand_raised_at = None
            live.broadcast(messages.event("hands", {"queue": live.hand_queue()}))
        self.hub.drop_if_empty(live.lesson.id)
