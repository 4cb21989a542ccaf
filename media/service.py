"""``MediaService``: the SFU of one process, behind ``media.port.MediaPort``.

Signaling never touches a transport, producer or consumer, nor this class: it drives the SFU
through the async ``MediaPort`` (``media.port.LocalMedia`` wraps this service), with plain data
(ids, SDP text, candidate dicts) in and out, so the media plane could move to worker processes
— one per core, a lesson pinned to a worker, as mediasoup does — without the control side
changing. Each lesson has its own ``Router``; every lookup goes through the
caller's lesson, so no request can reach another lesson's media.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _aiortc
from .allocation import TICK
from .ice import IceSettings
from .router import COUNTERS, Producer
from .transport import MediaError, PublishTransport, SubscribeTransport

logger = logging.getLogger(__name__)

__all__ = [
    "ConsumerInfo",
    "DownlinkChange",
    "MediaError",
    "MediaService",
    "MediaSettings",
    "Offer",
    "ProducerInfo",
]


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
class DownlinkChange:
    """A subscriber's downlink changed: what it is told (``SubscribeTransport.downlink``)."""

    lesson_id: str
    participant_id: str
    state: str  # "ok" | "weak" | "audio_only"
    reason: str | None  # None | "bandwidth" | "data_saver"
    estimate: int | None
    paused: list[str]  # producer ids held back for bandwidth


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
    def __init__(self, settings: MediaSettings | None = None) -> None:
        self.settings = settings or MediaSettings()
        if self.settings.ice.addresses is not None:
            _aiortc.set_host_addresses(self.settings.ice.addresses)
        self.routers: dict[str, Router] = {}
        self._lesson_of: dict[str, str] = {}
        self._video_view: dict[str, frozenset[str]] = {}
        """Per subscriber: the publishers whose video it receives (absent: all it may)."""
        self._data_saver: set[str] = set()
        """Subscribers who asked for audio only."""
        self._priority: dict[str, int] = {}
        """Per publisher: the allocation priority of its video (absent: 2, the rest)."""
        self.on_downlink: Callable[[DownlinkChange], None] | None = None
        """Told when a subscriber's downlink state changes (the control plane tells the
        participant, and the lesson's staff)."""
        self._ticker: asyncio.Task[None] | None = None

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
            )
        answer, created = await transport.negotiate(
            self.settings.ice.filter_sdp(offer_sdp),
            self._new_id("pr_"),
            keyframe_interval=self.settings.keyframe_interval,
        )
        for producer in created:
            producer.priority = self._priority.get(participant_id, 2)
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
            )
            transport.video_view = self._video_view.get(participant_id)
            transport.data_saver = participant_id in self._data_saver
            transport.on_downlink = self._downlink_changed(lesson_id)
            self._start_ticker()
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

    def set_data_saver(self, lesson_id: str, participant_id: str, on: bool) -> bool:
        """Send this subscriber audio only (``on``), whatever its link carries; off: what its
        link carries. Holds for connections made later too. True when a subscribe connection
        exists (it reports its downlink through ``on_downlink``); False when the caller must
        tell the participant itself."""
        router = self._bind(lesson_id, participant_id)
        if on:
            self._data_saver.add(participant_id)
        else:
            self._data_saver.discard(participant_id)
        transport = router.subscribe.get(participant_id)
        if transport is None:
            return False
        transport.set_data_saver(on)
        return True

    def set_priority(self, lesson_id: str, participant_id: str, priority: int) -> None:
        """The allocation priority of a publisher's video for every subscriber: 0 the
        teacher (and screen share), 1 a pinned or speaking student, 2 the rest."""
        router = self._bind(lesson_id, participant_id)
        self._priority[participant_id] = priority
        for producer in router.producers.values():
            if producer.participant_id == participant_id:
                producer.priority = priority

    def downlink(self, lesson_id: str, participant_id: str) -> dict[str, Any]:
        """A subscriber's downlink as it is told (state, reason, estimate, held tracks)."""
        router = self._bind(lesson_id, participant_id)
        transport = router.subscribe.get(participant_id)
        if transport is None:
            saver = participant_id in self._data_saver
            return {
                "state": "audio_only" if saver else "ok",
                "reason": "data_saver" if saver else None,
                "estimate": None,
                "paused": [],
            }
        return transport.downlink()

    def stats(self, lesson_id: str, participant_id: str) -> dict[str, Any]:
        """A participant's connection figures for staff: the downlink estimate, its inputs
        and the allocation's decisions; what it publishes."""
        router = self.routers.get(lesson_id)
        if router is None or self._lesson_of.get(participant_id) != lesson_id:
            raise MediaError("not_found", "This participant has no media in this lesson.")
        subscribe = router.subscribe.get(participant_id)
        publish = router.publish.get(participant_id)
        return {
            "downlink": subscribe.stats() if subscribe is not None else None,
            "uplink": [
                {
                    "producer": p.id,
                    "kind": p.kind,
                    "bitrate": int(p.bitrate),
                    "paused": p.paused,
                    "jitter": int(p.stats.jitter),
                }
                for p in (publish.producers if publish is not None else [])
                if not p.closed
            ],
        }

    def downlink_summary(self) -> dict[str, Any]:
        """For ``/metrics``: subscribers by downlink state, and their estimates."""
        states = {"ok": 0, "weak": 0, "audio_only": 0}
        estimates: list[int] = []
        for router in self.routers.values():
            for transport in router.subscribe.values():
                if not transport.connected:
                    continue
                states[transport.downlink()["state"]] += 1
                estimates.append(transport.estimate)
        return {"states": states, "estimates": estimates}

    def _downlink_changed(self, lesson_id: str) -> Callable[[SubscribeTransport], None]:
        def changed(transport: SubscribeTransport) -> None:
            d = transport.downlink()
            logger.info(
                "downlink of %s in %s: %s (%s), estimate %s, held %s; estimator %s",
                transport.participant_id,
                lesson_id,
                d["state"],
                d["reason"],
                d["estimate"],
                d["paused"],
                transport.estimator.snapshot(),
            )
            if self.on_downlink is None:
                return
            self.on_downlink(
                DownlinkChange(
                    lesson_id,
                    transport.participant_id,
                    d["state"],
                    d["reason"],
                    d["estimate"],
                    d["paused"],
                )
            )

        return changed

    def _start_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.ensure_future(self._tick_forever())

    async def _tick_forever(self) -> None:
        """Every ``allocation.TICK``: measure each producer, then let every connected
        subscriber share its downlink out. One loop for the whole process (not a timer per
        subscriber), so its cost grows with the participants, not with timers."""
        try:
            while self.routers:
                await asyncio.sleep(TICK)
                self.tick(time.time())
        except asyncio.CancelledError:
            pass
        finally:
            self._ticker = None

    def tick(self, now: float) -> None:
        for router in list(self.routers.values()):
            for producer in list(router.producers.values()):
                producer.measure(now)
            for transport in list(router.subscribe.values()):
                if transport.connected and not transport.closed:
                    try:
                        transport.allocate(now)
                    except Exception:  # one subscriber's trouble must not stop the others
                        logger.exception("allocation failed for %s", transport.id)

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
        self._data_saver.discard(participant_id)
        self._priority.pop(participant_id, None)
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
        if self._ticker is not None:
            self._ticker.cancel()

    @staticmethod
    def counters() -> dict[str, int]:
        return COUNTERS.as_dict()
