"""Transport-wide congestion control at the load-test students, as a browser does it.

Every current browser accepts the transport-wide sequence number extension
(draft-holmer-rmcat-transport-wide-cc-extensions-01) the server offers on subscribe connections
and answers with RTCP transport-wide feedback; the server's downlink estimate
(``media.bwe.DownlinkEstimator``), its pacer and its allocation follow that feedback. aiortc
knows neither, so without this module the benchmark's students would leave the server on its
REMB/receiver-report fallback — a path no real lesson takes.

Three parts, each as small as a browser's:

* ``accept_transport_cc`` edits the answer's SDP text (aiortc ignores the extra lines): in each
  audio/video section whose offer carried the extension, the offer's ``a=extmap`` line is
  echoed (RFC 8285 §5: the answerer keeps the offered id) and ``a=rtcp-fb:<pt> transport-cc``
  is added for each media codec (RFC 4585 §4.2).
* ``FeedbackRecorder.on_rtp`` reads the 16-bit sequence number from the one-byte header
  extension (RFC 8285 §4.2) of each received packet's raw bytes — aiortc's ``RtpPacket`` drops
  extensions it did not negotiate; SRTP leaves the header in clear (RFC 3711 §3.1), so the
  protected datagram will do — and keeps its arrival time under the extended (unwrapped)
  number.
* ``FeedbackRecorder.feedback`` builds one feedback packet (``media.rtp.build_transport_feedback``)
  covering every sequence number since the previous one, those not received as such. The
  students call it every 50–100 ms, like Chromium's default feedback interval; a packet that
  arrives after the feedback covering it was sent is not reported again (Chromium does the
  same when not in "send periodic feedback with history" mode).
"""

from __future__ import annotations

import re
from time import perf_counter

from media.extensions import TRANSPORT_CC_URI
from media.rtp import TWCC_MAX_STATUS_COUNT, build_transport_feedback

__all__ = ["FEEDBACK_INTERVAL", "FeedbackRecorder", "accept_transport_cc"]

FEEDBACK_INTERVAL = (0.05, 0.1)
"""Seconds between two feedback packets of one student (drawn uniformly per interval)."""

_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\S+)? (\S+)")
_MID = re.compile(r"^a=mid:(\S+)")
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/")
_NO_FEEDBACK = frozenset({"rtx", "red", "ulpfec", "flexfec-03", "cn", "telephone-event"})


def _sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    """The session lines and the lines of each media section (each starting with ``m=``)."""
    session: list[str] = []
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            session.append(line)
    return session, sections


def _mid_of(section: list[str]) -> str | None:
    for line in section:
        m = _MID.match(line)
        if m is not None:
            return m.group(1)
    return None


def _offered(offer: str) -> dict[str, tuple[int, str]]:
    """mid → (id, the ``a=extmap`` line) of each offer section that carries transport-cc."""
    found: dict[str, tuple[int, str]] = {}
    for section in _sections(offer)[1]:
        mid = _mid_of(section)
        if mid is None:
            continue
        for line in section:
            m = _EXTMAP.match(line)
            if m is not None and m.group(2) == TRANSPORT_CC_URI:
                found[mid] = (int(m.group(1)), line)
                break
    return found


def accept_transport_cc(offer: str, answer: str) -> tuple[str, int | None]:
    """The answer accepting transport-wide cc in every active audio/video section where the
    offer has it, and the extension id (that of the first such section: one id per BUNDLE
    group, RFC 8843 §9.1), or ``None`` when the offer has it nowhere."""
    offered = _offered(offer)
    if not offered:
        return answer, None
    session, sections = _sections(answer)
    out = list(session)
    ext_id: int | None = None
    for section in sections:
        parts = section[0][2:].split(" ")
        mid = _mid_of(section)
        accept = (
            len(parts) > 1
            and parts[0] in ("audio", "video")
            and parts[1] != "0"
            and mid is not None
            and mid in offered
        )
        if not accept:
            out.extend(section)
            continue
        assert mid is not None
        offered_id, extmap = offered[mid]
        if ext_id is None:
            ext_id = offered_id
        has_ext = any(
            (m := _EXTMAP.match(line)) is not None and m.group(2) == TRANSPORT_CC_URI
            for line in section
        )
        has_fb = {line for line in section if line.startswith("a=rtcp-fb:")}
        for line in section:
            if not has_ext and line.startswith("a=mid:"):
                out.append(extmap)
                has_ext = True
            out.append(line)
            m = _RTPMAP.match(line)
            if m is not None and m.group(2).lower() not in _NO_FEEDBACK:
                fb = f"a=rtcp-fb:{m.group(1)} transport-cc"
                if fb not in has_fb:
                    out.append(fb)
        if not has_ext:  # a section without a=mid is not accepted above; kept for safety
            out.append(extmap)
    return "\r\n".join(out) + "\r\n", ext_id


class FeedbackRecorder:
    """Arrival times of one connection's packets by transport-wide sequence number, turned
    into feedback packets.

    ``on_rtp`` runs once per received packet, in the event loop's datagram path of a load
    generator that shares the machine with the server: it does a few index operations and one
    dict store, nothing else.
    """

    __slots__ = (
        "_arrivals",
        "_highest",
        "_next",
        "ext_id",
        "feedback_count",
        "media_ssrc",
        "received",
        "reported",
        "sender_ssrc",
    )

    def __init__(self, ext_id: int, sender_ssrc: int) -> None:
        if not 1 <= ext_id <= 14:
            raise ValueError("one-byte header extension ids are 1 … 14 (RFC 8285 §4.2)")
        self.ext_id = ext_id
        self.sender_ssrc = sender_ssrc
        self.media_ssrc = 0
        """The SSRC of the first packet with a sequence number (the feedback's media SSRC)."""
        self.feedback_count = 0
        """Feedback packets built so far (their 8-bit counter wraps)."""
        self.received = 0
        """Packets that carried a transport-wide sequence number."""
        self.reported = 0
        """Sequence numbers covered by feedback so far (received or not)."""
        self._arrivals: dict[int, float] = {}
        self._highest = -1
        self._next = -1

    def sequence_number(self, data: bytes) -> int | None:
        """The transport-wide sequence number of a raw RTP packet, if it carries one."""
        b0 = data[0]
        if not b0 & 0x10:
            return None
        pos = 12 + 4 * (b0 & 0x0F)
        n = len(data)
        if pos + 4 > n or data[pos] != 0xBE or data[pos + 1] != 0xDE:
            return None
        end = pos + 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
        if end > n:
            return None
        pos += 4
        ext_id = self.ext_id
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            eid = b >> 4
            if eid == 15:  # RFC 8285 §4.2: stop parsing
                return None
            length = (b & 0x0F) + 1
            if eid == ext_id:
                if length != 2 or pos + 3 > end:
                    return None
                return (data[pos + 1] << 8) | data[pos + 2]
            pos += 1 + length
        return None

    def on_rtp(self, data: bytes, arrival: float | None = None) -> None:
        """Record one received RTP packet (unprotected bytes) that arrived at ``arrival``
        (seconds, any monotonic clock; default ``time.perf_counter()`` now)."""
        if arrival is None:
            arrival = perf_counter()
        seq = self.sequence_number(data)
        if seq is None:
            return
        highest = self._highest
        if highest < 0:
            ext = seq
            self._next = seq
            self.media_ssrc = int.from_bytes(data[8:12], "big")
        else:
            delta = (seq - highest) & 0xFFFF
            ext = highest + (delta - 0x10000 if delta >= 0x8000 else delta)
            if ext < self._next:
                return  # already reported as not received
        self.received += 1
        self._arrivals[ext] = arrival
        if ext > highest:
            self._highest = ext

    def feedback(self) -> bytes | None:
        """One feedback packet for every sequence number since the last one up to the highest
        received, or ``None`` when nothing new arrived.

        More than ``TWCC_MAX_STATUS_COUNT`` numbers (a stall of many seconds) are cut to the
        newest ones; a report whose received packets lie more than 8 s apart (which one
        feedback packet cannot express) is dropped as a browser would split it — the
        estimator sees a gap either way.
        """
        highest = self._highest
        first = self._next
        if highest < 0 or highest < first:
            return None
        arrivals = self._arrivals
        if highest - first + 1 > TWCC_MAX_STATUS_COUNT:
            first = highest - TWCC_MAX_STATUS_COUNT + 1
        times = [arrivals.pop(s, None) for s in range(first, highest + 1)]
        if arrivals:
            arrivals.clear()  # older than the window kept above
        self._next = highest + 1
        self.reported += len(times)
        try:
            packet = build_transport_feedback(
                self.sender_ssrc, self.media_ssrc, first & 0xFFFF, self.feedback_count & 0xFF, times
            )
        except ValueError:
            return None
        self.feedback_count += 1
        return packet
