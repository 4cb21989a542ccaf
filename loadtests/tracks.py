"""Tracks that hand aiortc pre-encoded packets of the looped clip, paced in real time.

aiortc's ``RTCRtpSender`` checks what ``recv()`` returns: an ``av.Frame`` is encoded, anything
else (an ``av.Packet``) goes to the negotiated encoder's ``pack()``, which only packetizes it
(``Vp8Encoder.pack`` adds the VP8 payload descriptor and splits the frame; ``OpusEncoder.pack``
sends it as is) and converts ``pts``/``time_base`` to the RTP clock (aiortc 1.16,
``rtcrtpsender.RTCRtpSender._next_encoded_frame`` and ``codecs/vpx.py``, ``codecs/opus.py``).
So the teacher costs no encoding at all.
"""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from loadtests.clip import Clip

__all__ = ["ClipAudioTrack", "ClipVideoTrack"]

# A sender that falls this far behind its schedule (an overloaded load generator) skips ahead
# instead of bursting to catch up.
_MAX_LAG = 0.5


class _PacedTrack(MediaStreamTrack):
    def __init__(self, interval: float, ticks: int, clock_rate: int) -> None:
        super().__init__()
        self._interval = interval
        self._ticks = ticks
        self._time_base = Fraction(1, clock_rate)
        self._start: float | None = None
        self.sent = 0
        self.resyncs = 0

    async def _pace(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        delay = self._start + self.sent * self._interval - now
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -_MAX_LAG:
            self._start = now - self.sent * self._interval
            self.resyncs += 1
        index = self.sent
        self.sent += 1
        return index

    def _packet(self, data: bytes, index: int) -> av.Packet:
        packet = av.Packet(data)
        packet.pts = index * self._ticks
        packet.time_base = self._time_base
        return packet


class ClipVideoTrack(_PacedTrack):
    """VP8 frames of the clip at its frame rate; a keyframe request makes the next one intra."""

    kind = "video"

    def __init__(self, clip: Clip) -> None:
        super().__init__(1 / clip.params.fps, 90_000 // clip.params.fps, 90_000)
        self._clip = clip
        self._keyframe_wanted = False
        self.keyframe_requests = 0

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet:  # type: ignore[override]
        index = await self._pace()
        position = index % len(self._clip.video)
        if self._keyframe_wanted:
            self._keyframe_wanted = False
            data = self._clip.intra[position]
        else:
            data = self._clip.video[position]
        return self._packet(data, index)


class ClipAudioTrack(_PacedTrack):
    """Opus packets of the clip, one per 20 ms."""

    kind = "audio"

    def __init__(self, clip: Clip) -> None:
        super().__init__(0.02, 960, 48_000)
        self._clip = clip

    async def recv(self) -> av.Packet:  # type: ignore[override]
        index = await self._pace()
        return self._packet(self._clip.audio[index % len(self._clip.audio)], index)
