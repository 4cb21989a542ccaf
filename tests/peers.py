"""Real aiortc peers for tests: a publisher with a solid-colour camera and a tone, and a
subscriber that decodes what it receives. Pinned to loopback (no STUN, host candidates on
127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from typing import Any

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av import AudioFrame, VideoFrame

from media import _aiortc

_aiortc.set_host_addresses(["127.0.0.1"])

VIDEO_CLOCK = 90000


def loopback_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


class ColourTrack(MediaStreamTrack):
    """A camera that films one solid colour (RGB), 320×240 at 15 fps."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int], width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.rgb = rgb
        self.width = width
        self.height = height
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.time()
        self._pts += VIDEO_CLOCK // 15
        wait = self._start + self._pts / VIDEO_CLOCK - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        array = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        array[:, :] = self.rgb
        frame = VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class ToneTrack(MediaStreamTrack):
    """A microphone hearing a 440 Hz tone (48 kHz mono, 20 ms frames)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.time()
        n = 960
        wait = self._start + self._samples / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(n) + self._samples) / 48000
        samples = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, 48000)
        self._samples += n
        return frame


class Receiver:
    """Collects decoded frames of every track a peer connection receives."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.video_frames: list[VideoFrame] = []
        self.audio_frames: int = 0
        self.tracks: list[MediaStreamTrack] = []
        self.frames_of: dict[MediaStreamTrack, int] = {}
        self.last_frame_of: dict[MediaStreamTrack, VideoFrame] = {}
        self._tasks: list[asyncio.Task[None]] = []
        pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.tracks.append(track)
        self._tasks.append(asyncio.ensure_future(self._drain(track)))

    async def _drain(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames_of[track] = self.frames_of.get(track, 0) + 1
                if track.kind == "video":
                    assert isinstance(frame, VideoFrame)
                    self.last_frame_of[track] = frame
                    self.video_frames.append(frame)
                    if len(self.video_frames) > 50:
                        del self.video_frames[:25]
                else:
                    self.audio_frames += 1
        except Exception:
            return

    def mean_rgb(self) -> tuple[int, int, int] | None:
        if not self.video_frames:
            return None
        return _mean_rgb(self.video_frames[-1])

    def video_track_showing(self, rgb: tuple[int, int, int]) -> MediaStreamTrack | None:
        """The received video track whose latest frame has (about) this colour."""
        for track, frame in self.last_frame_of.items():
            if close_to(_mean_rgb(frame), rgb):
                return track
        return None

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()


def _mean_rgb(frame: VideoFrame) -> tuple[int, int, int]:
    m = frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)
    return int(m[0]), int(m[1]), int(m[2])


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return bool(predicate())


def close_to(rgb: tuple[int, int, int] | None, want: tuple[int, int, int], tol: int = 40) -> bool:
    return rgb is not None and all(abs(a - b) <= tol for a, b in zip(rgb, want, strict=True))


async def answer_offer(pc: RTCPeerConnection, sdp: str) -> str:
    await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp
