"""Transports: one aiortc peer connection per participant and direction, tapped below the codec.

**Peer-connection model: two per participant.** A *publish* connection carries the
participant's own microphone and camera to the server (the client offers, the server answers)
and a *subscribe* connection carries everything the participant receives (the server offers,
the client answers). This is the usual SFU choice (mediasoup's send/recv transports, LiveKit's
publisher/subscriber): each side of each connection has one offerer, so there is never offer
glare; adding a student's camera renegotiates only the subscribers' connections, never the
publisher's; and a phone that only listens never opens a publish connection at all.

**Below the codec.** aiortc would decode every incoming track and encode every outgoing one —
a transcoder that collapses at a handful of students. Here aiortc keeps ICE, DTLS and SRTP and
nothing else: each socket's datagram callback is replaced (``media._aiortc.hook_datagrams``) by
``Transport._datagram``, which handles SRTP and SRTCP synchronously — unprotect, then
``Producer.receive`` on the publish side or the feedback handlers on the subscribe side — and
passes only STUN and DTLS on to aioice/aiortc. Outgoing RTP is protected with the DTLS
transport's SRTP session and written straight to the selected pair's socket. aiortc's own RTP and
RTCP loops on the subscribe side are silenced (``mute_sender``); the SFU sends its own sender
reports, and on the publish side its own receiver reports, NACKs and keyframe requests.

**Retransmission (RFC 4588).** Video is negotiated with ``rtx`` both ways. Toward a
subscriber that keeps it, NACKed packets are resent on the consumer's RTX stream (its own SSRC
from aiortc's ``a=ssrc-group:FID``) through the same paced path, and probes pad there;
receiver-report blocks about an RTX stream are not read as the downlink's loss, and sender
reports are sent for the media SSRCs only. From a publisher, packets on the RTX SSRC its offer
paired with its media SSRC are unwrapped and taken as late originals (``Producer.receive_rtx``);
the SFU's NACKs and receiver reports keep naming the media SSRC (RFC 4588 §6.3).

**Who may talk to us.** Datagrams are checked against the ICE settings: STUN only from the
accepted networks, DTLS and SRTP only from the selected pair's address once ICE has chosen one
(a DTLS or SRTP packet from an address ICE never validated changes nothing), and the selected
pair itself must lie in the accepted networks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.sdp import SessionDescription, candidate_from_sdp

from . import _aiortc
from .allocation import Allocation, Allocator, Track
from .bwe import HISTORY_MASK, DownlinkEstimator, probe_cluster_bytes
from .extensions import answered_transport_cc, offer_transport_cc
from .feedback import reflected_fraction_lost
from .ice import IceSettings
from .pacer import Pacer
from .policing import Policer
from .red import RedSink, RedSource
from .router import COUNTERS, WIRE_OVERHEAD, Codec, Consumer, Producer, RtxStream, trace
from .rtp import (
    HEADER,
    ReportBlock,
    build_nack,
    build_pli,
    build_receiver_report,
    build_remb,
    build_sender_report,
    parse_rtcp,
)

logger = logging.getLogger(__name__)

RED_PAYLOAD_TYPE = 63
"""The payload type of ``red/48000/2`` in the server's offers (Chromium's and Safari's number;
aiortc's own codecs use 0, 8, 9 and 96 and up, so it never collides)."""
RTCP_INTERVAL = 1.0
"""Seconds between the SFU's own RTCP reports (RFC 3550 §6.2 allows this for small sessions)."""
NTP_EPOCH_OFFSET = 2208988800
END_OF_CANDIDATES_PATIENCE = 39.5
"""Seconds between a client's end of candidates and telling aioice (RFC 8863's ICE PAC timer).

A browser page without camera or microphone permission hides its host candidates behind mDNS
names, which the server drops: the client's trickled candidates are then nothing but the
end-of-candidates marker, which can arrive (over the WebSocket) before the browser's first
connectivity check (over UDP, which Wi-Fi may lose or delay). aioice, told the end while it
knows no remote candidate, fails ICE at once and drops the component, so the peer-reflexive
candidate that check would have taught it is never used. Waiting the patience RFC 8863 asks for
keeps ICE open for those checks; a transport still unconnected then gets the end, and fails as
before."""


EXT_HEADER = struct.Struct("!BBHIIHHI")
"""An RTP header with one 4-byte RFC 8285 one-byte-header extension block: V/P/X/CC, M/PT,
sequence number, timestamp, SSRC, 0xBEDE, length 1, and one element (id, length, value, pad)."""
MAX_RETRANSMIT_DELAY = 0.25
"""A retransmission that would wait longer than this in the pacer's queue is not sent: the
subscriber will have given up on the packet by then."""
MIN_TIMER = 0.001
DRAIN_PERIOD = 0.004
"""Seconds at least between two passes of the pacers' shared drain timer."""
PADDING = bytes(254) + b"\xff"
"""The payload of a padding-only packet (RFC 3550 §5.1: the last byte counts the padding)."""
PADDING_WIRE = WIRE_OVERHEAD + len(PADDING)
REMB_CONGESTION = 0.7
"""A REMB below this share of the video payload the server sends is a congestion signal."""
PROBE_QUEUE_BUDGET = 0.1
"""Seconds of queue a probe may add at a link that carries just the estimate: a probe that
fails delays the subscriber's audio by at most about this."""
PROBE_MIN_PACKETS = 8
DEFAULT_RTT = 0.1
"""Seconds of round trip assumed until the consent checks have measured one."""
NACK_TICK = 0.025
"""Seconds between the publish side's passes over its producers' missing packets, while any
are tracked (``media.feedback.NackTracker``)."""
NACK_BATCH = 100
"""Sequence numbers per NACK packet at most (about 400 bytes of FCI)."""


class MediaError(Exception):
    """A media request that cannot be honoured; ``code`` is a stable signaling error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ntp_now(now: float) -> int:
    return int((now + NTP_EPOCH_OFFSET) * (1 << 32))


class Transport:
    """What both directions share: the peer connection, the datagram tap and SRTP sending."""

    direction = ""

    def __init__(
        self,
        *,
        transport_id: str,
        participant_id: str,
        ice: IceSettings,
        on_state: Callable[[Transport, str], None] | None = None,
    ) -> None:
        self.id = transport_id
        self.participant_id = participant_id
        self.ice = ice
        self.pc = RTCPeerConnection(ice.rtc_configuration())
        self.rtcp_ssrc = secrets.randbits(32) or 1
        self.closed = False
        self.connected = False
        self.candidates_added = 0
        self.candidates_offered = 0  # trickled, accepted or not
        self._on_state = on_state
        self._dtls: Any = None
        self._rx: Any = None
        self._tx: Any = None
        self._sendto: Callable[[bytes, Any], None] | None = None
        self._peer: tuple[str, int] | None = None
        self._tick: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._end_of_candidates: asyncio.TimerHandle | None = None
        self._ending: asyncio.Future[None] | None = None
        self.rtt = DEFAULT_RTT
        self._rtt_samples = 0
        self.pc.on("connectionstatechange", self._on_connection_state)

    @staticmethod
    def now() -> float:
        return time.time()

    # -- set-up ------------------------------------------------------------------------------

    def _attach(self) -> None:
        """Hook the sockets once gathering has created them (after setLocalDescription)."""
        if self._dtls is None:
            self._dtls = _aiortc.dtls_transport_of(self.pc)
            self._dtls.on("statechange", self._on_dtls_state)
            # RFC 7675 consent freshness: a phone with a 1.5 s round trip stays connected,
            # and every check measures the round trip.
            _aiortc.keep_consent(self._dtls, on_rtt=self.observe_rtt)
        _aiortc.hook_datagrams(self._dtls, self._wrap)

    def _wrap(self, original: _aiortc.DatagramHandler) -> _aiortc.DatagramHandler:
        accepts = self.ice.accepts

        def datagram_received(data: bytes, addr: Any) -> None:
            if not data:
                return
            b = data[0]
            if 127 < b < 192:
                peer = self._peer
                if self._rx is None or peer is None or addr[0] != peer[0] or addr[1] != peer[1]:
                    COUNTERS.dropped_unvalidated += 1
                    return
                self._srtp(data)
            elif b < 2:  # STUN (RFC 7983 §7)
                if accepts(addr[0]):
                    original(data, addr)
                else:
                    COUNTERS.dropped_unvalidated += 1
            elif 19 < b < 64:  # DTLS: from the selected pair once there is one
                peer = self._peer
                if (peer is None and accepts(addr[0])) or (
                    peer is not None and addr[0] == peer[0] and addr[1] == peer[1]
                ):
                    original(data, addr)
                else:
                    COUNTERS.dropped_unvalidated += 1
            else:
                COUNTERS.dropped_malformed += 1

        return datagram_received

    def _refresh_pair(self) -> None:
        selected = _aiortc.selected_pair(self._dtls) if self._dtls is not None else None
        if selected is None:
            return
        sendto, peer = selected
        peer = (peer[0], peer[1])
        if not self.ice.accepts(peer[0]):
            COUNTERS.refused_destinations += 1
            logger.warning("transport %s: selected pair outside accepted networks", self.id)
            self._sendto = None
            self._peer = None
            self._closing = asyncio.ensure_future(self.close())
            return
        self._sendto = sendto
        self._peer = peer

    def _on_dtls_state(self) -> None:
        state = self._dtls.state
        if state == "connected" and not self.connected:
            self._rx = _aiortc.rx_srtp(self._dtls)
            self._tx = _aiortc.tx_srtp(self._dtls)
            self._refresh_pair()
            if self._sendto is None:
                return
            self.connected = True
            self._tick = asyncio.ensure_future(self._run_rtcp())
            self._on_connected()
        elif state in ("closed", "failed"):
            self._down()

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            self._down()
        if self._on_state is not None:
            self._on_state(self, state)

    def _down(self) -> None:
        self.connected = False
        self._rx = None
        self._tx = None
        self._sendto = None

    def _on_connected(self) -> None:
        """Hook for subclasses: the transport can now send."""

    def observe_rtt(self, seconds: float) -> None:
        """One round-trip time measured by the consent checks (``_aiortc.keep_consent``'s
        ``on_rtt``), smoothed as RFC 6298 §2 smooths TCP's."""
        if self._rtt_samples == 0:
            self.rtt = seconds
        else:
            self.rtt += (seconds - self.rtt) / 8
        self._rtt_samples += 1

    async def add_candidate(self, candidate: dict[str, Any] | None) -> bool:
        """Add a trickled remote candidate; False when it is not one the server accepts."""
        if self.closed or self._dtls is None:
            raise MediaError("no_transport", "This connection has not been negotiated yet.")
        ice_transport = self._dtls.transport
        if candidate is None:
            if self._end_of_candidates is None:
                self._end_of_candidates = asyncio.get_running_loop().call_later(
                    END_OF_CANDIDATES_PATIENCE, self._patience_over
                )
            return True
        if self.candidates_offered >= self.ice.candidates_per_pc:
            raise MediaError(
                "too_many_candidates", "This connection has sent too many ICE candidates."
            )
        self.candidates_offered += 1
        line = str(candidate.get("candidate") or "")
        if line.startswith("a="):
            line = line[2:]
        if not line:
            return False
        if not self.ice.accepts_candidate_line(line):
            return False
        try:
            parsed = candidate_from_sdp(line.split(":", 1)[1])
        except (ValueError, IndexError) as exc:
            raise MediaError("bad_candidate", "The ICE candidate could not be read.") from exc
        parsed.sdpMid = self.pc.getTransceivers()[0].mid
        parsed.sdpMLineIndex = 0
        try:
            await ice_transport.addRemoteCandidate(parsed)
        except ValueError:
            return False
        self.candidates_added += 1
        return True

    def _patience_over(self) -> None:
        self._ending = asyncio.ensure_future(self._end_remote_candidates())

    async def _end_remote_candidates(self) -> None:
        """Tell aioice the client's candidates ended (after the patience), unless connected."""
        if self.closed or self.connected or self._dtls is None:
            return
        try:
            await self._dtls.transport.addRemoteCandidate(None)
        except ValueError:
            pass

    # -- sending -----------------------------------------------------------------------------

    def send_rtp(self, packet: bytes) -> bool:
        tx = self._tx
        sendto = self._sendto
        if tx is None or sendto is None:
            return False
        try:
            sendto(tx.protect(packet), self._peer)
        except (pylibsrtp.Error, OSError, AttributeError):
            return False
        COUNTERS.forwarded_packets += 1
        COUNTERS.forwarded_bytes += len(packet)
        return True

    def send_rtcp(self, packet: bytes) -> bool:
        tx = self._tx
        sendto = self._sendto
        if tx is None or sendto is None:
            return False
        try:
            sendto(tx.protect_rtcp(packet), self._peer)
        except (pylibsrtp.Error, OSError, AttributeError):
            return False
        return True

    # -- receiving ---------------------------------------------------------------------------

    def _srtp(self, data: bytes) -> None:
        rx = self._rx
        if len(data) >= 2 and 192 <= data[1] <= 223:
            try:
                plain = rx.unprotect_rtcp(data)
            except pylibsrtp.Error:
                COUNTERS.dropped_unprotect += 1
                return
            try:
                feedback = parse_rtcp(plain)
            except ValueError:
                COUNTERS.dropped_malformed += 1
                return
            self._on_rtcp(feedback)
        else:
            try:
                plain = rx.unprotect(data)
            except pylibsrtp.Error:
                COUNTERS.dropped_unprotect += 1
                return
            if len(plain) < 12:
                COUNTERS.dropped_malformed += 1
                return
            COUNTERS.received_packets += 1
            self._on_rtp(plain)

    def _on_rtp(self, data: bytes) -> None:
        COUNTERS.dropped_unknown_ssrc += 1

    def _on_rtcp(self, feedback: list[Any]) -> None:
        pass

    # -- periodic RTCP -----------------------------------------------------------------------

    async def _run_rtcp(self) -> None:
        try:
            while not self.closed:
                await asyncio.sleep(RTCP_INTERVAL * (0.75 + random.random() / 2))
                self._refresh_pair()
                try:
                    self._report(self.now())
                except Exception:  # a report must never take the transport down
                    logger.exception("transport %s: RTCP report failed", self.id)
        except asyncio.CancelledError:
            pass

    def _report(self, now: float) -> None:
        pass

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._down()
        if self._tick is not None:
            self._tick.cancel()
        if self._end_of_candidates is not None:
            self._end_of_candidates.cancel()
        await self.pc.close()


def _choose_codec(kind: str, media: Any) -> list[Any]:
    """The server's codec preference for a publisher's m-line: Opus for audio; VP8 for video,
    else H.264 (packetization-mode 1) — what Chrome, Safari on iPhone and Android send. Video
    takes RTX (RFC 4588) too when the offer names its RTX SSRC (``a=ssrc-group:FID``): aiortc
    answers the offered ``rtx`` whose ``apt`` is the chosen codec. A publisher that offered no
    ``rtx``, or no SSRC to find its packets by, is answered without it (it then retransmits the
    original packets on its main SSRC)."""
    offered = {c.mimeType.lower() for c in media.rtp.codecs}
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    wanted = ["audio/opus"] if kind == "audio" else ["video/vp8", "video/h264"]
    for mime in wanted:
        if mime in offered:
            chosen = [c for c in capabilities if c.mimeType.lower() == mime]
            if kind == "video" and _rtx_ssrc(media) is not None:
                return chosen + _aiortc.rtx_capabilities()
            return chosen
    raise MediaError(
        "unsupported_codec",
        "This device offers no codec the server can forward (Opus, VP8 or H.264).",
    )


def _msid_track(media: Any) -> str | None:
    """The track id of an m-line's ``a=msid:<stream> <track>`` (the producer's id)."""
    parts = (media.msid or "").split()
    return parts[1] if len(parts) == 2 else None


def _primary_ssrc(media: Any) -> int:
    for group in media.ssrc_group:
        if group.semantic == "FID" and group.items:
            return int(group.items[0])
    return int(media.ssrc[0].ssrc) if media.ssrc else 0


def _rtx_ssrc(media: Any) -> int | None:
    """The RTX SSRC an offer pairs with its media SSRC (``a=ssrc-group:FID <media> <rtx>``,
    RFC 5576 §4, RFC 4588 §8.3); ``None`` without one."""
    for group in media.ssrc_group:
        if group.semantic == "FID" and len(group.items) == 2:
            return int(group.items[1]) or None
    return None


def _reflect_loss(producer: Producer, block: ReportBlock) -> ReportBlock:
    """The report block for ``producer``, its fraction lost raised to what its weakest
    subscriber reports (``feedback.reflected_fraction_lost``) — for audio only.

    Audio: the publisher's Opus encoder adds in-band FEC in proportion to the loss it is told
    of, at a small cost in its own bitrate, so one student's lossy phone link is protected by
    the teacher's encoder without touching anyone else's stream. Video: never. Told of loss its
    uplink did not have, the publisher's congestion control and loss protection would lower or
    divert the one video bitrate every subscriber shares — cutting the teacher's video for the
    whole class to help the weakest link, which is the downlink allocator's job (per subscriber)
    instead. The cumulative ``packets_lost`` stays the true upstream count either way."""
    if producer.kind != "audio":
        return block
    downstream = [c.last_fraction_lost for c in producer.consumers if not c.paused]
    fraction = reflected_fraction_lost(block.fraction_lost, downstream)
    if fraction == block.fraction_lost:
        return block
    return dataclasses.replace(block, fraction_lost=fraction)


def _unsent_tail(next_seq: int, unsent: set[int]) -> int:
    """The first of the numbers just before ``next_seq`` that all are in ``unsent`` (16-bit):
    where a stream's numbering can start again."""
    seq = next_seq
    while unsent and (seq - 1) & 0xFFFF in unsent:
        seq = (seq - 1) & 0xFFFF
        unsent.discard(seq)
    return seq


class PublishTransport(Transport):
    """A participant's own tracks, coming in. The client offers; the server answers."""

    direction = "publish"

    def __init__(self, *, max_video_bitrate: int = 1_500_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.producers: list[Producer] = []
        self.by_ssrc: dict[int, Producer] = {}
        self.by_rtx_ssrc: dict[int, Producer] = {}
        self.max_video_bitrate = max_video_bitrate
        self._deferred: set[str] = set()
        self._nack_timer: asyncio.TimerHandle | None = None
        self._red: dict[str, tuple[int, int]] = {}
        """mid → (red, opus) payload types of the publisher's m-lines answered with RED."""

    async def negotiate(
        self, offer_sdp: str, new_id: Callable[[], str], keyframe_interval: float = 1.0
    ) -> tuple[str, list[Producer]]:
        """Apply a publish offer; return the answer and the producers it created."""
        try:
            description = SessionDescription.parse(offer_sdp)
        except Exception as exc:
            raise MediaError("bad_sdp", "The offer could not be read.") from exc
        known = {t.mid for t in self.pc.getTransceivers()}
        offered_red = {m.rtp.muxId: _aiortc.red_type_of(m) for m in description.media}
        for mid, answered_red in list(self._red.items()):
            if offered_red.get(mid) != answered_red:  # a new offer dropped (or renumbered) RED
                del self._red[mid]
        pending = []
        for media in description.media:
            if media.kind not in ("audio", "video"):
                raise MediaError("bad_sdp", "Only audio and video can be published.")
            if media.rtp.muxId in known:
                continue
            transceiver = self.pc.addTransceiver(media.kind, direction="recvonly")
            transceiver.setCodecPreferences(_choose_codec(media.kind, media))
            pending.append((transceiver, media))
            new_red = offered_red.get(media.rtp.muxId)
            if new_red is not None and media.rtp.muxId:
                self._red[media.rtp.muxId] = new_red  # only new m-lines take RED up
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            answer = await self.pc.createAnswer()
            # aiortc knows neither RED nor Opus FEC: answer RED first (libwebrtc sends RED
            # only when the answer lists it before Opus) and ask for in-band FEC.
            sdp = _aiortc.with_red(answer.sdp, self._answer_red, opus_fec=True)
            await self.pc.setLocalDescription(RTCSessionDescription(sdp, "answer"))
        except MediaError:
            raise
        except Exception as exc:
            raise MediaError("bad_sdp", f"The offer was refused: {exc}") from exc
        self._attach()
        created = []
        for transceiver, media in pending:
            if media.direction not in ("sendonly", "sendrecv"):
                continue
            codecs = _aiortc.negotiated_codecs(transceiver)
            main = codecs[0]
            codec = Codec(
                mime_type=main.mimeType,
                clock_rate=main.clockRate,
                payload_type=main.payloadType,
                parameters=tuple(sorted((k, str(v)) for k, v in main.parameters.items())),
            )
            red = self._red.get(media.rtp.muxId or "")
            rtx_type = _aiortc.rtx_payload_type(codecs) if media.kind == "video" else None
            producer = Producer(
                producer_id=new_id(),
                participant_id=self.participant_id,
                kind=media.kind,
                codec=codec,
                ssrc=_primary_ssrc(media),
                transport=self,
                keyframe_interval=keyframe_interval,
                mid=media.rtp.muxId,
                red=RedSource(red[0], red[1]) if red and red[1] == main.payloadType else None,
                rtx_ssrc=_rtx_ssrc(media),
                rtx_payload_type=rtx_type,
                policer=Policer.for_stream(media.kind, self.max_video_bitrate),
            )
            producer.on_keyframe_request = self._defer_keyframe
            self.producers.append(producer)
            if producer.ssrc:
                self.by_ssrc[producer.ssrc] = producer
            if producer.rtx_ssrc and producer.rtx_ssrc != producer.ssrc:
                self.by_rtx_ssrc[producer.rtx_ssrc] = producer
            created.append(producer)
        return self.ice.announce(self.pc.localDescription.sdp), created

    def _answer_red(self, media: Any) -> int | None:
        red = self._red.get(media.rtp.muxId)
        if red is None or red[1] != _aiortc.opus_type_of(media):
            return None
        return red[0]

    def _on_rtp(self, data: bytes) -> None:
        ssrc = int.from_bytes(data[8:12], "big")
        producer = self.by_ssrc.get(ssrc)
        if producer is None:
            producer = self.by_rtx_ssrc.get(ssrc)
            if producer is None:
                COUNTERS.dropped_unknown_ssrc += 1
            else:
                producer.receive_rtx(data, time.time())
            return
        producer.receive(data, time.time())

    def _on_rtcp(self, feedback: list[Any]) -> None:
        now = self.now()
        for fb in feedback:
            if fb.kind == "sr":
                producer = self.by_ssrc.get(fb.sender_ssrc)
                if producer is not None:
                    producer.sender_report = (fb.ntp, fb.rtp_timestamp)
                    producer.stats.last_sr_ntp = fb.ntp
                    producer.stats.last_sr_time = now

    def send_pli(self, media_ssrc: int) -> None:
        self.send_rtcp(build_pli(self.rtcp_ssrc, media_ssrc))

    def send_nack(self, media_ssrc: int, lost: list[int]) -> None:
        self.send_rtcp(build_nack(self.rtcp_ssrc, media_ssrc, lost))
        self._arm_nacks()

    def _arm_nacks(self) -> None:
        if self._nack_timer is None and not self.closed:
            self._nack_timer = asyncio.get_running_loop().call_later(NACK_TICK, self._repeat_nacks)

    def _repeat_nacks(self) -> None:
        """Ask again for the packets still missing (``NackTracker.due``), and come back while
        any is tracked."""
        self._nack_timer = None
        if self.closed:
            return
        now = self.now()
        tracked = False
        for producer in self.producers:
            if producer.closed:
                continue
            due = producer.nacks.due(now, self.rtt)
            COUNTERS.upstream_nack_repeats += len(due)
            for i in range(0, len(due), NACK_BATCH):
                self.send_rtcp(build_nack(self.rtcp_ssrc, producer.ssrc, due[i : i + NACK_BATCH]))
            tracked = tracked or len(producer.nacks) > 0
        if tracked:
            self._arm_nacks()

    def _defer_keyframe(self, producer: Producer) -> None:
        """A keyframe request inside the throttle window: send it when the window closes."""
        if producer.id in self._deferred:
            return
        delay = producer.keyframes.due_in(self.now())
        if delay is None:
            return
        self._deferred.add(producer.id)

        def fire() -> None:
            self._deferred.discard(producer.id)
            if producer.keyframes.pending and not producer.closed:
                producer.request_keyframe(self.now())

        asyncio.get_running_loop().call_later(delay + 0.001, fire)

    def _report(self, now: float) -> None:
        blocks = [
            _reflect_loss(p, p.stats.report(p.ssrc, now))
            for p in self.producers
            if not p.closed and p.ssrc and p.stats.base_seq is not None
        ]
        packet = b""
        if blocks:
            packet += build_receiver_report(self.rtcp_ssrc, blocks)
        video = [p.ssrc for p in self.producers if p.kind == "video" and p.ssrc and not p.closed]
        if video:
            if not packet:
                packet += build_receiver_report(self.rtcp_ssrc, [])
            packet += build_remb(self.rtcp_ssrc, self.max_video_bitrate, video)
        if packet:
            self.send_rtcp(packet)

    async def close(self) -> None:
        if self._nack_timer is not None:
            self._nack_timer.cancel()
        for producer in self.producers:
            producer.close()
        await super().close()


class _DrainClock:
    """One timer for every subscriber whose pacer holds packets, instead of one per subscriber:
    40 students whose video frames each leave a packet in the queue would otherwise cost a
    timer each, 30 times a second. The clock fires at the earliest time a waiting pacer asked
    for, but never sooner than ``DRAIN_PERIOD`` after it was armed, and drains every waiting
    subscriber (those still holding packets ask again)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: dict[int, SubscribeTransport] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0

    def wake(self, transport: SubscribeTransport, delay: float) -> object:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests run several): start afresh
            self._loop = loop
            self._waiting = {}
            self._handle = None
        self._waiting[id(transport)] = transport
        at = loop.time() + max(delay, DRAIN_PERIOD)
        if self._handle is None or at < self._at - DRAIN_PERIOD:
            if self._handle is not None:
                self._handle.cancel()
            self._at = at
            self._handle = loop.call_at(at, self._run)
        return self

    def _run(self) -> None:
        self._handle = None
        waiting, self._waiting = self._waiting, {}
        for transport in waiting.values():
            transport._drain()


DRAINS = _DrainClock()


@dataclass(slots=True)
class _Probe:
    """A probe cluster being sent: padding at ``bitrate`` until ``total`` bytes went out."""

    cluster: int
    bitrate: int
    start: float
    total: int
    consumer: Consumer
    sent: int = 0


class SubscribeTransport(Transport):
    """What a participant receives. The server offers; the client answers.

    Each subscribe connection has its own downlink estimate (``media.bwe``: transport-wide
    feedback when the browser negotiated it, REMB and receiver-report loss when not), an
    allocator that shares the estimate out every ``allocation.TICK`` seconds (``allocate``,
    driven by the media service: audio first, then video by priority, holding what does not
    fit and probing to find out when it would), and a pacer (``media.pacer``) that lets video
    out no faster than the estimate and never holds audio behind it. ``send_media`` is where
    consumers hand their rewritten packets; it writes the header extensions when a packet
    actually goes out, so transport-wide sequence numbers follow the send order.
    """

    direction = "subscribe"

    def __init__(self, *, retransmit_rate: float = 100.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.consumers: dict[str, Consumer] = {}  # by producer id
        self.video_view: frozenset[str] | None = None
        """The publishers whose video the subscriber wants now (``None``: all)."""
        self.data_saver = False
        """The subscriber asked for audio only."""
        self.by_ssrc: dict[int, Consumer] = {}
        self.by_rtx_ssrc: dict[int, Consumer] = {}
        self._pending: list[tuple[Any, Producer, str]] = []
        self._transceivers: dict[str, Any] = {}  # consumer id → transceiver
        self.retransmit_rate = retransmit_rate
        self.version = 0
        self.allocator = Allocator()
        self.allocation: Allocation | None = None
        self.on_downlink: Callable[[SubscribeTransport], None] | None = None
        """Called when ``downlink()`` changes (state, reason or held tracks)."""
        # None: nothing told yet, so the first allocation (or data-saver change) reports —
        # the participant may have heard something else before this connection existed.
        self._reported: tuple[str, str | None, tuple[str, ...]] | None = None
        self._probe: _Probe | None = None
        self._probe_handle: asyncio.TimerHandle | None = None
        self._allocated_at: float | None = None
        self._sent_octets: tuple[float, int, int, int] | None = None
        self.sent_bitrate = 0.0
        self._sent_at: tuple[float, int] | None = None
        self.init_sending()

    def init_sending(self) -> None:
        """The state of the per-packet path (``send_media``): estimate, pacer, numbering."""
        self.estimator = DownlinkEstimator()
        self.estimate = self.estimator.estimate
        """What the allocation shares out now, bits per second (see ``_estimate``)."""
        self.pacer = Pacer(self.estimator.estimate)
        self._tcc_word = 0  # (id << 4 | len-1) << 24 of the transport-wide-cc element, or 0
        self._ast_word = (_aiortc.ABS_SEND_TIME_ID << 4 | 2) << 24
        self._drain_handle: object | None = None  # set while DRAINS will call _drain
        self._retransmitted = 0  # bytes since the last allocation

    async def offer(self, wanted: list[Producer], new_id: Callable[[], str]) -> str | None:
        """Make the connection carry exactly ``wanted``; the offer, or None if none is needed."""
        wanted_ids = {p.id for p in wanted}
        changed = False
        for producer_id, consumer in list(self.consumers.items()):
            if producer_id not in wanted_ids:
                consumer.close()
                transceiver = self._transceivers.pop(consumer.id, None)
                if transceiver is not None:
                    transceiver.direction = "inactive"
                changed = True
        pending_ids = {p.id for _, p, _ in self._pending}
        for producer in wanted:
            if producer.id in self.consumers or producer.id in pending_ids or producer.closed:
                continue
            capabilities = [
                c
                for c in RTCRtpSender.getCapabilities(producer.kind).codecs
                if c.mimeType.lower() == producer.codec.mime_type.lower()
                and tuple(sorted((k, str(v)) for k, v in (c.parameters or {}).items()))
                == producer.codec.parameters
            ]
            if not capabilities:
                continue
            if producer.kind == "video":
                # aiortc then offers the codec's rtx and the sender's FID group (RFC 4588).
                capabilities += _aiortc.rtx_capabilities()
            transceiver = self.pc.addTransceiver(producer.kind, direction="sendonly")
            transceiver.setCodecPreferences(capabilities)
            _aiortc.mute_sender(transceiver.sender)
            _aiortc.set_sender_msid(transceiver.sender, producer.participant_id, producer.id)
            self._pending.append((transceiver, producer, new_id()))
            changed = True
        if not changed or not self.pc.getTransceivers():
            return None
        offer = await self.pc.createOffer()
        # RED producers' m-lines offer red/48000/2 first, then Opus (aiortc knows no RED).
        red_ids = {p.id for p in wanted if p.red is not None}
        sdp = _aiortc.with_red(
            offer.sdp,
            lambda media: RED_PAYLOAD_TYPE if _msid_track(media) in red_ids else None,
        )
        await self.pc.setLocalDescription(RTCSessionDescription(sdp, "offer"))
        self._attach()
        self.version += 1
        return self.ice.announce(offer_transport_cc(self.pc.localDescription.sdp))

    def pending_consumers(self) -> list[tuple[str, Producer, str | None]]:
        """(consumer id, producer, mid) of the consumers the current offer adds."""
        return [(cid, p, t.mid) for t, p, cid in self._pending]

    async def accept_answer(self, answer_sdp: str) -> list[Consumer]:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        except Exception as exc:
            raise MediaError("bad_sdp", f"The answer was refused: {exc}") from exc
        transport_cc = answered_transport_cc(answer_sdp)
        if transport_cc:
            # One id for the BUNDLE group (RFC 8843 §9.1): the first answered is the one.
            ext_id = next(iter(transport_cc.values()))
            self._tcc_word = ((ext_id << 4) | 1) << 24
        created = []
        now = self.now()
        answered = {m.rtp.muxId: m for m in SessionDescription.parse(answer_sdp).media}
        for transceiver, producer, consumer_id in self._pending:
            if producer.closed or transceiver.currentDirection not in ("sendonly", "sendrecv"):
                transceiver.direction = "inactive"
                continue
            codecs = _aiortc.negotiated_codecs(transceiver)
            extensions = _aiortc.negotiated_header_extensions(transceiver)
            tcc = self._tcc_word != 0 and transceiver.mid in transport_cc
            red = None
            if producer.red is not None:
                media = answered.get(transceiver.mid)
                accepted = _aiortc.red_type_of(media) if media is not None else None
                red = RedSink(
                    producer.red,
                    opus_type=codecs[0].payloadType,
                    red_type=accepted[0] if accepted else None,  # None: unwrap to Opus
                )
            rtx_type = _aiortc.rtx_payload_type(codecs)
            consumer = Consumer(
                consumer_id=consumer_id,
                producer=producer,
                transport=self,
                ssrc=_aiortc.sender_ssrc(transceiver.sender),
                payload_type=codecs[0].payloadType,
                abs_send_time=not tcc
                and any(e.uri == _aiortc.ABS_SEND_TIME_URI for e in extensions),
                transport_cc=tcc,
                retransmit_rate=self.retransmit_rate,
                red=red,
                rtx_ssrc=_aiortc.sender_rtx_ssrc(transceiver.sender),
                rtx_payload_type=rtx_type,
            )
            if not self.connected or not self.wants(consumer):
                consumer.paused = True  # resumed, at a keyframe, once DTLS is up and wanted
            self.consumers[producer.id] = consumer
            self.by_ssrc[consumer.ssrc] = consumer
            if consumer.rtx is not None:
                self.by_rtx_ssrc[consumer.rtx.ssrc] = consumer
            self._transceivers[consumer.id] = transceiver
            producer.add_consumer(consumer)
            if not consumer.paused:
                producer.request_keyframe(now)
            created.append(consumer)
        self._pending = []
        return created

    def _on_connected(self) -> None:
        for consumer in self.consumers.values():
            self._apply(consumer)

    def observe_rtt(self, seconds: float) -> None:
        super().observe_rtt(seconds)
        self.estimator.on_rtt(self.rtt, self.now())

    def wants(self, consumer: Consumer) -> bool:
        """Whether the subscriber lets this consumer forward: audio always; video when its
        view includes the publisher and the data saver is off."""
        if consumer.kind != "video":
            return True
        if self.data_saver:
            return False
        view = self.video_view
        return view is None or consumer.producer.participant_id in view

    def _apply(self, consumer: Consumer) -> None:
        """Pause or resume a consumer after its view, data saver, allocation or the
        connection changed: it forwards when all of them let it."""
        if consumer.closed:
            return
        if self.connected and self.wants(consumer) and not consumer.held:
            consumer.resume()
        elif not consumer.paused:
            consumer.pause()
            if not consumer.audio:
                self._unqueue(consumer)

    def _unqueue(self, consumer: Consumer) -> None:
        """Take a paused video's packets out of the pacer's queue: it resumes at a keyframe,
        so they are worth nothing to the subscriber and would hold its audio back at the link.
        Numbers that never went out at the end of a stream's numbering are given out again,
        so the subscriber sees no gap there."""
        rtx = consumer.rtx
        taken = self.pacer.remove(lambda item: item[0] is consumer or item[0] is rtx)
        if not taken:
            return
        COUNTERS.paced_unqueued += len(taken)
        consumer.next_seq = _unsent_tail(
            consumer.next_seq, {t[3] for t in taken if t[0] is consumer}
        )
        if rtx is not None:
            rtx.next_seq = _unsent_tail(rtx.next_seq, {t[3] for t in taken if t[0] is rtx})

    def set_video_view(self, view: frozenset[str] | None) -> None:
        """Forward only the video of these publishers (``None``: all); see ``wants``."""
        self.video_view = view
        for consumer in self.consumers.values():
            self._apply(consumer)

    def set_data_saver(self, on: bool) -> None:
        """Audio only, whatever the link carries (``on``), or back to what it carries."""
        self.data_saver = on
        for consumer in self.consumers.values():
            self._apply(consumer)
        self._report_downlink()

    def forget_consumer(self, consumer: Consumer) -> None:
        if self.consumers.get(consumer.producer.id) is consumer:
            del self.consumers[consumer.producer.id]
        self.by_ssrc.pop(consumer.ssrc, None)
        if consumer.rtx is not None:
            self.by_rtx_ssrc.pop(consumer.rtx.ssrc, None)

    # -- sending (the per-packet path) -----------------------------------------------------

    def send_media(
        self,
        consumer: Consumer | RtxStream,
        padding: int,
        b1: int,
        seq: int,
        ts: int,
        payload: bytes,
        now: float,
        retransmission: bool = False,
    ) -> bool:
        """One rewritten packet of ``consumer`` (or of its RTX stream): audio goes out at once,
        video through the pacer (retransmissions too: they are paid out of the same budget).
        False when the packet was not sent and will not be."""
        size = len(payload) + WIRE_OVERHEAD
        pacer = self.pacer
        if consumer.audio:
            pacer.charge(size, now)
            self._emit(consumer, padding, b1, seq, ts, payload, now, -1, size)
            return True
        if retransmission:
            if pacer.queued_bytes and pacer.queue_delay() > MAX_RETRANSMIT_DELAY:
                COUNTERS.retransmissions_refused += 1  # it would arrive too late to help
                return False
            self._retransmitted += size
        if pacer.try_send(size, now):
            self._emit(consumer, padding, b1, seq, ts, payload, now, -1, size)
        elif pacer.push((consumer, padding, b1, seq, ts, payload, size), size):
            if self._drain_handle is None:
                self._wake(now)
        else:
            COUNTERS.paced_dropped += 1
            return False
        return True

    def _emit(
        self,
        consumer: Consumer | RtxStream,
        padding: int,
        b1: int,
        seq: int,
        ts: int,
        payload: bytes,
        now: float,
        cluster: int,
        size: int,
    ) -> None:
        """Write the packet's header and extensions, protect and send it; ``size`` is what it
        costs on the wire (``WIRE_OVERHEAD`` plus the payload), as the pacer charged it."""
        if consumer.transport_cc:
            estimator = self.estimator
            tseq = estimator.next_seq
            estimator.next_seq = (tseq + 1) & 0xFFFF
            packet = (
                EXT_HEADER.pack(
                    0x90 | padding,
                    b1,
                    seq,
                    ts,
                    consumer.ssrc,
                    0xBEDE,
                    1,
                    self._tcc_word | tseq << 8,
                )
                + payload
            )
            # DownlinkEstimator.on_sent, inlined: this runs for every packet.
            estimator.history[tseq & HISTORY_MASK] = (tseq, now, size, cluster)
        elif consumer.abs_send_time:
            packet = (
                EXT_HEADER.pack(
                    0x90 | padding,
                    b1,
                    seq,
                    ts,
                    consumer.ssrc,
                    0xBEDE,
                    1,
                    self._ast_word | (int(now * 262144) & 0xFFFFFF),
                )
                + payload
            )
        else:
            packet = HEADER.pack(0x80 | padding, b1, seq, ts, consumer.ssrc) + payload
        if self.send_rtp(packet):
            consumer.packets += 1
            consumer.octets += len(payload)

    def _wake(self, now: float) -> None:
        self._drain_handle = DRAINS.wake(self, self.pacer.next_send_in(now))

    def _drain(self) -> None:
        self._drain_handle = None
        if self.closed:
            return
        now = self.now()
        for consumer, padding, b1, seq, ts, payload, size in self.pacer.release(now):
            if not consumer.closed:
                self._emit(consumer, padding, b1, seq, ts, payload, now, -1, size)
        if self.pacer.queue:
            self._wake(now)
        elif self._probe is not None and self._probe_handle is None:
            self._send_probe()

    # -- probing ---------------------------------------------------------------------------

    def _start_probe(self, bitrate: int, now: float) -> None:
        """Send a short cluster of padding at ``bitrate``: on the RTX stream of a held video
        when it has one (RFC 4588 allows padding-only RTX packets; libwebrtc probes so), which
        leaves every media stream's numbering alone; else on a held video's media SSRC, where
        nothing else is numbered until it resumes at a keyframe."""
        held = [c for c in self.consumers.values() if c.held and c.transport_cc and not c.closed]
        consumer = next((c for c in held if c.rtx is not None), None) or next(iter(held), None)
        if consumer is None:
            return
        # Small enough that a link no faster than the estimate queues at most
        # PROBE_QUEUE_BUDGET seconds of it (the subscriber's audio waits behind it there), and
        # at least a few packets for the estimator to measure. A small cluster that a shaper's
        # burst lets through whole overstates the link, at most up to the probe's own rate,
        # which is why probes double from the estimate rather than jump to what is wanted.
        estimate = self.estimator.estimate
        excess = max(1.0 - estimate / bitrate, 0.25)
        budget = estimate * PROBE_QUEUE_BUDGET / 8 / excess
        total = max(
            PROBE_MIN_PACKETS * PADDING_WIRE, min(int(budget), probe_cluster_bytes(bitrate))
        )
        cluster = self.estimator.start_probe(bitrate, now, total)
        self._probe = _Probe(cluster, bitrate, now, total, consumer)
        COUNTERS.probes += 1
        if trace.isEnabledFor(logging.DEBUG):
            trace.debug(
                "t=%.3f subscriber %s: probe %d at %d bit/s, %d bytes; estimate %d",
                now,
                self.participant_id,
                cluster,
                bitrate,
                total,
                estimate,
            )
        self._send_probe()

    def _send_probe(self) -> None:
        self._probe_handle = None
        probe = self._probe
        if probe is None:
            return
        consumer = probe.consumer
        rtx = consumer.rtx
        # Padding on the RTX stream may go on after the video resumes; on the media SSRC not.
        stale = rtx is None and not consumer.held
        if self.closed or consumer.closed or not self.connected or stale:
            self._probe = None
            return
        if self.pacer.queue:
            return  # media first: _drain comes back here when the queue is empty
        now = self.now()
        due = (now - probe.start) * probe.bitrate / 8 - probe.sent + PADDING_WIRE
        while due >= PADDING_WIRE and probe.sent < probe.total:
            stream: Consumer | RtxStream
            if rtx is not None:
                stream = rtx
                seq = rtx.next_seq
                rtx.next_seq = (seq + 1) & 0xFFFF
            else:
                stream = consumer
                seq = consumer.next_seq
                consumer.next_seq = (seq + 1) & 0xFFFF
                # A NACK for a padding packet must not map back to a media packet.
                consumer.seq_epoch_start = consumer.next_seq
            self.pacer.charge(PADDING_WIRE, now)
            self._emit(
                stream,
                0x20,
                stream.payload_type,
                seq,
                consumer.last_ts,
                PADDING,
                now,
                probe.cluster,
                PADDING_WIRE,
            )
            COUNTERS.padding_packets += 1
            probe.sent += PADDING_WIRE
            due -= PADDING_WIRE
        if probe.sent >= probe.total:
            self._probe = None
            return
        self._probe_handle = asyncio.get_running_loop().call_later(
            max(PADDING_WIRE * 8 / probe.bitrate, MIN_TIMER), self._send_probe
        )

    # -- allocation ------------------------------------------------------------------------

    def allocate(self, now: float) -> Allocation:
        """Share the downlink estimate out among the consumers (every ``allocation.TICK``)."""
        estimate = self.estimate = self._estimate(now)
        last = self._allocated_at
        self._allocated_at = now
        retransmit_bitrate = (
            self._retransmitted * 8 / (now - last) if last is not None and now > last else 0.0
        )
        self._retransmitted = 0
        sent = self._sent_at
        self._sent_at = (now, self.pacer.sent_bytes)
        if sent is not None and now > sent[0]:
            rate = (self.pacer.sent_bytes - sent[1]) * 8 / (now - sent[0])
            self.sent_bitrate += (rate - self.sent_bitrate) * min(1.0, (now - sent[0]))
        consumers = list(self.consumers.values())
        tracks = [
            Track(c.id, c.kind, c.producer.bitrate, c.producer.priority, self.wants(c))
            for c in consumers
            if not c.producer.paused
        ]
        allocation = self.allocator.allocate(
            estimate,
            tracks,
            now,
            retransmit_bitrate=retransmit_bitrate,
            queue_delay=self.pacer.queue_delay(),
        )
        self.allocation = allocation
        self.pacer.set_bitrate(estimate)
        for consumer in consumers:
            held = consumer.id in allocation.held
            if held != consumer.held:
                consumer.held = held
                if held:
                    COUNTERS.allocation_holds += 1
                else:
                    COUNTERS.allocation_resumes += 1
                if trace.isEnabledFor(logging.DEBUG):
                    trace.debug(
                        "t=%.3f subscriber %s: %s %s; estimate %d, available %d, queue %.3f s;"
                        " estimator %s",
                        now,
                        self.participant_id,
                        "hold" if held else "resume",
                        consumer.producer.id,
                        estimate,
                        allocation.available,
                        self.pacer.queue_delay(),
                        self.estimator.snapshot(),
                    )
                self._apply(consumer)
        if trace.isEnabledFor(logging.DEBUG):
            snap = self.estimator.snapshot()
            trace.debug(
                "t=%.3f subscriber %s: tick estimate %d (delay %s, loss %s, acked %s, loss %s,"
                " %s) available %d wanted %d queue %.3f s sent %d held %d probe %s/%s",
                now,
                self.participant_id,
                estimate,
                snap["delay_based"],
                snap["loss_based"],
                snap["acked_bitrate"],
                snap["loss_fraction"],
                snap["detector"],
                allocation.available,
                allocation.wanted,
                self.pacer.queue_delay(),
                int(self.sent_bitrate),
                len(allocation.held),
                snap["probe_bitrate"],
                snap["probe_result"],
            )
        if self._probe is None and self.connected:
            rate = self.estimator.next_probe(
                now,
                max(allocation.wanted, allocation.resume),
                app_limited=bool(allocation.held),
            )
            if rate:
                self._start_probe(rate, now)
        self._report_downlink()
        return allocation

    def _estimate(self, now: float) -> int:
        """The estimator's target — read differently for a browser without transport-wide
        feedback, whose REMB (its own receive-side estimate) counts only the video it receives
        (payload bits, draft-alvestrand-rmcat-remb §2) and never says much more than that: it
        cannot tell that a link carries more than the server sends. So REMB limits the
        downlink only when it signals congestion — below ``REMB_CONGESTION`` of the video
        payload the server sends — and is then turned into wire bits with this connection's
        audio added; otherwise the loss-based estimate from receiver reports decides."""
        estimate = self.estimator.update(now)
        if self._tcc_word:
            return estimate
        video = audio = wire = 0
        for c in self.consumers.values():
            if c.audio:
                audio += c.octets + c.packets * WIRE_OVERHEAD
            else:
                video += c.octets
                wire += c.octets + c.packets * WIRE_OVERHEAD
                rtx = c.rtx
                if rtx is not None:  # the REMB counts every video packet it receives
                    video += rtx.octets
                    wire += rtx.octets + rtx.packets * WIRE_OVERHEAD
        last = self._sent_octets
        self._sent_octets = (now, video, audio, wire)
        snapshot = self.estimator.snapshot()
        if snapshot["source"] != "remb" or last is None or now <= last[0]:
            return estimate
        dt = now - last[0]
        video_rate = max(video - last[1], 0) * 8 / dt
        audio_rate = max(audio - last[2], 0) * 8 / dt
        wire_rate = max(wire - last[3], 0) * 8 / dt
        remb = float(snapshot["remb"])
        loss_based = float(snapshot["loss_based"])
        if video_rate > 0 and remb < REMB_CONGESTION * video_rate:
            limit = remb * (wire_rate / video_rate) + audio_rate
            return int(max(self.estimator.min_bitrate, min(loss_based, limit)))
        return int(min(max(loss_based, self.estimator.min_bitrate), self.estimator.max_bitrate))

    def downlink(self) -> dict[str, Any]:
        """What the subscriber is told of its downlink (the ``downlink`` event)."""
        state, reason, held = self._downlink_key()
        return {
            "state": state,
            "reason": reason,
            "estimate": self.estimate if self.connected else None,
            "paused": list(held),
        }

    def _downlink_key(self) -> tuple[str, str | None, tuple[str, ...]]:
        held = tuple(sorted(c.producer.id for c in self.consumers.values() if c.held))
        if self.data_saver:
            return "audio_only", "data_saver", held
        allocation = self.allocation
        if allocation is None or allocation.state == "ok":
            return "ok", None, held
        return allocation.state, "bandwidth", held

    def _report_downlink(self) -> None:
        key = self._downlink_key()
        if key != self._reported:
            self._reported = key
            if self.on_downlink is not None:
                self.on_downlink(self)

    def stats(self) -> dict[str, Any]:
        """The connection's figures for staff: estimate and its inputs, what was decided."""
        allocation = self.allocation
        return {
            **self.downlink(),
            "connected": self.connected,
            "rtt": self.rtt if self._rtt_samples else None,  # measured by consent checks
            "sent_bitrate": int(self.sent_bitrate),
            "pacing_rate": int(self.pacer.rate),
            "queue_delay": round(self.pacer.queue_delay(), 3),
            "paced_dropped": self.pacer.dropped,
            "available_for_video": allocation.available if allocation else None,
            "estimator": self.estimator.snapshot(),
            "tracks": [
                {
                    "producer": c.producer.id,
                    "participant": c.producer.participant_id,
                    "kind": c.kind,
                    "bitrate": int(c.producer.bitrate),
                    "priority": c.producer.priority,
                    "wanted": self.wants(c),
                    "held": c.held,
                    "paused": c.paused,
                    "transport_cc": c.transport_cc,
                    "rtx": c.rtx is not None,
                }
                for c in self.consumers.values()
            ],
        }

    # -- feedback --------------------------------------------------------------------------

    def _on_rtcp(self, feedback: list[Any]) -> None:
        now = self.now()
        estimator = self.estimator
        for fb in feedback:
            kind = fb.kind
            if kind == "twcc":
                COUNTERS.transport_feedback += 1
                if fb.twcc is not None:
                    estimator.on_transport_feedback(fb.twcc, now)
                    if trace.isEnabledFor(logging.DEBUG):
                        snap = estimator.snapshot()
                        trace.debug(
                            "t=%.3f subscriber %s: feedback of %d packets: delay-based %d,"
                            " trend %s (threshold %s) %s, queue %s s, acked %s",
                            now,
                            self.participant_id,
                            len(fb.twcc.packets),
                            snap["delay_based"],
                            snap["modified_trend"],
                            snap["threshold"],
                            snap["detector"],
                            snap["queue_delay"],
                            snap["acked_bitrate"],
                        )
            elif kind == "nack":
                COUNTERS.nacks_received += 1
                consumer = self.by_ssrc.get(fb.media_ssrcs[0])
                if consumer is not None:
                    consumer.retransmit(fb.lost, now)
                elif fb.media_ssrcs[0] in self.by_rtx_ssrc:
                    # RFC 4588 §6.3: NACKs name the original stream; a retransmission is
                    # not retransmitted again (the receiver asks for the original once more).
                    COUNTERS.nacks_for_rtx += 1
            elif kind in ("pli", "fir"):
                for ssrc in fb.media_ssrcs:
                    # A keyframe request naming the RTX SSRC means its video.
                    consumer = self.by_ssrc.get(ssrc) or self.by_rtx_ssrc.get(ssrc)
                    if consumer is not None and not consumer.paused:
                        consumer.producer.request_keyframe(now)
            elif kind in ("rr", "sr"):
                # Report blocks about an RTX stream (whose packets exist only where media was
                # lost) say nothing of the downlink's loss: only media SSRCs are read.
                # The fraction is corrected for the numbers the publisher's uplink lost
                # (Consumer.downlink_loss): those were never sent down this link.
                worst = -1
                for block in fb.reports:
                    consumer = self.by_ssrc.get(block.ssrc)
                    if consumer is not None:
                        loss = consumer.downlink_loss(block.highest_sequence, block.packets_lost)
                        if loss is None:
                            continue
                        consumer.last_fraction_lost = loss
                        if loss > worst:
                            worst = loss
                if worst >= 0:
                    estimator.on_receiver_loss(worst, now)
            elif kind == "remb":
                estimator.on_remb(fb.bitrate, now)

    def _report(self, now: float) -> None:
        """Sender reports for every consumer whose publisher has sent one (RFC 3550 §6.4.1):
        the publisher's NTP↔RTP pair with this consumer's timestamp offset, so a browser can
        line up audio and video of one participant."""
        chunk = b""
        for consumer in list(self.consumers.values()):
            sr = consumer.producer.sender_report
            if sr is None or consumer.paused:
                continue
            chunk += build_sender_report(
                consumer.ssrc,
                sr[0],
                sr[1] + consumer.ts_offset,
                consumer.packets,
                consumer.octets,
            )
            if len(chunk) > 1000:
                self.send_rtcp(chunk)
                chunk = b""
        if chunk:
            self.send_rtcp(chunk)

    async def close(self) -> None:
        if self._probe_handle is not None:
            self._probe_handle.cancel()
        self._probe = None
        self.pacer.clear()
        for consumer in list(self.consumers.values()):
            consumer.close()
        await super().close()
