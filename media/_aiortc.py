"""Every touch of aiortc's and aioice's private parts, in one place.

lophoc uses aiortc for ICE, DTLS and SRTP and nothing above them: RTP packets go from a
publisher's transport straight to subscribers' transports without aiortc's depacketizer, jitter
buffer, decoder or encoder (see ``media/transport.py``). Doing that means reaching below aiortc's
public API. This module is the only place that does so; ``tests/contract/test_aiortc_contract.py``
pins each fact used here, and ``pyproject.toml`` pins the exact aiortc and aioice versions, so an
upgrade fails loudly in the contract tests instead of quietly in a lesson.

The facts relied on (aiortc 1.16.0, aioice 0.13.0):

* aioice gathers host candidates from ``aioice.ice.get_host_addresses`` (a module-level
  function looked up at call time) and skips 127.0.0.1: replacing it is how the server gathers
  only on the configured addresses.
* Each aioice ``StunProtocol`` receives every datagram of its socket in ``datagram_received``
  (a plain callback of asyncio's event loop). Replacing it per instance gives one synchronous
  function per received datagram, ahead of aioice's queue and aiortc's ``await`` chain.
* ``Connection._nominated[1]`` is the selected candidate pair: its ``protocol.transport`` is the
  asyncio datagram transport and ``remote_addr`` the validated peer address.
* ``RTCDtlsTransport._rx_srtp`` / ``_tx_srtp`` are the pylibsrtp sessions, set once DTLS is
  connected.
* ``RTCRtpSender`` starts ``self._run_rtp(codec)`` and ``self._run_rtcp()`` from ``send()``;
  instance attributes shadow them. ``stop()`` waits for the name-mangled ``__rtp_started``,
  ``__rtp_exited``, ``__rtcp_started`` and ``__rtcp_exited`` events.
* ``RTCRtpSender._stream_id`` and ``_track_id`` become the ``a=msid`` of its m-line.
* RTX (RFC 4588): an ``rtx`` capability among a transceiver's codec preferences makes aiortc
  offer (and answer, when offered) the ``rtx`` codec whose ``apt`` is each preferred codec's
  payload type; with ``rtx`` in a sender's m-line, aiortc writes its ``a=ssrc`` lines and
  ``a=ssrc-group:FID <_ssrc> <_rtx_ssrc>``, so ``RTCRtpSender._rtx_ssrc`` is the RTX SSRC the
  subscriber learns (``sender_rtx_ssrc``). Negotiated ``rtx`` stays in ``_codecs`` with an
  integer ``apt`` parameter.
* ``RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms)`` is where aiortc hands a parsed
  RTP packet to its depacketizer (used only by load-test peers, which count without decoding).
* Consent freshness (RFC 7675): ``Connection.connect()`` starts ``self.query_consent()`` as a
  task kept in ``Connection._query_consent_task`` once ICE completes, and ``Connection.close()``
  cancels that task. aioice's check is one Binding request every ``CONSENT_INTERVAL`` (5 s)
  with a single 0.5 s timeout and no retransmission, and it closes the connection after
  ``CONSENT_FAILURES`` (6) failures in a row — so a phone whose round trip exceeds 0.5 s is
  dropped after about 30 s although it answers every check. ``keep_consent`` replaces that task
  for one connection (an instance attribute shadows ``query_consent``; a task already running
  is cancelled and restarted). Its requests are built by ``Connection.build_request``, sent by
  ``StunProtocol.send_stun`` and matched in ``StunProtocol.transactions``, where
  ``datagram_received`` hands a response to ``.response_received(message, addr)`` of the entry
  under its transaction id. Expiry closes the connection as aioice does (``_query_consent_task
  = None``, then ``close()``), which emits ``ConnectionClosed``; aiortc's ``RTCIceTransport``
  then turns ``completed`` into ``failed``. Answering the remote's checks is
  ``Connection.request_received``, untouched.
* ``RTCDtlsTransport._handle_rtp_data(data, arrival_time_ms)`` gets every unprotected RTP packet
  of a connection before aiortc's ``RtpRouter``, which discards payload types it did not
  negotiate (``tap_received_rtp``: test peers that receive RED, which aiortc never negotiates).
* ``RTCDtlsTransport._send_rtp(data)`` is the coroutine every outgoing RTP and RTCP packet of a
  peer connection passes through, serialized and not yet protected (``rewrite_sent_rtp``: test
  peers that play a browser's part, e.g. sending RED as Chromium does). It protects RTCP
  (``protect_rtcp``) and RTP alike, so awaiting it with an RTCP packet is how a test peer sends
  RTCP aiortc does not produce itself (``send_rtcp``: load-test students' transport-wide
  feedback); it raises ``ConnectionError`` until DTLS is connected.

**Codecs aiortc does not know (RED, RFC 2198).** aiortc negotiates only the codecs of its
module-level ``aiortc.codecs.CODECS``, shared by every peer connection of the process; adding
``red`` there would make every aiortc connection (test and load-test peers included) offer and
accept a codec its encoder and decoder cannot handle. Instead the SFU edits the SDP text around
aiortc, per m-line (``with_red``), which works because of three public behaviours of aiortc
1.16, pinned by the contract tests:

* ``setLocalDescription`` parses the given SDP and keeps it as the local description verbatim
  (re-serialized by ``aiortc.sdp``); it does not re-derive the transceiver's codecs from it, so
  an added ``red`` line changes nothing inside aiortc, whose RTP machinery the SFU bypasses.
* ``aiortc.sdp`` parses an ``a=fmtp:63 111/111`` into ``{"111/111": None}`` and writes it back
  unchanged; codecs it does not know keep their ``a=rtpmap`` and position in the ``m=`` line.
* ``setRemoteDescription`` drops unknown codecs from what it negotiates (``red`` never reaches
  ``negotiated_codecs``), so whether the peer accepted ``red`` is read from the remote SDP text
  (``red_type_of``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import aioice.ice
import aioice.stun
from aiortc import (
    RTCDtlsTransport,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.rtp import RtpPacket
from aiortc.sdp import MediaDescription, SessionDescription

__all__ = [
    "ABS_SEND_TIME_ID",
    "DatagramHandler",
    "dtls_transport_of",
    "hook_datagrams",
    "ice_connection_of",
    "keep_consent",
    "mute_sender",
    "negotiated_codecs",
    "negotiated_header_extensions",
    "opus_type_of",
    "red_type_of",
    "rewrite_sent_rtp",
    "rtx_capabilities",
    "rtx_payload_type",
    "rx_srtp",
    "selected_pair",
    "send_rtcp",
    "sender_rtx_ssrc",
    "sender_ssrc",
    "set_host_addresses",
    "set_sender_msid",
    "tap_received_rtp",
    "tap_receiver_rtp",
    "tx_srtp",
    "with_red",
]

logger = logging.getLogger(__name__)

DatagramHandler = Callable[[bytes, tuple[str, int]], None]

ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


def _abs_send_time_id() -> int:
    from aiortc.codecs import HEADER_EXTENSIONS

    for ext in HEADER_EXTENSIONS["video"]:
        if ext.uri == ABS_SEND_TIME_URI:
            return int(ext.id)
    raise RuntimeError("aiortc no longer offers abs-send-time for video")


ABS_SEND_TIME_ID = _abs_send_time_id()
"""The header-extension id aiortc offers abs-send-time under (the SFU is the offerer toward
subscribers, so this is the id their answers accept)."""

_original_get_host_addresses = aioice.ice.get_host_addresses


def set_host_addresses(addresses: Iterable[str] | None) -> None:
    """Make every ICE agent in this process gather host candidates on ``addresses`` only.

    ``None`` restores aioice's own discovery (every interface but 127.0.0.1). The setting is
    process-wide because aioice reads it from a module-level function.
    """
    if addresses is None:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def dtls_transport_of(pc: RTCPeerConnection) -> RTCDtlsTransport:
    """The one DTLS transport of a max-bundle peer connection (after the first transceiver)."""
    transceivers = pc.getTransceivers()
    if not transceivers:
        raise LookupError("peer connection has no transceiver")
    return transceivers[0].receiver.transport


def ice_connection_of(dtls: RTCDtlsTransport) -> aioice.ice.Connection:
    return dtls.transport._connection


def hook_datagrams(
    dtls: RTCDtlsTransport,
    wrap: Callable[[DatagramHandler], DatagramHandler],
) -> int:
    """Route every datagram of the transport's sockets through ``wrap(original)``.

    Must run after candidate gathering (i.e. after ``setLocalDescription``). Returns how many
    sockets were hooked. ``original(data, addr)`` is aioice's own handler (STUN, then aioice's
    receive queue, which feeds aiortc's DTLS loop).
    """
    connection = ice_connection_of(dtls)
    hooked = 0
    for protocol in connection._protocols:
        if getattr(protocol, "_lophoc_hooked", False):
            continue
        # Instance attributes shadow the class's method: only this socket is rerouted.
        setattr(protocol, "datagram_received", wrap(protocol.datagram_received))  # noqa: B010
        setattr(protocol, "_lophoc_hooked", True)  # noqa: B010
        hooked += 1
    return hooked


def selected_pair(dtls: RTCDtlsTransport) -> tuple[Callable[[bytes, Any], None], Any] | None:
    """``(sendto, remote_addr)`` of the nominated ICE pair, or ``None`` before nomination."""
    pair = ice_connection_of(dtls)._nominated.get(1)
    if pair is None:
        return None
    transport = pair.protocol.transport
    if transport is None:
        return None
    return transport.sendto, pair.remote_addr


def rx_srtp(dtls: RTCDtlsTransport) -> Any:
    """The inbound pylibsrtp session, or ``None`` until DTLS is connected."""
    return dtls._rx_srtp


def tx_srtp(dtls: RTCDtlsTransport) -> Any:
    """The outbound pylibsrtp session, or ``None`` until DTLS is connected."""
    return dtls._tx_srtp


async def _idle_loop(started: asyncio.Event, exited: asyncio.Event) -> None:
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        pass
    finally:
        exited.set()


def mute_sender(sender: RTCRtpSender) -> None:
    """Keep an ``RTCRtpSender`` from sending anything of its own.

    The SFU writes RTP and RTCP for the sender's SSRC itself; aiortc's RTP loop would otherwise
    poll a missing track every 20 ms and its RTCP loop would send sender reports built from
    empty counters, which mislead browsers about audio/video sync. Call before ``send()``
    (i.e. before the remote description that starts the sender is applied).
    """
    sender._run_rtp = lambda codec: _idle_loop(  # type: ignore[method-assign]
        sender._RTCRtpSender__rtp_started,  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_exited,  # type: ignore[attr-defined]
    )
    sender._run_rtcp = lambda: _idle_loop(  # type: ignore[method-assign]
        sender._RTCRtpSender__rtcp_started,  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtcp_exited,  # type: ignore[attr-defined]
    )


def set_sender_msid(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """Choose the ``a=msid:<stream> <track>`` the sender's m-line will carry."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def tap_receiver_rtp(receiver: RTCRtpReceiver, callback: Callable[[RtpPacket, int], None]) -> None:
    """Give a receiver's RTP packets to ``callback`` instead of aiortc's depacketizer/decoder.

    For load-test peers, which count packets and frames without decoding them.
    """

    async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
        callback(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle  # type: ignore[method-assign]


def negotiated_codecs(transceiver: Any) -> list[Any]:
    """The ``RTCRtpCodecParameters`` negotiated for a transceiver, first = the one in use."""
    return list(transceiver._codecs)


def negotiated_header_extensions(transceiver: Any) -> list[Any]:
    """The ``RTCRtpHeaderExtensionParameters`` negotiated for a transceiver."""
    return list(transceiver._headerExtensions)


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC aiortc chose for a sender and announced in its m-line's ``a=ssrc``."""
    return int(sender._ssrc)


def sender_rtx_ssrc(sender: RTCRtpSender) -> int:
    """The RTX SSRC aiortc chose for a sender, announced (when ``rtx`` is negotiated) as the
    second SSRC of its m-line's ``a=ssrc-group:FID``."""
    return int(sender._rtx_ssrc)


def rtx_capabilities() -> list[Any]:
    """aiortc's ``video/rtx`` codec capability: add it to codec preferences to negotiate RTX
    for the preferred video codecs."""
    return [c for c in RTCRtpSender.getCapabilities("video").codecs if c.name.lower() == "rtx"]


def rtx_payload_type(codecs: list[Any]) -> int | None:
    """The payload type of the negotiated ``rtx`` whose ``apt`` is the first (in-use) codec's,
    among a transceiver's ``negotiated_codecs``; ``None`` when RTX was not negotiated."""
    if not codecs:
        return None
    main = codecs[0].payloadType
    for codec in codecs[1:]:
        if codec.name.lower() == "rtx" and codec.parameters.get("apt") == main:
            return int(codec.payloadType)
    return None


# -- consent freshness (RFC 7675) ------------------------------------------------------------

CONSENT_INTERVAL = 5.0
"""Seconds between consent checks (RFC 7675 §5.1 recommends 5 s), randomized 0.8–1.2 ×."""
CONSENT_TIMEOUT = 30.0
"""Seconds without any response after which consent expires (RFC 7675 §5.1: 30 s)."""
CONSENT_RTO = 0.5
"""First retransmission timeout of a check (RFC 5389 §7.2.1's RTO: 500 ms)."""
CONSENT_MAX_RTO = 4.0
"""The retransmission timeout doubles up to this bound."""
CONSENT_TASK_NAME = "lophoc-consent"


class _ConsentRequest:
    """One sent consent request, registered in ``StunProtocol.transactions`` under its id so a
    response, however late, reaches ``response_received``."""

    __slots__ = ("addr", "check", "key", "on_response", "sent_at")

    def __init__(
        self,
        check: _ConsentCheck,
        addr: tuple[str, int],
        key: bytes,
        sent_at: float,
        on_response: Callable[[_ConsentRequest], None],
    ) -> None:
        self.check = check
        self.addr = addr
        self.key = key
        self.sent_at = sent_at
        self.on_response = on_response

    def response_received(self, message: aioice.stun.Message, addr: tuple[str, int]) -> None:
        if message.message_class != aioice.stun.Class.RESPONSE:
            return  # an error response grants no consent (RFC 7675 §5.1)
        if (addr[0], addr[1]) != (self.addr[0], self.addr[1]):
            return  # consent comes from the address the request went to (§5.1)
        if not message.check_message_integrity(self.key):
            return
        self.on_response(self)


class _ConsentCheck:
    __slots__ = ("answered", "next_send", "rto")

    def __init__(self, now: float) -> None:
        self.answered = False
        self.rto = CONSENT_RTO
        self.next_send = now


async def _consent_loop(
    connection: aioice.ice.Connection,
    interval: float,
    expiry: float,
    on_rtt: Callable[[float], None] | None,
) -> None:
    """RFC 7675 §5.1 for one connection.

    A check starts every ``interval`` (0.8–1.2 ×). Each request has a new transaction id and is
    sent once (§5.1); while a check is unanswered, a new request is sent after an RTO of 0.5 s
    that doubles up to ``CONSENT_MAX_RTO`` (the RFC 5389 schedule), until the next check starts.
    Every request stays registered until ``expiry`` has passed, so a response arriving long
    after its request still refreshes consent, and its round-trip time is exact (it is matched
    to the one request it answers). Consent expires ``expiry`` seconds after the last response.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        task.set_name(CONSENT_TASK_NAME)
    pending: dict[bytes, tuple[Any, _ConsentRequest]] = {}
    last_ok = loop.time()  # ICE just completed: consent is fresh (§4)

    def on_response(request: _ConsentRequest) -> None:
        nonlocal last_ok
        now = loop.time()
        last_ok = now
        request.check.answered = True
        if on_rtt is not None:
            try:
                on_rtt(now - request.sent_at)
            except Exception:  # a measurement must never end consent
                logger.exception("consent: on_rtt failed")

    def forget(transaction_id: bytes) -> None:
        protocol, request = pending.pop(transaction_id)
        if protocol.transactions.get(transaction_id) is request:
            del protocol.transactions[transaction_id]

    def send(check: _ConsentCheck, now: float) -> None:
        pair = connection._nominated.get(1)
        password = connection.remote_password
        if pair is None or password is None or pair.protocol.transport is None:
            return
        message = connection.build_request(pair, nominate=False)
        key = password.encode("utf8")
        message.add_message_integrity(key)
        request = _ConsentRequest(check, pair.remote_addr, key, now, on_response)
        # Duck-typed: aioice only calls ``response_received`` on what it finds there.
        pair.protocol.transactions[message.transaction_id] = request  # type: ignore[assignment]
        pending[message.transaction_id] = (pair.protocol, request)
        try:
            pair.protocol.send_stun(message, pair.remote_addr)
        except OSError:
            pass  # counts as a lost request

    try:
        while True:
            now = loop.time()
            check = _ConsentCheck(now)
            next_check = now + interval * (0.8 + 0.4 * random.random())
            while True:
                now = loop.time()
                if now >= last_ok + expiry:
                    logger.info("consent to send expired (%.1f s without a response)", expiry)
                    connection._query_consent_task = None
                    await connection.close()
                    return
                if now >= next_check:
                    break
                if not check.answered and now >= check.next_send:
                    send(check, now)
                    check.next_send = now + check.rto
                    check.rto = min(check.rto * 2, CONSENT_MAX_RTO)
                for transaction_id in [t for t, (_, r) in pending.items() if r.check.answered]:
                    forget(transaction_id)
                for transaction_id in [
                    t for t, (_, r) in pending.items() if now - r.sent_at > expiry
                ]:
                    forget(transaction_id)
                wake = min(next_check, last_ok + expiry)
                if not check.answered:
                    wake = min(wake, check.next_send)
                await asyncio.sleep(max(0.0, wake - now))
    finally:
        for transaction_id in list(pending):
            forget(transaction_id)


def keep_consent(
    dtls: RTCDtlsTransport,
    *,
    interval: float = CONSENT_INTERVAL,
    timeout: float = CONSENT_TIMEOUT,
    on_rtt: Callable[[float], None] | None = None,
) -> None:
    """Make this connection's consent checks follow RFC 7675 §5.1 (see ``_consent_loop``).

    Callable any time after the DTLS transport exists (i.e. after ``setLocalDescription``):
    before ICE completes, aioice starts the replacement itself when it would start its own;
    after, aioice's running task is cancelled and the replacement takes its place in
    ``_query_consent_task`` (so ``Connection.close()`` still stops it). Only this connection is
    affected. ``on_rtt(seconds)`` receives the round-trip time of every answered request.
    """
    connection = ice_connection_of(dtls)

    def query_consent() -> Any:
        return _consent_loop(connection, interval, timeout, on_rtt)

    connection.query_consent = query_consent  # type: ignore[method-assign]
    if connection._closing:
        return
    running = connection._query_consent_task
    if running is not None and not running.done():
        running.cancel()
        connection._query_consent_task = asyncio.get_running_loop().create_task(
            query_consent(), name=CONSENT_TASK_NAME
        )


def rewrite_sent_rtp(dtls: RTCDtlsTransport, rewrite: Callable[[bytes], bytes | None]) -> None:
    """Pass every outgoing RTP/RTCP packet of ``dtls`` through ``rewrite`` before it is
    protected (``None``: send nothing). For test peers that stand in for a browser."""
    original = dtls._send_rtp

    async def send_rtp(data: bytes) -> None:
        out = rewrite(data)
        if out is not None:
            await original(out)

    dtls._send_rtp = send_rtp  # type: ignore[method-assign]


async def send_rtcp(dtls: RTCDtlsTransport, packet: bytes) -> None:
    """Protect and send one (compound) RTCP packet on the connection of ``dtls``, beside
    aiortc's own RTCP. Raises ``ConnectionError`` while DTLS is not connected. For test peers
    that send feedback aiortc does not know (transport-wide cc)."""
    await dtls._send_rtp(packet)


def tap_received_rtp(dtls: RTCDtlsTransport, callback: Callable[[bytes], None]) -> None:
    """Call ``callback(rtp_bytes)`` with every unprotected RTP packet ``dtls`` receives, before
    aiortc routes it (and drops what it did not negotiate). For test peers."""
    original = dtls._handle_rtp_data

    async def handle(data: bytes, arrival_time_ms: int) -> None:
        callback(data)
        await original(data, arrival_time_ms=arrival_time_ms)

    dtls._handle_rtp_data = handle  # type: ignore[method-assign]


RED_MIME = "audio/red"
OPUS_MIME = "audio/opus"


def opus_type_of(media: MediaDescription) -> int | None:
    """The payload type of the m-line's (first) ``opus/48000/2``."""
    for codec in media.rtp.codecs:
        if (
            codec.mimeType.lower() == OPUS_MIME
            and codec.clockRate == 48000
            and codec.payloadType is not None
        ):
            return int(codec.payloadType)
    return None


def red_type_of(media: MediaDescription) -> tuple[int, int] | None:
    """``(red payload type, opus payload type)`` when the m-line carries ``red/48000/2``
    whose every block is the m-line's Opus (fmtp ``111/111``, or ``111`` … ``111/111/111``);
    else ``None``."""
    if media.kind != "audio":
        return None
    opus = opus_type_of(media)
    if opus is None:
        return None
    for codec in media.rtp.codecs:
        if (
            codec.mimeType.lower() != RED_MIME
            or codec.clockRate != 48000
            or codec.payloadType is None
        ):
            continue
        keys = list(codec.parameters)
        if len(keys) != 1 or codec.parameters[keys[0]] is not None:
            continue
        parts = keys[0].split("/")
        if parts and all(p == str(opus) for p in parts):
            return int(codec.payloadType), opus
    return None


def with_red(
    sdp: str,
    red_type_for: Callable[[MediaDescription], int | None],
    *,
    opus_fec: bool = False,
) -> str:
    """The SDP with ``red/48000/2`` as the first codec of each audio m-line for which
    ``red_type_for(media)`` names a payload type (blocks = the m-line's Opus), and, with
    ``opus_fec``, ``useinbandfec=1`` on every audio m-line's Opus (RFC 7587: the receiver
    asks the sender for in-band FEC)."""
    description = SessionDescription.parse(sdp)
    for media in description.media:
        if media.kind != "audio":
            continue
        opus = opus_type_of(media)
        if opus is None:
            continue
        if opus_fec:
            for codec in media.rtp.codecs:
                if codec.payloadType == opus:
                    codec.parameters["useinbandfec"] = 1
        red = red_type_for(media)
        if red is None:
            continue
        media.rtp.codecs = [c for c in media.rtp.codecs if c.payloadType != red]
        media.rtp.codecs.insert(
            0,
            RTCRtpCodecParameters(
                mimeType=RED_MIME,
                clockRate=48000,
                channels=2,
                payloadType=red,
                parameters={f"{opus}/{opus}": None},
            ),
        )
        media.fmt = [red] + [f for f in media.fmt if f != red]
    return str(description)
