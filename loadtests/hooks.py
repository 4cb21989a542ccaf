"""The load generator's only touches of aiortc's private parts (aiortc 1.16.0).

``media/_aiortc.py`` holds the server's; these two are the benchmark's own, kept in one place
for the same reason (they belong next to the server's, with a contract test, once
``media/_aiortc.py`` can take them):

* ``RTCDtlsTransport._send_rtp(data)`` is the coroutine every outgoing RTP and RTCP packet of a
  peer connection passes through, already serialized; it SRTP-protects and hands the datagram
  to aioice synchronously. Wrapping it per instance gives the exact moment each RTP payload
  left the teacher.
* ``RTCRtpSender._send_keyframe()`` is what a received PLI/FIR calls (meant for aiortc's own
  encoder). Replacing it per instance lets the pre-encoded clip answer with a keyframe.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCDtlsTransport, RTCRtpSender

__all__ = ["on_keyframe_request", "tap_sent_rtp"]


def tap_sent_rtp(dtls: RTCDtlsTransport, callback: Callable[[bytes], None]) -> None:
    """Call ``callback(rtp_or_rtcp_bytes)`` right after each packet was sent on ``dtls``."""
    original = dtls._send_rtp

    async def send_rtp(data: bytes) -> None:
        await original(data)
        callback(data)

    dtls._send_rtp = send_rtp  # type: ignore[method-assign]


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback()`` instead of aiortc's encoder hook when a PLI or FIR arrives."""
    sender._send_keyframe = callback  # type: ignore[method-assign]
