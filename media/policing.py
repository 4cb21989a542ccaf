"""Policing a publisher: nothing above a multiple of what its stream was negotiated to carry.

Every packet a publisher sends is forwarded to each of its subscribers, so one publisher that
sends ten times its rate — a broken or hostile client — multiplies the load of the whole node
by as much. A :class:`Policer` per producer admits packets while two token buckets hold: bytes
at ``FACTOR`` × the stream's negotiated bit rate, and packets at ``FACTOR`` × the packet rate
such a stream needs, each with one second of burst (a keyframe of a full-rate camera fits in
it). What it refuses is dropped before the history and the consumers, and counted
(``lophoc_rtp_policed_packets_total``, ``…_policed_bytes_total``): an honest stream never
meets it, a flood is cut to a bounded trickle. The negotiated rates are the video cap the
server announces to publishers (REMB, ``MediaSettings.max_video_bitrate``) and, for audio,
:data:`AUDIO_BITRATE` (Opus at its highest with RED's redundancy).
"""

from __future__ import annotations

from typing import Final

FACTOR: Final = 3.0
"""How far above its negotiated rate a stream may go before it is policed."""
AUDIO_BITRATE: Final = 256_000
"""An audio stream's negotiated ceiling: Opus stereo at full band with RED (RFC 2198)."""
AUDIO_PACKET_RATE: Final = 100
"""Opus packets per second at its shortest usual frame (10 ms)."""
VIDEO_PACKET_BYTES: Final = 600
"""A small video packet: a stream at the cap sends at most cap / this many packets a second."""


class Policer:
    """Two token buckets (bytes, packets) refilled at ``FACTOR`` × the negotiated rates."""

    __slots__ = ("_bytes", "_last", "_packets", "byte_rate", "packet_rate")

    def __init__(self, bitrate: int, packet_rate: float) -> None:
        if bitrate <= 0 or packet_rate <= 0:
            raise ValueError("a policed stream needs a positive bit rate and packet rate")
        self.byte_rate = FACTOR * bitrate / 8
        self.packet_rate = FACTOR * packet_rate
        self._bytes = self.byte_rate  # one second of burst
        self._packets = self.packet_rate
        self._last: float | None = None

    @classmethod
    def for_stream(cls, kind: str, max_video_bitrate: int) -> Policer:
        if kind == "audio":
            return cls(AUDIO_BITRATE, AUDIO_PACKET_RATE)
        return cls(max_video_bitrate, max_video_bitrate / 8 / VIDEO_PACKET_BYTES)

    def admit(self, size: int, now: float) -> bool:
        last = self._last
        if last is not None and now > last:
            elapsed = now - last
            self._bytes = min(self.byte_rate, self._bytes + elapsed * self.byte_rate)
            self._packets = min(self.packet_rate, self._packets + elapsed * self.packet_rate)
        self._last = now
        if self._bytes < size or self._packets < 1.0:
            return False
        self._bytes -= size
        self._packets -= 1.0
        return True
