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
* ``RTCRtpReceiver._handle_rtp_packet(packet, arrival_time_ms)`` is where aiortc hands a parsed
  RTP packet to its depacketizer (used only by load-test peers, which count without decoding).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import aioice.ice
from aiortc import RTCDtlsTransport, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RtpPacket

__all__ = [
    "ABS_SEND_TIME_ID",
    "DatagramHandler",
    "dtls_transport_of",
    "hook_datagrams",
    "ice_connection_of",
    "mute_sender",
    "negotiated_codecs",
    "negotiated_header_extensions",
    "rx_srtp",
    "selected_pair",
    "sender_ssrc",
    "set_host_addresses",
    "set_sender_msid",
    "tap_receiver_rtp",
    "tx_srtp",
]

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
