"""``MediaPort``: the one async door through which the control plane drives the SFU.

Every call carries plain data — lesson and participant ids, SDP text, candidate dicts — and
returns plain data (``ProducerInfo``, ``Offer``, dicts), and what the media plane has to say
comes out of :meth:`MediaPort.events`. Nothing crosses it that could not cross a pipe, so the
SFU can move to worker processes (one per core, a lesson pinned to one worker, as mediasoup
does) without signaling changing. :class:`LocalMedia` is the port of an SFU in this process.

Mute, remove, permissions and bandwidth are all the same act here: pause or close producers
and consumers. The client is told, but never trusted to comply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

from .service import ConsumerInfo, DownlinkChange, MediaError, MediaService, Offer, ProducerInfo
from .turn import TurnSettings

logger = logging.getLogger(__name__)

__all__ = [
    "ConsumerInfo",
    "DownlinkChange",
    "LocalMedia",
    "MediaError",
    "MediaEvent",
    "MediaPort",
    "Offer",
    "ProducerInfo",
    "TurnSettings",
]

#: What the media plane tells the control plane.
MediaEvent = DownlinkChange

#: Events held for a control plane that does not read them, before the oldest are dropped.
MAX_PENDING_EVENTS: Final = 10_000


class MediaPort(Protocol):
    async def publish(
        self, lesson_id: str, participant_id: str, offer_sdp: str, *, priority: int | None = None
    ) -> tuple[str, list[ProducerInfo]]:
        """Open (or renegotiate) a participant's publish transport from its offer: the answer
        and the new producers. ``priority`` ranks its video in every downlink (0 first)."""
        ...

    async def producers(self, lesson_id: str) -> list[ProducerInfo]:
        """The lesson's live producers."""
        ...

    async def subscribe(
        self, lesson_id: str, participant_id: str, producer_ids: list[str]
    ) -> Offer | None:
        """Make the participant's subscribe transport carry exactly these producers (of this
        lesson only): the new offer, or ``None`` when nothing changes."""
        ...

    async def accept_answer(self, lesson_id: str, participant_id: str, answer_sdp: str) -> int:
        """Apply the answer to the latest subscribe offer; its version."""
        ...

    async def add_candidate(
        self, lesson_id: str, participant_id: str, direction: str, candidate: dict[str, Any] | None
    ) -> bool: ...

    async def pause(self, lesson_id: str, producer_id: str) -> None:
        """Stop forwarding a producer to everyone, whatever its client does."""
        ...

    async def resume(self, lesson_id: str, producer_id: str) -> None:
        """Forward a paused producer again (its consumers wait for a keyframe)."""
        ...

    async def set_video_view(
        self, lesson_id: str, participant_id: str, publishers: frozenset[str] | None
    ) -> None: ...

    async def set_data_saver(self, lesson_id: str, participant_id: str, on: bool) -> bool:
        """Audio only for this subscriber (or back). ``True`` when a subscribe transport exists
        and will report its downlink as an event; ``False`` when the caller must say so."""
        ...

    async def downlink(self, lesson_id: str, participant_id: str) -> dict[str, Any]: ...

    async def stats(self, lesson_id: str, participant_id: str) -> dict[str, Any]: ...

    async def close_participant(self, lesson_id: str, participant_id: str) -> list[ProducerInfo]:
        """Close both of a participant's transports: the producers that ended."""
        ...

    async def close_lesson(self, lesson_id: str) -> None: ...

    def events(self) -> AsyncIterator[MediaEvent]:
        """What the media plane reports, in order (one reader)."""
        ...


class LocalMedia:
    """The ``MediaPort`` of a ``MediaService`` running in this process."""

    def __init__(self, service: MediaService, *, max_pending: int = MAX_PENDING_EVENTS) -> None:
        if service.on_downlink is not None:
            raise ValueError("this media service already reports to someone else")
        self.service = service
        self._events: asyncio.Queue[MediaEvent] = asyncio.Queue(max_pending)
        self.dropped_events = 0
        service.on_downlink = self._emit

    def _emit(self, event: MediaEvent) -> None:
        if self._events.full():
            self._events.get_nowait()  # the oldest goes: a newer report supersedes it
            self.dropped_events += 1
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[MediaEvent]:
        while True:
            yield await self._events.get()

    async def publish(
        self, lesson_id: str, participant_id: str, offer_sdp: str, *, priority: int | None = None
    ) -> tuple[str, list[ProducerInfo]]:
        if priority is not None:
            self.service.set_priority(lesson_id, participant_id, priority)
        return await self.service.publish(lesson_id, participant_id, offer_sdp)

    async def producers(self, lesson_id: str) -> list[ProducerInfo]:
        return self.service.producers(lesson_id)

    async def subscribe(
        self, lesson_id: str, participant_id: str, producer_ids: list[str]
    ) -> Offer | None:
        return await self.service.subscribe(lesson_id, participant_id, producer_ids)

    async def accept_answer(self, lesson_id: str, participant_id: str, answer_sdp: str) -> int:
        return await self.service.accept_answer(lesson_id, participant_id, answer_sdp)

    async def add_candidate(
        self, lesson_id: str, participant_id: str, direction: str, candidate: dict[str, Any] | None
    ) -> bool:
        return await self.service.add_candidate(lesson_id, participant_id, direction, candidate)

    async def pause(self, lesson_id: str, producer_id: str) -> None:
        self.service.set_producer_paused(lesson_id, producer_id, True)

    async def resume(self, lesson_id: str, producer_id: str) -> None:
        self.service.set_producer_paused(lesson_id, producer_id, False)

    async def set_video_view(
        self, lesson_id: str, participant_id: str, publishers: frozenset[str] | None
    ) -> None:
        self.service.set_video_view(lesson_id, participant_id, publishers)

    async def set_data_saver(self, lesson_id: str, participant_id: str, on: bool) -> bool:
        return self.service.set_data_saver(lesson_id, participant_id, on)

    async def downlink(self, lesson_id: str, participant_id: str) -> dict[str, Any]:
        return self.service.downlink(lesson_id, participant_id)

    async def stats(self, lesson_id: str, participant_id: str) -> dict[str, Any]:
        return self.service.stats(lesson_id, participant_id)

    async def close_participant(self, lesson_id: str, participant_id: str) -> list[ProducerInfo]:
        return await self.service.close_participant(lesson_id, participant_id)

    async def close_lesson(self, lesson_id: str) -> None:
        await self.service.close_lesson(lesson_id)
