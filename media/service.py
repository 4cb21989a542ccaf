"""``MediaService``: the one door from the control plane into the SFU.

Signaling never touches a transport, producer or consumer: it calls these methods with plain
data (ids, SDP text, candidate dicts) and gets plain data back, so the media plane could move to
worker processes — one per core, a lesson pinned to a worker, as mediasoup does — without the
control side changing. Each lesson has its own ``Router``; every lookup goes through the
caller's lesson, so no request can reach another lesson's media.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _aiortc
from .ice import IceSettings
from .router import COUNTERS, Producer
from .transport import MediaError, PublishTransport, SubscribeTransport, Transport

logger = logging.getLogger(__name__)

__all__ = ["ConsumerInfo", "MediaError", "MediaService", "MediaSettings", "Offer", "ProducerInfo"]


@dataclass(frozen=True)
class MediaSettings:
    ice: IceSettings = field(default_factory=IceSettings)
    keyframe_interval: float = 1.0
    """At most one keyframe request per producer per this many seconds."""
    retransmit_rate: float = 100.0
    """Retransmissions per subscriber per second (burst the same)."""
    max_video_bitrate: int = 1_500_000
    """The REMB cap announced to video publishers, bits per second."""


@dataclass(frozen=True)
class ProducerInfo:
    id: str
    participant_id: str
    kind: str
    codec: str
    paused: bool = False
    mid: str | None = None

    @classmethod
    def of(cls, p: Producer) -> ProducerInfo:
        return cls(p.id, p.participant_id, p.kind, p.codec.name, p.paused, p.mid)


@dataclass(frozen=True)
class ConsumerInfo:
    id: str
    producer_id: str
    participant_id: str
    kind: str
    mid: str | None


@dataclass(frozen=True)
class Offer:
    sdp: str
    version: int
    consumers: list[ConsumerInfo]


class Router:
    """One lesson's media: its producers and its participants' transports."""

    def __init__(self, lesson_id: str) -> None:
        self.lesson_id = lesson_id
        self.producers: dict[str, Producer] = {}
        self.publish: dict[str, PublishTransport] = {}
        self.subscribe: dict[str, SubscribeTransport] = {}


class MediaService:
    def __init__(
        self,
        settings: MediaSettings | None = None,
        on_transport_state: Callable[[str, str, str, str], None] | None = None,
    ) -> None:
        self.settings = settings or MediaSettings()
        if self.settings.ice.addresses is not None:
            _aiortc.set_host_addresses(self.settings.ice.addresses)
        self.routers: dict[str, Router] = {}
        self._lesson_of: dict[str, str] = {}
        self._video_view: dict[str, frozenset[str]] = {}
        """Per subscriber: the publishers whose video it receives (absent: all it may)."""
        self._on_transport_state = on_transport_state

    @staticmethod
    def _new_id(prefix: str) -> Callable[[], str]:
        return lambda: prefix + secrets.token_urlsafe(9)

    def _router(self, lesson_id: str) -> Router:
        router = self.routers.get(lesson_id)
        if router is None:
            router = self.routers[lesson_id] = Router(lesson_id)
        return router

    def _bind(self, lesson_id: str, participant_id: str) -> Router:
        bound = self._lesson_of.setdefault(participant_id, lesson_id)
        if bound != lesson_id:
            raise MediaError("forbidden", "This participant belongs to another lesson.")
        return self._router(lesson_id)

    def _state_changed(self, lesson_id: str) -> Callable[[Transport, str], None]:
        def changed(transport: Transport, state: str) -> None:
            if self._on_transport_state is not None:
                self._on_transport_state(
                    lesson_id, transport.participant_id, transport.direction, state
                )

        return changed

    async def publish(
        self, lesson_id: str, participant_id: str, offer_sdp: str
    ) -> tuple[str, list[ProducerInfo]]:
        """Apply a participant's publish offer; return the answer and the new producers."""
        router = self._bind(lesson_id, participant_id)
        transport = router.publish.get(participant_id)
        if transport is None:
            transport = router.publish[participant_id] = PublishTransport(
                transport_id=self._new_id("tp_")(),
                participant_id=participant_id,
                ice=self.settings.ice,
                max_video_bitrate=self.settings.max_video_bitrate,
                on_state=self._state_changed(lesson_id),
            )
        answer, created = await transport.negotiate(
            self.settings.ice.filter_sdp(offer_sdp),
            self._new_id("pr_"),
            keyframe_interval=self.settings.keyframe_interval,
        )
        for producer in created:
            router.producers[producer.id] = producer
        return answer, [ProducerInfo.of(p) for p in created]

    def producers(self, lesson_id: str) -> list[ProducerInfo]:
        router = self.routers.get(lesson_id)
        if router is None:
            return []
        return [ProducerInfo.of(p) for p in router.producers.values() if not p.closed]

    async def subscribe(
        self, lesson_id: str, participant_id: str, producer_ids: list[str]
    ) -> Offer | None:
        """Make the participant's subscribe connection carry exactly these producers (of this
        lesson only); return the new offer, or None when nothing changes."""
        router = self._bind(lesson_id, participant_id)
        wanted = [
            router.producers[pid]
            for pid in producer_ids
            if pid in router.producers and not router.producers[pid].closed
        ]
        transport = router.subscribe.get(participant_id)
        if transport is None:
            if not wanted:
                return None
            transport = router.subscribe[participant_id] = SubscribeTransport(
                transport_id=self._new_id("ts_")(),
                participant_id=participant_id,
                ice=self.settings.ice,
                retransmit_rate=self.settings.retransmit_rate,
                on_state=self._state_changed(lesson_id),
            )
            transport.video_view = self._video_view.get(participant_id)
        sdp = await transport.offer(wanted, self._new_id("co_"))
        if sdp is None:
            return None
        consumers = [
            ConsumerInfo(cid, p.id, p.participant_id, p.kind, mid)
            for cid, p, mid in transport.pending_consumers()
        ]
        return Offer(sdp=sdp, version=transport.version, consumers=consumers)

    async def accept_answer(self, lesson_id: str, participant_id: str, answer_sdp: str) -> int:
        """Apply the participant's answer to the latest subscribe offer; returns its version."""
        router = self._bind(lesson_id, participant_id)
        transport = router.subscribe.get(participant_id)
        if transport is None:
            raise MediaError("no_transport", "There is no offer to answer.")
        await transport.accept_answer(self.settings.ice.filter_sdp(answer_sdp))
        return transport.version

    def set_video_view(
        self, lesson_id: str, participant_id: str, publishers: frozenset[str] | None
    ) -> None:
        """Forward to this subscriber only the video of ``publishers`` (``None``: every video it
        is subscribed to). Paused consumers cost nothing; one that comes back waits for the
        keyframe it asks for at once. Consumers created later follow the same view."""
        router = self._bind(lesson_id, participant_id)
        if publishers is None:
            self._video_view.pop(participant_id, None)
        else:
            self._video_view[participant_id] = publishers
        transport = router.subscribe.get(participant_id)
        if transport is not None:
            transport.set_video_view(publishers)

    async def add_candidate(
        self, lesson_id: str, participant_id: str, direction: str, candidate: dict[str, Any] | None
    ) -> bool:
        router = self._bind(lesson_id, participant_id)
        transports: dict[str, Any] = router.publish if direction == "publish" else router.subscribe
        transport = transports.get(participant_id)
        if transport is None:
            raise MediaError("no_transport", "This connection has not been negotiated yet.")
        return bool(await transport.add_candidate(candidate))

    def set_producer_paused(self, lesson_id: str, producer_id: str, paused: bool) -> None:
        """Stop (or restart) forwarding a producer to everyone, whatever its client does."""
        router = self.routers.get(lesson_id)
        producer = router.producers.get(producer_id) if router else None
        if producer is None:
            raise MediaError("not_found", "No such track in this lesson.")
        if paused:
            producer.paused = True
        elif producer.paused:
            producer.paused = False
            for consumer in producer.consumers:
                consumer.waiting_for_keyframe = True
            producer.request_keyframe(producer.transport.now())

    async def close_participant(self, lesson_id: str, participant_id: str) -> list[ProducerInfo]:
        """Close both of a participant's connections; return the producers that ended."""
        router = self.routers.get(lesson_id)
        self._lesson_of.pop(participant_id, None)
        self._video_view.pop(participant_id, None)
        if router is None:
            return []
        # Detach both before the first await: the same participant may resume on a new socket
        # and negotiate new transports while these close.
        publish = router.publish.pop(participant_id, None)
        subscribe = router.subscribe.pop(participant_id, None)
        ended: list[ProducerInfo] = []
        if publish is not None:
            for producer in publish.producers:
                router.producers.pop(producer.id, None)
                ended.append(ProducerInfo.of(producer))
            await publish.close()
        if subscribe is not None:
            await subscribe.close()
        return ended

    async def close_lesson(self, lesson_id: str) -> None:
        router = self.routers.get(lesson_id)
        if router is None:
            return
        for pid in set(router.publish) | set(router.subscribe):
            await self.close_participant(lesson_id, pid)
        self.routers.pop(lesson_id, None)

    async def close(self) -> None:
        for lesson_id in list(self.routers):
            await self.close_lesson(lesson_id)

    @staticmethod
    def counters() -> dict[str, int]:
        return COUNTERS.as_dict()
