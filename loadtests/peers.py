"""Synthetic participants: a teacher who publishes the clip, students who receive without decoding.

Every peer connection is created with ``RTCConfiguration(iceServers=[])`` and, process-wide,
``media._aiortc.set_host_addresses(["127.0.0.1"])`` (done by the runner first): nothing but
loopback is ever gathered or contacted.

The per-packet work of a student is one synchronous callback per received RTP packet
(``media._aiortc.tap_receiver_rtp``): count, extend the sequence number, check frame completeness
until the first complete keyframe, and during the measured window look up the payload's send
time. No decoding, no depacketizing, no tasks, no logging.

Like a browser, every subscriber accepts the transport-wide congestion control the server offers
and sends transport-wide feedback (``loadtests.twcc``; ``RunContext.transport_cc``): its answer
echoes the extension, each received SRTP datagram goes to a ``FeedbackRecorder`` as it comes off
the socket (``media._aiortc.hook_datagrams``; the header is in clear, and aiortc's parsed packet
would have lost the extension), and one task per connection sends the feedback every 50–100 ms
(``media._aiortc.send_rtcp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from loadtests.clip import Clip
from loadtests.hooks import on_keyframe_request, tap_sent_rtp
from loadtests.signaling import Signaling, SignalingError
from loadtests.stats import FrameAssembler, SendLog, SeqTracker, rtp_payload
from loadtests.tracks import ClipAudioTrack, ClipVideoTrack
from loadtests.twcc import FEEDBACK_INTERVAL, FeedbackRecorder, accept_transport_cc
from media._aiortc import (
    DatagramHandler,
    dtls_transport_of,
    hook_datagrams,
    send_rtcp,
    tap_receiver_rtp,
)

__all__ = ["RunContext", "StreamCounter", "Student", "Teacher"]

_MAX_LATENCY_SAMPLES = 2_000_000


@dataclass
class RunContext:
    """What the teacher and every student share."""

    ws_url: str
    origin: str
    send_log: SendLog = field(default_factory=SendLog)
    measuring: bool = False
    latencies: array[float] = field(default_factory=lambda: array("d"))
    trickle: bool = False
    transport_cc: bool = True
    """Subscribers accept transport-wide cc and send its feedback (as browsers do)."""

    def add_latency(self, seconds: float) -> None:
        if len(self.latencies) < _MAX_LATENCY_SAMPLES:
            self.latencies.append(seconds)


@dataclass
class StreamCounter:
    """Counters of one received stream (one consumer)."""

    kind: str
    rtx_payload_types: frozenset[int] = frozenset()
    seq: SeqTracker = field(default_factory=SeqTracker)
    bytes: int = 0
    frames: int = 0
    rtx: int = 0


def _new_pc(bundle: RTCBundlePolicy = RTCBundlePolicy.BALANCED) -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=bundle))


def _rtx_payload_types(sdp: str) -> dict[str, frozenset[int]]:
    """Per ``mid``: the payload types that are retransmissions (not counted as media)."""
    result: dict[str, frozenset[int]] = {}
    for media in SessionDescription.parse(sdp).media:
        mid = media.rtp.muxId
        if mid is None:
            continue
        result[mid] = frozenset(
            c.payloadType
            for c in media.rtp.codecs
            if c.payloadType is not None and c.mimeType.lower().endswith("/rtx")
        )
    return result


async def _trickle(sig: Signaling, pc: RTCPeerConnection, which: str) -> None:
    """Send the candidates aiortc put in the SDP as ``ice`` requests, then the end marker."""
    description = pc.localDescription
    if description is None:
        return
    for index, media in enumerate(SessionDescription.parse(description.sdp).media):
        for candidate in media.ice_candidates:
            from aiortc.sdp import candidate_to_sdp

            await sig.request(
                "ice",
                pc=which,
                candidate={
                    "candidate": "candidate:" + candidate_to_sdp(candidate),
                    "sdpMid": media.rtp.muxId,
                    "sdpMLineIndex": index,
                },
            )
        break  # max-bundle: the first m-line's candidates are the transport's
    await sig.request("ice", pc=which, candidate=None)


async def _wait_connected(pc: RTCPeerConnection, within: float) -> bool:
    deadline = time.monotonic() + within
    for _ in range(int(within / 0.05) + 1):
        if time.monotonic() >= deadline:
            break
        if pc.connectionState == "connected":
            return True
        if pc.connectionState in ("failed", "closed"):
            return False
        await asyncio.sleep(0.05)
    return False


class _Subscriber:
    """The subscribe peer connection of one participant: answers the server's offers."""

    def __init__(self, ctx: RunContext, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self.pc = _new_pc()
        self.sig: Signaling | None = None
        self.streams: dict[str, StreamCounter] = {}
        self.errors: list[str] = []
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._offer_task: asyncio.Task[None] | None = None
        self.answered = asyncio.Event()
        self.twcc: FeedbackRecorder | None = None
        self._feedback_task: asyncio.Task[None] | None = None
        self.feedback_sent = 0

    def _on_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "offer":
            self._offers.put_nowait(data)

    async def _subscribe(self) -> None:
        assert self.sig is not None
        data = await self.sig.request("subscribe")
        await self._apply_offer(data)
        self._offer_task = asyncio.create_task(self._follow_offers())

    async def _follow_offers(self) -> None:
        while True:
            data = await self._offers.get()
            try:
                await self._apply_offer(data)
            except (SignalingError, ValueError) as exc:
                self.errors.append(f"renegotiation: {exc}")

    async def _apply_offer(self, data: dict[str, Any]) -> None:
        assert self.sig is not None
        sdp = data.get("sdp")
        if sdp is None:
            # nothing to receive yet (the server says so with "sdp": null); offers follow as events
            return
        if not isinstance(sdp, str):
            raise ValueError("offer with a non-string sdp")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        rtx = _rtx_payload_types(sdp)
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid
            if mid is None or mid in self.streams:
                continue
            stream = StreamCounter(
                kind=transceiver.kind, rtx_payload_types=rtx.get(mid, frozenset())
            )
            self.streams[mid] = stream
            self._tap(transceiver, stream)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        assert self.pc.localDescription is not None
        answer_sdp = self.pc.localDescription.sdp
        if self.ctx.transport_cc:
            answer_sdp, ext_id = accept_transport_cc(sdp, answer_sdp)
            if ext_id is not None and self.twcc is None:
                self._start_feedback(ext_id)
        await self.sig.request("answer", sdp=answer_sdp, version=data.get("version"))
        if self.ctx.trickle and not self.answered.is_set():
            await _trickle(self.sig, self.pc, "subscribe")
        self.answered.set()

    def _start_feedback(self, ext_id: int) -> None:
        """Record every packet's transport-wide sequence number and send feedback. Runs after
        ``setLocalDescription`` (candidates gathered, sockets exist) and before the answer is
        sent, so no media has arrived yet."""
        recorder = FeedbackRecorder(ext_id, random.getrandbits(32))
        self.twcc = recorder
        dtls = dtls_transport_of(self.pc)
        on_rtp = recorder.on_rtp

        def wrap(original: DatagramHandler) -> DatagramHandler:
            # SRTP leaves the RTP header and its extensions in clear (RFC 3711 §3.1), so the
            # number is read, and the arrival stamped, as the datagram comes off the socket —
            # where a browser's network thread stamps it — ahead of aiortc's queue, DTLS task
            # and SRTP check, whose delays belong to the load generator, not the link.
            def handle(data: bytes, addr: tuple[str, int]) -> None:
                if len(data) > 12 and 127 < data[0] < 192 and not 191 < data[1] < 224:
                    on_rtp(data)
                original(data, addr)

            return handle

        hook_datagrams(dtls, wrap)

        async def send_feedback() -> None:
            low, high = FEEDBACK_INTERVAL
            while True:
                await asyncio.sleep(random.uniform(low, high))
                packet = recorder.feedback()
                if packet is None:
                    continue
                try:
                    await send_rtcp(dtls, packet)
                except ConnectionError:
                    continue  # not (or no longer) connected
                self.feedback_sent += 1

        self._feedback_task = asyncio.create_task(send_feedback())

    def _tap(self, transceiver: RTCRtpTransceiver, stream: StreamCounter) -> None:
        def count(packet: RtpPacket, _arrival_ms: int) -> None:
            if packet.payload_type in stream.rtx_payload_types:
                stream.rtx += 1
                return
            stream.seq.add(packet.sequence_number)
            stream.bytes += len(packet.payload)

        tap_receiver_rtp(transceiver.receiver, count)

    async def close(self) -> None:
        for task in (self._offer_task, self._feedback_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.sig is not None:
            with contextlib.suppress(SignalingError):
                await self.sig.request("leave", within=3)
            await self.sig.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 10)


class Student(_Subscriber):
    def __init__(self, ctx: RunContext, index: int, code: str, password: str) -> None:
        super().__init__(ctx, f"Học sinh {index:03d}")
        self.index = index
        self.code = code
        self.password = password
        self.opened_at: float | None = None
        self.first_frame_at: float | None = None
        self.first_keyframe_at: float | None = None
        self.error: str | None = None
        self.joined = False
        self.participant_id: str | None = None

    @property
    def join_ms(self) -> float | None:
        if self.opened_at is None or self.first_frame_at is None:
            return None
        return (self.first_frame_at - self.opened_at) * 1000

    @property
    def keyframe_ms(self) -> float | None:
        if self.opened_at is None or self.first_keyframe_at is None:
            return None
        return (self.first_keyframe_at - self.opened_at) * 1000

    async def join(self) -> None:
        """Open the socket, join, subscribe and answer. Media then flows on its own."""
        self.opened_at = time.perf_counter()
        try:
            self.sig = await Signaling.open(self.ctx.ws_url, self.ctx.origin, self._on_event)
            joined = await self.sig.request(
                "join", code=self.code, password=self.password, name=self.name
            )
            me = joined.get("participant")
            if isinstance(me, dict) and isinstance(me.get("id"), str):
                self.participant_id = me["id"]
            self.joined = True
            await self._subscribe()
        except SignalingError as exc:
            self.error = exc.code
        except (OSError, TimeoutError) as exc:
            self.error = type(exc).__name__
        except Exception as exc:  # a benchmark reports failures, it does not stop at them
            self.error = f"{type(exc).__name__}: {exc}"

    def _tap(self, transceiver: RTCRtpTransceiver, stream: StreamCounter) -> None:
        ctx = self.ctx
        send_log = ctx.send_log
        seq = stream.seq
        rtx = stream.rtx_payload_types
        now = time.perf_counter

        if stream.kind != "video":

            def count_audio(packet: RtpPacket, _arrival_ms: int) -> None:
                if packet.payload_type in rtx:
                    stream.rtx += 1
                    return
                seq.add(packet.sequence_number)
                payload = packet.payload
                stream.bytes += len(payload)
                if ctx.measuring:
                    sent = send_log.lookup(payload)
                    if sent is not None:
                        ctx.add_latency(now() - sent)

            tap_receiver_rtp(transceiver.receiver, count_audio)
            return

        assembler = FrameAssembler()

        def count_video(packet: RtpPacket, _arrival_ms: int) -> None:
            if packet.payload_type in rtx:
                stream.rtx += 1
                return
            ext = seq.add(packet.sequence_number)
            payload = packet.payload
            stream.bytes += len(payload)
            if packet.marker:
                stream.frames += 1
            if self.first_keyframe_at is None:
                frame = assembler.add(ext, bool(packet.marker), payload)
                if frame is not None and frame[0]:
                    arrived = now()
                    if self.first_frame_at is None:
                        self.first_frame_at = arrived
                    if frame[1]:
                        self.first_keyframe_at = arrived
            if ctx.measuring:
                sent = send_log.lookup(payload)
                if sent is not None:
                    ctx.add_latency(now() - sent)

        tap_receiver_rtp(transceiver.receiver, count_video)

    def video(self) -> StreamCounter | None:
        for stream in self.streams.values():
            if stream.kind == "video":
                return stream
        return None


class Teacher(_Subscriber):
    """Joins with the token and publishes the clip; subscribes too (per protocol), ignores it."""

    def __init__(self, ctx: RunContext, token: str, clip: Clip) -> None:
        super().__init__(ctx, "teacher")
        self.token = token
        # one transport for both tracks, as browsers end up with after BUNDLE
        self.publish_pc = _new_pc(RTCBundlePolicy.MAX_BUNDLE)
        self.video_track = ClipVideoTrack(clip)
        self.audio_track = ClipAudioTrack(clip)
        self.sent_packets = 0
        self.producers: list[dict[str, Any]] = []

    def _on_sent(self, data: bytes) -> None:
        payload = rtp_payload(data)
        if payload is None:
            return
        self.sent_packets += 1
        self.ctx.send_log.record(payload, time.perf_counter())

    async def start(self, within: float = 20.0) -> None:
        """Join, publish and wait until the publish connection is up. Raises on failure."""
        self.sig = await Signaling.open(self.ctx.ws_url, self.ctx.origin, self._on_event)
        await self.sig.request("join", token=self.token)
        pc = self.publish_pc
        audio = pc.addTransceiver(self.audio_track, direction="sendonly")
        video = pc.addTransceiver(self.video_track, direction="sendonly")
        # The clip is VP8 and Opus: offer nothing else, so the sender's packetizer matches it.
        audio.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/opus"]
        )
        video.setCodecPreferences(
            [
                c
                for c in RTCRtpSender.getCapabilities("video").codecs
                if c.mimeType in ("video/VP8", "video/rtx")
            ]
        )
        on_keyframe_request(video.sender, self.video_track.request_keyframe)
        await pc.setLocalDescription(await pc.createOffer())
        assert pc.localDescription is not None
        data = await self.sig.request("publish", sdp=pc.localDescription.sdp)
        self.producers = list(data.get("producers") or [])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="answer"))
        # Senders start only once DTLS is up (a task started by setRemoteDescription), so
        # tapping now sees every RTP packet.
        for dtls in {id(t.sender.transport): t.sender.transport for t in (audio, video)}.values():
            tap_sent_rtp(dtls, self._on_sent)
        if self.ctx.trickle:
            await _trickle(self.sig, pc, "publish")
        if not await _wait_connected(pc, within):
            raise RuntimeError(f"publish connection did not connect ({pc.connectionState})")

    async def downlink(self, participant: str) -> dict[str, Any]:
        """The server's view of a participant's downlink (staff ``stats``): ``estimate`` (bit/s),
        ``source``, ``state`` (``ok``/``weak``/``audio_only``), ``rtt``, ``loss``; ``error``
        instead when the request failed."""
        assert self.sig is not None
        try:
            data = await self.sig.request("stats", participant=participant, within=5)
        except SignalingError as exc:
            return {"error": exc.code}
        return {k: data.get(k) for k in ("estimate", "source", "state", "rtt", "loss")}

    async def subscribe(self) -> None:
        try:
            await self._subscribe()
        except (SignalingError, ValueError) as exc:
            self.errors.append(f"teacher subscribe: {exc}")

    async def close(self) -> None:
        self.video_track.stop()
        self.audio_track.stop()
        await super().close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.publish_pc.close(), 10)
