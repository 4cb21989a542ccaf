"""Transport-wide congestion control in the subscribe SDP, which aiortc does not negotiate.

aiortc 1.16 offers two RTP header extensions for video (``sdes:mid``, ``abs-send-time``) and
REMB feedback; it knows nothing of transport-wide sequence numbers
(draft-holmer-rmcat-transport-wide-cc-extensions-01), which every current browser sends
feedback for and which the server's downlink estimate (``media.bwe``) is built on. The server is
the offerer on subscribe connections, so it adds, to every audio and video section of its
offer, the extension (RFC 8285 ``a=extmap``, one id for the whole BUNDLE group) and the
``transport-cc`` RTCP feedback type for each media codec (RFC 4585 ``a=rtcp-fb``). A browser
that supports it answers with the same ``a=extmap`` line in the sections where it will send
feedback; ``answered_transport_cc`` reads which ones from the answer's text. aiortc ignores the
extra lines in both directions (it keeps only extensions it knows), so its own state is not
touched; the SFU writes the sequence numbers itself when it sends (``SubscribeTransport``).

This works on SDP text — the offer aiortc generates and the answer the client sends — never on
aiortc's objects, and the offer keeps every line aiortc wrote.
"""

from __future__ import annotations

import re

TRANSPORT_CC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
TRANSPORT_CC_ID = 5
"""The extension id the server offers (aiortc uses 1–3 for its own extensions)."""

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/")
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\S+)? (\S+)")
_MID = re.compile(r"^a=mid:(\S+)")
_NO_FEEDBACK = frozenset({"rtx", "red", "ulpfec", "flexfec-03", "cn", "telephone-event"})


def offer_transport_cc(sdp: str, ext_id: int = TRANSPORT_CC_ID) -> str:
    """The offer with transport-wide congestion control offered in every audio/video section."""
    lines = sdp.splitlines()
    out: list[str] = []
    section = ""
    added_ext = False
    for line in lines:
        if line.startswith("m="):
            section = line[2:].split(" ", 1)[0]
            added_ext = False
            out.append(line)
            continue
        if section in ("audio", "video"):
            if line.startswith("a=extmap:") and TRANSPORT_CC_URI in line:
                added_ext = True  # already there (an aiortc that learnt it)
            m = _RTPMAP.match(line)
            if m is not None:
                out.append(line)
                if m.group(2).lower() not in _NO_FEEDBACK:
                    out.append(f"a=rtcp-fb:{m.group(1)} transport-cc")
                continue
            if not added_ext and line.startswith("a=mid:"):
                # after aiortc's own a=extmap lines, which precede a=mid
                out.append(f"a=extmap:{ext_id} {TRANSPORT_CC_URI}")
                added_ext = True
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def answered_transport_cc(sdp: str) -> dict[str, int]:
    """mid → the transport-wide-cc extension id, for each section of an answer that accepted it
    (and has its codecs' ``transport-cc`` feedback, or at least the extension: browsers that
    send feedback for the extension alone exist)."""
    found: dict[str, int] = {}
    mid: str | None = None
    ext: int | None = None
    active = False

    def close() -> None:
        if mid is not None and ext is not None and active:
            found[mid] = ext

    for line in sdp.splitlines():
        if line.startswith("m="):
            close()
            parts = line[2:].split(" ")
            active = len(parts) > 1 and parts[0] in ("audio", "video") and parts[1] != "0"
            mid = None
            ext = None
            continue
        m = _MID.match(line)
        if m is not None:
            mid = m.group(1)
            continue
        m = _EXTMAP.match(line)
        if m is not None and m.group(2) == TRANSPORT_CC_URI:
            value = int(m.group(1))
            if 1 <= value <= 14:  # one-byte header form (RFC 8285 §4.2)
                ext = value
    close()
    return found
