"""Contract tests: every fact about aiortc/aioice internals that media/_aiortc.py relies on.

If one of these fails after an upgrade, the SFU would misbehave quietly — fix _aiortc.py (and
only it) before moving the version pin.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import aioice.ice
import aioice.stun
import pytest
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import HEADER_EXTENSIONS

from media import _aiortc
from tests.peers import loopback_pc


def test_pinned_versions() -> None:
    assert version("aiortc") == "1.16.0"
    assert version("aioice") == "0.13.0"


def test_aioice_looks_up_host_addresses_through_the_module_at_call_time() -> None:
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    assert "get_host_addresses(" in source
    assert "get_host_addresses" in vars(aioice.ice)


def test_aioice_hands_datagrams_to_stun_protocol_datagram_received() -> None:
    assert "datagram_received" in vars(aioice.ice.StunProtocol)
    source = inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert "data_received" in source and "request_received" in source


async def test_gathering_only_on_configured_addresses_and_hooking_sockets() -> None:
    _aiortc.set_host_addresses(["127.0.0.1"])
    pc = loopback_pc()
    pc.addTransceiver("audio", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    dtls = _aiortc.dtls_transport_of(pc)
    assert isinstance(dtls, RTCDtlsTransport)
    connection = _aiortc.ice_connection_of(dtls)
    hosts = {c.host for c in connection.local_candidates}
    assert hosts == {"127.0.0.1"}
    seen: list[bytes] = []
    hooked = _aiortc.hook_datagrams(dtls, lambda original: lambda d, a: seen.append(d))
    assert hooked == len(connection._protocols) >= 1
    connection._protocols[0].datagram_received(b"\x80hello", ("127.0.0.1", 9))
    assert seen == [b"\x80hello"]
    assert _aiortc.selected_pair(dtls) is None
    assert _aiortc.rx_srtp(dtls) is None and _aiortc.tx_srtp(dtls) is None
    await pc.close()


def test_dtls_transport_keeps_srtp_sessions_in_known_attributes() -> None:
    source = inspect.getsource(RTCDtlsTransport._setup_srtp)
    assert "self._rx_srtp = Session(" in source
    assert "self._tx_srtp = Session(" in source


def test_sender_starts_its_loops_through_instance_lookups() -> None:
    source = inspect.getsource(RTCRtpSender.send)
    assert "self._run_rtp(" in source and "self._run_rtcp()" in source
    stop = inspect.getsource(RTCRtpSender.stop)
    assert "__rtp_started" in stop and "__rtcp_exited" in stop


async def test_muted_sender_sends_nothing_and_stops_cleanly() -> None:
    pc = loopback_pc()
    transceiver = pc.addTransceiver("video", direction="sendonly")
    sender = transceiver.sender
    _aiortc.mute_sender(sender)
    rtp = sender._run_rtp(None)  # type: ignore[arg-type]
    rtcp = sender._run_rtcp()
    tasks = [asyncio.ensure_future(rtp), asyncio.ensure_future(rtcp)]
    await asyncio.sleep(0.05)
    assert sender._RTCRtpSender__rtp_started.is_set()  # type: ignore[attr-defined]
    assert sender._RTCRtpSender__rtcp_started.is_set()  # type: ignore[attr-defined]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks)
    assert sender._RTCRtpSender__rtp_exited.is_set()  # type: ignore[attr-defined]
    await pc.close()


async def test_sender_msid_and_ssrc_appear_in_the_offer() -> None:
    _aiortc.set_host_addresses(["127.0.0.1"])
    pc = loopback_pc()
    transceiver = pc.addTransceiver("video", direction="sendonly")
    _aiortc.set_sender_msid(transceiver.sender, "p_stream", "pr_track")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    assert "a=msid:p_stream pr_track" in sdp
    assert f"a=ssrc:{_aiortc.sender_ssrc(transceiver.sender)} " in sdp
    await pc.close()


def test_abs_send_time_is_offered_for_video() -> None:
    ids = {e.uri: e.id for e in HEADER_EXTENSIONS["video"]}
    assert ids[_aiortc.ABS_SEND_TIME_URI] == _aiortc.ABS_SEND_TIME_ID


def test_transceiver_keeps_negotiated_codecs_and_extensions() -> None:
    from aiortc import RTCRtpTransceiver

    init = inspect.getsource(RTCRtpTransceiver.__init__)
    assert "self._codecs" in init and "self._headerExtensions" in init


def test_receiver_hands_parsed_packets_to_handle_rtp_packet() -> None:
    params = list(inspect.signature(RTCRtpReceiver._handle_rtp_packet).parameters)
    assert params == ["self", "packet", "arrival_time_ms"]
    source = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "receiver._handle_rtp_packet(packet" in source


# -- consent freshness (keep_consent) --------------------------------------------------------


def test_aioice_consent_is_what_keep_consent_replaces() -> None:
    # The behaviour replaced: one try of 0.5 s every 5 s, closed after 6 failures.
    assert aioice.ice.CONSENT_INTERVAL == 5
    assert aioice.ice.CONSENT_FAILURES == 6
    assert aioice.stun.RETRY_RTO == 0.5
    source = inspect.getsource(aioice.ice.Connection.query_consent)
    assert "retransmissions=0" in source
    # How an expiry closes the connection (keep_consent does the same).
    assert "self._query_consent_task = None" in source and "await self.close()" in source


def test_aioice_starts_consent_through_an_instance_lookup_after_ice_completes() -> None:
    connect = inspect.getsource(aioice.ice.Connection.connect)
    start = "self._query_consent_task = asyncio.create_task(self.query_consent())"
    assert start in connect
    assert connect.index('raise ConnectionError("ICE negotiation failed")') < connect.index(start)
    close = inspect.getsource(aioice.ice.Connection.close)
    assert "self._query_consent_task.cancel()" in close
    assert "self._closing = True" in close
    assert "self._emit_event(ConnectionClosed())" in close
    init = inspect.getsource(aioice.ice.Connection.__init__)
    assert "self._query_consent_task" in init and "self._closing = False" in init


def test_aioice_matches_responses_by_transaction_id_in_protocol_transactions() -> None:
    received = inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert "message.transaction_id in self.transactions" in received
    assert "transaction.response_received(message, addr)" in received
    assert "self.receiver.request_received(message, addr, self)" in received
    assert "self.transactions: dict[bytes, stun.Transaction] = {}" in inspect.getsource(
        aioice.ice.StunProtocol.__init__
    )
    params = list(inspect.signature(aioice.ice.StunProtocol.send_stun).parameters)
    assert params == ["self", "message", "addr"]
    params = list(inspect.signature(aioice.ice.Connection.build_request).parameters)
    assert params == ["self", "pair", "nominate"]
    assert callable(aioice.stun.Message.add_message_integrity)
    assert callable(aioice.stun.Message.check_message_integrity)
    assert aioice.stun.Class.RESPONSE
    # Answering the remote's checks does not depend on the consent task.
    assert "query_consent" not in inspect.getsource(aioice.ice.Connection.request_received)


def test_aiortc_fails_a_completed_ice_transport_when_aioice_closes() -> None:
    from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport

    monitor = inspect.getsource(RTCIceTransport._monitor)
    assert "isinstance(event, ConnectionClosed)" in monitor
    assert 'self.__setState("failed")' in monitor
    assert "self._connection = gatherer._connection" in inspect.getsource(RTCIceTransport.__init__)
    init = inspect.getsource(RTCIceGatherer.__init__)
    assert "self._connection = Connection(" in init
    assert "components" not in init  # one component: the nominated pair is _nominated[1]


# -- RED (RFC 2198) around aiortc's SDP: see "Codecs aiortc does not know" in media/_aiortc.py --


def test_aiortc_negotiates_no_red_of_its_own() -> None:
    from aiortc.codecs import CODECS

    assert all(c.mimeType.lower() != _aiortc.RED_MIME for c in CODECS["audio"])


def test_aiortc_sdp_parses_and_writes_red_fmtp_unchanged() -> None:
    from pathlib import Path

    from aiortc.sdp import SessionDescription

    text = (Path(__file__).parent.parent / "signaling/fixtures/chrome-offer.sdp").read_text()
    description = SessionDescription.parse(text)
    audio = next(m for m in description.media if m.kind == "audio")
    red = next(c for c in audio.rtp.codecs if c.mimeType.lower() == _aiortc.RED_MIME)
    assert red.parameters == {"111/111": None}
    assert _aiortc.red_type_of(audio) == (red.payloadType, 111)
    again = str(description)
    assert f"a=rtpmap:{red.payloadType} red/48000/2" in again
    assert f"a=fmtp:{red.payloadType} 111/111" in again


async def test_local_description_keeps_added_red_and_remote_red_is_not_negotiated() -> None:
    from aiortc import RTCSessionDescription
    from aiortc.sdp import SessionDescription

    _aiortc.set_host_addresses(["127.0.0.1"])
    offerer, answerer = loopback_pc(), loopback_pc()
    sending = offerer.addTransceiver("audio", direction="sendonly")
    offer = await offerer.createOffer()
    with_red = _aiortc.with_red(offer.sdp, lambda media: 63)
    await offerer.setLocalDescription(RTCSessionDescription(with_red, "offer"))
    local = SessionDescription.parse(offerer.localDescription.sdp).media[0]
    assert local.fmt[:2] == [63, 96]
    assert _aiortc.red_type_of(local) == (63, 96)
    assert _aiortc.negotiated_codecs(sending)[0].mimeType == "audio/opus"

    # An aiortc answerer drops red; an answer that keeps it (as a browser's does) is accepted,
    # and aiortc still negotiates Opus only, so RED is read from the answer's text.
    await answerer.setRemoteDescription(offerer.localDescription)
    answer = await answerer.createAnswer()
    assert _aiortc.red_type_of(SessionDescription.parse(answer.sdp).media[0]) is None
    browser_like = _aiortc.with_red(answer.sdp, lambda media: 63, opus_fec=True)
    assert "a=fmtp:96 useinbandfec=1" in browser_like
    await answerer.setLocalDescription(RTCSessionDescription(browser_like, "answer"))
    await offerer.setRemoteDescription(answerer.localDescription)
    negotiated = [c.mimeType.lower() for c in _aiortc.negotiated_codecs(sending)]
    assert negotiated[0] == "audio/opus" and _aiortc.RED_MIME not in negotiated
    answered = SessionDescription.parse(offerer.remoteDescription.sdp).media[0]
    assert _aiortc.red_type_of(answered) == (63, 96)
    await offerer.close()
    await answerer.close()


def test_dtls_transport_sends_every_packet_through_send_rtp() -> None:
    source = inspect.getsource(RTCRtpSender)
    assert "await self.transport._send_rtp(packet_bytes)" in source
    params = list(inspect.signature(RTCDtlsTransport._send_rtp).parameters)
    assert params == ["self", "data"]


def test_dtls_transport_hands_unprotected_rtp_to_handle_rtp_data_before_routing() -> None:
    params = list(inspect.signature(RTCDtlsTransport._handle_rtp_data).parameters)
    assert params == ["self", "data", "arrival_time_ms"]
    loop = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in loop
    handle = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "self._rtp_router.route_rtp(packet)" in handle


def test_rtp_packet_keeps_only_negotiated_extensions() -> None:
    """Why load-test students read transport-wide sequence numbers from the raw bytes: aiortc
    never negotiates the extension, and its parser keeps only what was negotiated."""
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from media.extensions import TRANSPORT_CC_URI

    offered = [e.uri for kind in ("audio", "video") for e in HEADER_EXTENSIONS[kind]]
    assert TRANSPORT_CC_URI not in offered

    # one-byte form: id 5, two bytes (0x1234), one byte of padding
    raw = bytes([0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xBE, 0xDE, 0, 1, 0x51, 0x12, 0x34, 0])
    packet = RtpPacket.parse(raw + b"payload", HeaderExtensionsMap())
    assert packet.payload == b"payload"
    assert packet.extensions.transport_sequence_number is None


async def test_send_rtcp_delivers_feedback_aiortc_does_not_know() -> None:
    from aiortc import RTCSessionDescription

    from media.rtp import build_transport_feedback, parse_rtcp

    _aiortc.set_host_addresses(["127.0.0.1"])
    offerer, answerer = loopback_pc(), loopback_pc()
    try:
        offerer.addTransceiver("video", direction="sendonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        assert offerer.localDescription is not None
        await answerer.setRemoteDescription(offerer.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        sending = _aiortc.dtls_transport_of(answerer)
        feedback = build_transport_feedback(7, 8, 65534, 3, [1.0, None, 1.01])
        with pytest.raises(ConnectionError):  # DTLS cannot be up: the offerer has no answer
            await _aiortc.send_rtcp(sending, feedback)
        receiving = _aiortc.dtls_transport_of(offerer)
        got: list[bytes] = []
        original = receiving._handle_rtcp_data

        async def handle(data: bytes) -> None:
            got.append(data)
            await original(data)

        receiving._handle_rtcp_data = handle  # type: ignore[method-assign]
        assert answerer.localDescription is not None
        await offerer.setRemoteDescription(
            RTCSessionDescription(answerer.localDescription.sdp, "answer")
        )
        for _ in range(200):
            if answerer.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        assert answerer.connectionState == "connected"
        await _aiortc.send_rtcp(sending, feedback)
        for _ in range(100):
            if feedback in got:
                break
            await asyncio.sleep(0.02)
        assert feedback in got  # unprotected on the far side, byte for byte
        (parsed,) = [fb for fb in parse_rtcp(feedback) if fb.kind == "twcc"]
        assert parsed.twcc is not None and parsed.twcc.base_seq == 65534
    finally:
        await offerer.close()
        await answerer.close()


async def test_rtx_preference_offers_rtx_with_the_senders_fid_group_and_is_negotiated() -> None:
    from aiortc.sdp import SessionDescription

    _aiortc.set_host_addresses(["127.0.0.1"])
    offerer, answerer = loopback_pc(), loopback_pc()
    sending = offerer.addTransceiver("video", direction="sendonly")
    vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
    (rtx,) = _aiortc.rtx_capabilities()
    sending.setCodecPreferences([*vp8, rtx])
    await offerer.setLocalDescription(await offerer.createOffer())
    (media,) = SessionDescription.parse(offerer.localDescription.sdp).media
    names = [(c.name.lower(), c.parameters) for c in media.rtp.codecs]
    assert names == [("vp8", {}), ("rtx", {"apt": media.rtp.codecs[0].payloadType})]
    main, rtx_ssrc = _aiortc.sender_ssrc(sending.sender), _aiortc.sender_rtx_ssrc(sending.sender)
    assert [(g.semantic, [int(i) for i in g.items]) for g in media.ssrc_group] == [
        ("FID", [main, rtx_ssrc])
    ]
    assert main != rtx_ssrc

    # An answerer's transceiver (created before the offer is applied, as the publish side
    # does) preferring VP8 and rtx answers both; without rtx among its preferences it answers
    # VP8 alone. The offerer then holds the answered rtx in _codecs.
    receiving = answerer.addTransceiver("video", direction="recvonly")
    receiving.setCodecPreferences([*vp8, rtx])
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    rtx_type = _aiortc.rtx_payload_type(_aiortc.negotiated_codecs(receiving))
    assert rtx_type == media.rtp.codecs[1].payloadType
    await offerer.setRemoteDescription(answerer.localDescription)
    assert _aiortc.rtx_payload_type(_aiortc.negotiated_codecs(sending)) == rtx_type

    plain = loopback_pc()
    plain_receiving = plain.addTransceiver("video", direction="recvonly")
    plain_receiving.setCodecPreferences(vp8)
    await plain.setRemoteDescription(offerer.localDescription)
    await plain.setLocalDescription(await plain.createAnswer())
    assert _aiortc.rtx_payload_type(_aiortc.negotiated_codecs(plain_receiving)) is None
    assert " rtx/" not in plain.localDescription.sdp
    for pc in (offerer, answerer, plain):
        await pc.close()


def test_sender_keeps_its_rtx_ssrc_in_rtx_ssrc() -> None:
    source = inspect.getsource(RTCRtpSender.__init__)
    assert "self._rtx_ssrc = random32()" in source
