"""The clip tracks feed aiortc's packetizer (``pack``), never its encoder; the hooks exist."""

from __future__ import annotations

import asyncio
import inspect
from fractions import Fraction

import av
from aiortc import RTCDtlsTransport, RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from loadtests.stats import vp8_frame_info
from loadtests.tracks import ClipAudioTrack, ClipVideoTrack
from tests.loadtests.test_clip import fake_clip


async def test_video_track_loops_with_increasing_pts(monkeypatch: object) -> None:
    clip = fake_clip()
    track = ClipVideoTrack(clip)
    track._interval = 0  # no pacing in a unit test
    packets = [await track.recv() for _ in range(25)]
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [p.pts for p in packets[:3]] == [0, 9000, 18000]  # 10 fps on a 90 kHz clock
    assert packets[0].time_base == Fraction(1, 90_000)
    assert bytes(packets[0]) == clip.video[0]
    assert bytes(packets[10]) == clip.video[0]  # looped
    track.request_keyframe()
    assert bytes(await track.recv()) == clip.intra[25 % 10]
    assert bytes(await track.recv()) == clip.video[26 % 10]
    assert track.keyframe_requests == 1
    track.stop()


async def test_audio_track() -> None:
    clip = fake_clip()
    track = ClipAudioTrack(clip)
    track._interval = 0
    packets = [await track.recv() for _ in range(3)]
    assert [p.pts for p in packets] == [0, 960, 1920]
    assert packets[0].time_base == Fraction(1, 48_000)
    assert bytes(packets[1]) == clip.audio[1]


async def test_aiortc_packs_pre_encoded_packets_without_encoding() -> None:
    """aiortc 1.16: a non-Frame from ``recv()`` goes to ``encoder.pack()`` (rtcrtpsender)."""
    source = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "self.__encoder.pack(data)" in source
    from loadtests.clip import encode_clip
    from tests.loadtests.test_clip import SMALL

    clip = encode_clip(SMALL)
    track = ClipVideoTrack(clip)
    track._interval = 0
    encoder = get_encoder(
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90_000, payloadType=96)
    )
    payloads, timestamp = encoder.pack(await track.recv())
    assert timestamp == 0
    assert vp8_frame_info(payloads[0]) == (True, True)
    payloads, timestamp = encoder.pack(await track.recv())
    assert timestamp == 9000
    assert vp8_frame_info(payloads[0]) == (True, False)
    opus = get_encoder(
        RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48_000, channels=2, payloadType=111)
    )
    audio = ClipAudioTrack(clip)
    audio._interval = 0
    await audio.recv()
    payloads, timestamp = opus.pack(await audio.recv())
    assert (payloads, timestamp) == ([clip.audio[1]], 960)
    track.stop()
    audio.stop()
    await asyncio.sleep(0)


def test_hooked_private_attributes_exist() -> None:
    """The two private names ``loadtests/hooks.py`` relies on (aiortc 1.16.0)."""
    assert inspect.iscoroutinefunction(RTCDtlsTransport._send_rtp)
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "await self.transport._send_rtp(packet_bytes)" in inspect.getsource(
        RTCRtpSender._run_rtp
    )
