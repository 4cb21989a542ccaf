"""Retransmission in its own stream (RFC 4588): the RTX payload format, as pure functions.

With ``rtx`` negotiated (``a=rtpmap:<pt> rtx/90000`` with ``a=fmtp:<pt> apt=<media pt>``, the
RTX stream's SSRC paired with the media SSRC by ``a=ssrc-group:FID <media> <rtx>``, RFC 5576
§4), a retransmitted packet travels on the RTX SSRC with the RTX payload type, its own
contiguous sequence numbers and the original's timestamp and marker; its payload is the
original sequence number (OSN, 2 bytes, network order) followed by the original payload
(RFC 4588 §4). The receiver can then tell a retransmission from the original stream's packets
— its loss statistics and the transport-wide feedback the downlink estimate is built on stay
about the media stream — and a sender can pad on the RTX stream (probing) without touching the
media stream's sequence numbers, which libwebrtc does and §4 allows (a packet with no payload
carries no OSN).

NACKs keep naming the media SSRC and the original sequence numbers (§6.3): only the repair
moves to the RTX stream.

``unwrap`` reads untrusted bytes from a publisher: one bounded pass over the header, and
``None`` for anything malformed — extensions or padding that run past the packet, or a payload
too short to hold an OSN and some original payload. It never raises.
"""

from __future__ import annotations

OSN_SIZE = 2
"""Bytes of the original sequence number at the start of an RTX payload."""
PADDING_ONLY = b""
"""What ``unwrap`` answers for an RTX packet that carries nothing (padding, i.e. a probe)."""


def payload(osn: int, original_payload: bytes) -> bytes:
    """The RTX payload retransmitting ``original_payload``, whose sequence number (as the
    receiver knows it) is ``osn``."""
    return (osn & 0xFFFF).to_bytes(OSN_SIZE, "big") + original_payload


def unwrap(packet: bytes, media_payload_type: int, media_ssrc: int) -> bytes | None:
    """The original packet an RTX ``packet`` carries: its header (CSRCs and extensions kept,
    marker and timestamp as sent) with the media payload type, the OSN as sequence number and
    the media SSRC, then the original payload, without the RTX packet's padding.

    ``PADDING_ONLY`` for a packet with no payload; ``None`` when malformed (including a payload
    of one byte, or an OSN with no payload after it: nothing a decoder could use)."""
    n = len(packet)
    if n < 12 or packet[0] >> 6 != 2:
        return None
    b0 = packet[0]
    offset = 12 + ((b0 & 0x0F) << 2)
    if b0 & 0x10:
        if n < offset + 4:
            return None
        offset += 4 + (((packet[offset + 2] << 8) | packet[offset + 3]) << 2)
    end = n
    if b0 & 0x20:
        pad = packet[-1]
        if pad == 0:
            return None
        end = n - pad
    if offset > end:
        return None
    if end == offset:
        return PADDING_ONLY
    if end - offset <= OSN_SIZE:
        return None
    head = bytearray(packet[:offset])
    head[0] = b0 & ~0x20 & 0xFF
    head[1] = (packet[1] & 0x80) | (media_payload_type & 0x7F)
    head[2] = packet[offset]
    head[3] = packet[offset + 1]
    head[8:12] = (media_ssrc & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(head) + packet[offset + OSN_SIZE : end]
