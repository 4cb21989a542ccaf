"""Check SDP from a client before anything else parses it.

aiortc's SDP parser (``aiortc.sdp.SessionDescription.parse``) trusts its input: on garbage it
raises ``AssertionError``, ``IndexError``, ``KeyError``, ``AttributeError``, ``StopIteration``
or ``ValueError`` from deep inside, and some inputs it accepts silently mean something else to a
browser. So every SDP a client sends goes through this module first, and is refused here with a
stable ``bad_sdp`` (or ``unsupported_codec`` / ``too_many_tracks``) and a precise message, or is
known to be well-formed for aiortc 1.16 and for the SFU:

* The grammar is RFC 8866 (SDP): ``<type>=<value>`` lines, ``v=0`` then ``o=`` then ``s=``, one
  lower-case type letter, the session section then media sections. RFC 8866 §5 says a parser
  must ignore a whole description that has a type letter it does not know: it is refused.
  ``k=`` (keys in clear text, obsolete in RFC 8866 §5.12) is refused. Lines end in CRLF (the
  RFC) or LF (tolerated, as every browser parser does); a bare CR is refused because aiortc
  splits lines with ``str.splitlines``, which would cut there. Only printable ASCII is allowed
  except in the session name (``s=``), which may hold any non-control Unicode character.
* Media is ``audio`` or ``video`` over DTLS-SRTP (RFC 5764, ``UDP/TLS/RTP/SAVPF``); data
  channels (``m=application``) and plain RTP are refused.
* ICE: every media section has ``a=ice-ufrag`` and ``a=ice-pwd`` with the lengths and
  characters of RFC 8839 §5.4, and its ``a=candidate`` lines follow RFC 8839 §5.1.
* DTLS: a ``a=fingerprint`` with sha-256 or stronger whose length matches the hash (RFC 8122
  §5, RFC 8842 §5.1) and an ``a=setup`` of ``actpass``/``active``/``passive`` (RFC 8842 §5.2;
  ``holdconn`` is refused; an answer must say ``active`` or ``passive``, RFC 8842 §5.3).
* ``a=rtcp-mux`` (RFC 5761; payload types 72–76 collide with RTCP and are refused, §4),
  ``a=mid`` (RFC 8843), one ``a=group:BUNDLE`` covering every active section because lophoc
  runs one transport per peer connection, unique SSRCs across sections (RFC 8843 §9.1: the
  SFU finds a producer by SSRC), one URI per header-extension id across the bundle
  (RFC 8285, RFC 8843 §9.2).
* ICE and DTLS attributes are read from the media section, else from the session level, and
  ``a=rtcp-mux`` from the media section only — exactly as aiortc 1.16 reads them, for every
  media section including rejected (port 0) ones, because aiortc checks them all. RFC 8843
  §7.3.1 lets an answerer omit them in bundled sections after the first; aiortc refuses such an
  answer with a bare ``ValueError``, so the guard refuses it first, with a message.
* Simulcast (``a=simulcast``, RFC 8853, or an ``a=ssrc-group:SIM``) is refused for now.

Things that are valid SDP but that aiortc 1.16 cannot parse are refused too, each with a note:
``a=extmap`` with extension attributes, ``a=ssrc`` without ``:value``, ``a=fmtp`` for a payload
type without ``a=rtpmap``, non-integer values of the integer ``fmtp`` parameters aiortc reads.

The result is an ``SdpSummary`` (kind, mid, direction, codecs, SSRCs, header extensions and
candidates of each media section) that handlers and the media layer use without parsing again.
``parse_candidate`` and ``filter_candidates`` serve trickled candidates and the ones inside an
SDP (BROWSER-TESTING.md: ``.local`` mDNS names, TCP and RTCP-component candidates are dropped,
and so is anything outside the networks the server accepts).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, cast

from .errors import ErrorCode, SignalingError
from .limits import DEFAULT_LIMITS, Limits

__all__ = [
    "Candidate",
    "Codec",
    "Direction",
    "HeaderExtension",
    "MediaSection",
    "SdpSummary",
    "SsrcGroup",
    "candidate_is_usable",
    "check_answer",
    "check_offer",
    "filter_candidates",
    "parse_candidate",
]

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
Kind = Literal["audio", "video"]

# --- grammar pieces (RFC 8866 §9, RFC 8839 §5) --------------------------------------------------

_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"  # RFC 8866 token
_ICE_CHAR = r"[A-Za-z0-9+/]"  # RFC 8839 ice-char
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_LINE = re.compile(r"([a-z])=(.*)", re.DOTALL)
_TOKEN_RE = re.compile(_TOKEN)
_DIGITS = re.compile(r"[0-9]+")

_ORIGIN = re.compile(r"(\S+) ([0-9]{1,20}) ([0-9]{1,20}) IN IP[46] (\S+)")
_TIMING = re.compile(r"[0-9]{1,20} [0-9]{1,20}")
_CONNECTION = re.compile(r"IN IP[46] [^ ]+")  # exactly what aiortc's ipaddress_from_sdp accepts
_BANDWIDTH = re.compile(r"[A-Za-z0-9._-]+:[0-9]{1,10}")
_ICE_UFRAG = re.compile(_ICE_CHAR + r"{4,256}")
_ICE_PWD = re.compile(_ICE_CHAR + r"{22,256}")
_ICE_OPTIONS = re.compile(rf"{_ICE_CHAR}+(?: {_ICE_CHAR}+)*")
_FINGERPRINT = re.compile(r"(" + _TOKEN + r") ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*)")
_GROUP = re.compile(rf"({_TOKEN})((?: {_TOKEN})*)")
_MSID_SEMANTIC = re.compile(rf" ?{_TOKEN}(?: {_TOKEN})*")
_MSID = re.compile(rf"{_TOKEN}(?: {_TOKEN})?")
_RTPMAP = re.compile(r"([0-9]{1,3}) ([A-Za-z0-9][A-Za-z0-9._-]*)/([0-9]{1,7})(?:/([0-9]{1,2}))?")
_FMTP = re.compile(r"([0-9]{1,3}) (\S.*)")
_FMTP_INT_VALUE = re.compile(r"\s*[0-9]{1,9}\s*")
_RTCP_FB = re.compile(rf"([0-9]{{1,3}}|\*) ({_TOKEN})(?: (.+))?")
_EXTMAP = re.compile(r"([0-9]{1,3})(?:/(sendrecv|sendonly|recvonly|inactive))? (\S+)")
_SSRC = re.compile(rf"([0-9]{{1,10}}) ({_TOKEN}):(.*)")
_SSRC_GROUP = re.compile(rf"({_TOKEN})((?: [0-9]{{1,10}})+)")
_RTCP = re.compile(r"([0-9]{1,5})(?: (IN IP[46] [^ ]+))?")
_SMALL_INT = re.compile(r"[0-9]{1,9}")

_HASH_BYTES = {"sha-256": 32, "sha-384": 48, "sha-512": 64}  # "sha-256 or stronger"
_PROTOCOLS = frozenset({"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP", "RTP/SAVPF", "RTP/SAVP"})
_DIRECTIONS: frozenset[str] = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})
_SETUP_VALUES = frozenset({"actpass", "active", "passive"})
# fmtp parameters aiortc 1.16 converts with int() (aiortc.sdp.FMTP_INT_PARAMETERS)
_FMTP_INT_PARAMETERS = frozenset(
    {"apt", "max-fr", "max-fs", "maxplaybackrate", "minptime", "stereo", "useinbandfec"}
)
_RTCP_PAYLOAD_TYPES = range(72, 77)  # RFC 5761 §4: would be read as RTCP packet types 200–204

# Static payload types of RFC 3551 §6 (name, clock rate, channels): valid without a=rtpmap.
_STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int | None]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1),
    7: ("LPC", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    12: ("QCELP", 8000, 1),
    13: ("CN", 8000, 1),
    14: ("MPA", 90000, None),
    15: ("G728", 8000, 1),
    16: ("DVI4", 11025, 1),
    17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1),
    25: ("CelB", 90000, None),
    26: ("JPEG", 90000, None),
    28: ("nv", 90000, None),
    31: ("H261", 90000, None),
    32: ("MPV", 90000, None),
    33: ("MP2T", 90000, None),
    34: ("H263", 90000, None),
}

_SESSION_LETTERS = frozenset("viuepcbtrza")
_MEDIA_LETTERS = frozenset("icba")

# Attributes: how their value looks (None: a flag without value) and where they may appear.
_S, _M = "session", "media"


@dataclass(frozen=True, slots=True)
class _Rule:
    value: re.Pattern[str] | None
    where: frozenset[str]
    once: bool = False  # at most one per section (or per session level)


_RULES: dict[str, _Rule] = {
    # session-level
    "group": _Rule(_GROUP, frozenset({_S})),
    "msid-semantic": _Rule(_MSID_SEMANTIC, frozenset({_S})),
    "ice-lite": _Rule(None, frozenset({_S}), once=True),
    # session or media level (RFC 8839, 8842)
    "ice-ufrag": _Rule(_ICE_UFRAG, frozenset({_S, _M}), once=True),
    "ice-pwd": _Rule(_ICE_PWD, frozenset({_S, _M}), once=True),
    "ice-options": _Rule(_ICE_OPTIONS, frozenset({_S, _M})),
    "fingerprint": _Rule(_FINGERPRINT, frozenset({_S, _M})),
    "setup": _Rule(re.compile(r"\S+"), frozenset({_S, _M}), once=True),
    "extmap-allow-mixed": _Rule(None, frozenset({_S, _M}), once=True),
    "sendrecv": _Rule(None, frozenset({_S, _M})),
    "sendonly": _Rule(None, frozenset({_S, _M})),
    "recvonly": _Rule(None, frozenset({_S, _M})),
    "inactive": _Rule(None, frozenset({_S, _M})),
    "rtcp-mux": _Rule(None, frozenset({_M}), once=True),  # RFC 5761 §5.1.1: media-level
    # media-level
    "rtcp-mux-only": _Rule(None, frozenset({_M}), once=True),
    "rtcp-rsize": _Rule(None, frozenset({_M}), once=True),
    "bundle-only": _Rule(None, frozenset({_M}), once=True),
    "end-of-candidates": _Rule(None, frozenset({_S, _M})),
    "mid": _Rule(re.compile(_TOKEN), frozenset({_M}), once=True),
    "msid": _Rule(_MSID, frozenset({_M})),
    "rtcp": _Rule(_RTCP, frozenset({_M}), once=True),
    "rtpmap": _Rule(_RTPMAP, frozenset({_M})),
    "fmtp": _Rule(_FMTP, frozenset({_M})),
    "rtcp-fb": _Rule(_RTCP_FB, frozenset({_M})),
    "extmap": _Rule(_EXTMAP, frozenset({_M})),
    "ssrc": _Rule(_SSRC, frozenset({_M})),
    "ssrc-group": _Rule(_SSRC_GROUP, frozenset({_M})),
    "candidate": _Rule(re.compile(r".+"), frozenset({_M})),
    "ptime": _Rule(_SMALL_INT, frozenset({_M}), once=True),
    "maxptime": _Rule(_SMALL_INT, frozenset({_M}), once=True),
    "rid": _Rule(re.compile(r".+"), frozenset({_M})),
}

# Refused wherever they appear, with the reason given to the client.
_REFUSED_ATTRIBUTES = {
    "simulcast": "simulcast is not supported yet; send a single video layer",
    "sctp-port": "data channels are not supported",
    "sctpmap": "data channels are not supported",
    "max-message-size": "data channels are not supported",
}


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ICE candidate (RFC 8839 §5.1; RFC 8445 §5.1 for the meaning of its fields).

    ``transport`` and ``type`` are lower-case. ``ip`` is the connection address as written: an IP
    literal or a host name (browsers hide their addresses behind ``<uuid>.local`` mDNS names).
    """

    foundation: str
    component: int
    transport: str
    priority: int
    ip: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()

    @property
    def ip_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The address as an IP address, or ``None`` when it is a host name."""
        return _ip_literal(self.ip)

    @property
    def is_mdns(self) -> bool:
        """Whether the address is an mDNS ``.local`` name (which the server never resolves)."""
        return self.ip.rstrip(".").lower().endswith(".local")

    def to_sdp(self) -> str:
        """The candidate as an ``a=candidate`` value without the ``a=``: ``candidate:…``."""
        parts = [
            f"candidate:{self.foundation}",
            str(self.component),
            self.transport,
            str(self.priority),
            self.ip,
            str(self.port),
            "typ",
            self.type,
        ]
        if self.related_address is not None:
            parts += ["raddr", self.related_address]
        if self.related_port is not None:
            parts += ["rport", str(self.related_port)]
        if self.tcp_type is not None:
            parts += ["tcptype", self.tcp_type]
        for name, value in self.extensions:
            parts += [name, value]
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Codec:
    """One payload type of a media section: ``a=rtpmap`` (RFC 8866 §6.6) and its companions."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None
    feedback: tuple[str, ...] = ()

    @property
    def parameters(self) -> dict[str, str]:
        """``a=fmtp`` as ``key → value``; a part without ``=`` maps to ``""``.

        Keys keep their case, as aiortc compares them (``packetization-mode``, ``apt``).
        """
        result: dict[str, str] = {}
        if self.fmtp is None:
            return result
        for part in self.fmtp.split(";"):
            key, _, value = part.strip().partition("=")
            if key:
                result[key] = value.strip()
        return result

    @property
    def apt(self) -> int | None:
        """For ``rtx`` (RFC 4588): the payload type it retransmits."""
        value = self.parameters.get("apt")
        return int(value) if value is not None and _SMALL_INT.fullmatch(value) else None

    @property
    def mime_subtype(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class HeaderExtension:
    """``a=extmap`` (RFC 8285 §8): the id a client chose for an RTP header extension URI."""

    id: int
    uri: str
    direction: str | None = None


@dataclass(frozen=True, slots=True)
class SsrcGroup:
    """``a=ssrc-group`` (RFC 5576 §4.2), e.g. ``FID`` pairs a media SSRC with its RTX SSRC."""

    semantics: str
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MediaSection:
    """What the server needs to know about one m-section, in m-line order."""

    index: int
    kind: Kind
    mid: str
    direction: Direction
    port: int
    #: Port 0 without ``a=bundle-only``: the section is rejected or stopped (RFC 8866 §5.14).
    rejected: bool
    codecs: tuple[Codec, ...]
    ssrcs: tuple[int, ...]
    ssrc_groups: tuple[SsrcGroup, ...] = ()
    msids: tuple[str, ...] = ()
    extensions: tuple[HeaderExtension, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    ice_ufrag: str | None = None
    setup: str | None = None
    #: Whether the section carries simulcast; always False for now (simulcast is refused).
    simulcast: bool = False

    def codec(self, payload_type: int) -> Codec | None:
        return next((c for c in self.codecs if c.payload_type == payload_type), None)

    @property
    def sends(self) -> bool:
        """Whether the SDP's author sends media in this section."""
        return not self.rejected and self.direction in ("sendrecv", "sendonly")


@dataclass(frozen=True, slots=True)
class SdpSummary:
    sections: tuple[MediaSection, ...]
    #: The mids of the ``a=group:BUNDLE`` group, in order (the first is the tagged one).
    bundle: tuple[str, ...] = ()

    @property
    def active_sections(self) -> tuple[MediaSection, ...]:
        return tuple(s for s in self.sections if not s.rejected)

    def section(self, mid: str) -> MediaSection | None:
        return next((s for s in self.sections if s.mid == mid), None)


# --- candidates ----------------------------------------------------------------------------

_CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
_TCP_TYPES = frozenset({"active", "passive", "so"})
_FOUNDATION = re.compile(_ICE_CHAR + r"{1,32}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_EXTENSION_NAME = re.compile(_TOKEN)
_EXTENSION_VALUE = re.compile(r"[\x21-\x7e]+")


def _ip_literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_address(text: str) -> bool:
    """An RFC 8839 connection-address: an IP literal or a DNS host name (RFC 1123 §2.1)."""
    if _ip_literal(text) is not None:
        return True
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in name.split("."))


def _port(text: str) -> int | None:
    if not _DIGITS.fullmatch(text) or len(text) > 5:
        return None
    value = int(text)
    return value if value <= 65535 else None


def _bad_candidate(reason: str) -> SignalingError:
    return SignalingError(ErrorCode.BAD_CANDIDATE, f"Invalid ICE candidate: {reason}.")


def parse_candidate(line: str, limits: Limits = DEFAULT_LIMITS) -> Candidate:
    """Parse an ICE candidate attribute, with or without ``a=`` (RFC 8839 §5.1).

    Accepts ``candidate:<foundation> <component> <transport> <priority> <address> <port>
    typ <type> [raddr <address>] [rport <port>] *(<name> <value>)`` as browsers send it in
    trickle ICE (``RTCIceCandidate.candidate``) and in SDP. A trailing line ending is ignored.
    Raises ``SignalingError("bad_candidate")`` on anything else.
    """
    if not isinstance(line, str):
        raise _bad_candidate("the candidate must be text")
    text = line.rstrip("\r\n")
    if len(text) > limits.max_candidate_chars:
        raise _bad_candidate(f"longer than {limits.max_candidate_chars} characters")
    if not _PRINTABLE.fullmatch(text):
        raise _bad_candidate("only printable ASCII characters are allowed")
    if text.startswith("a="):
        text = text[2:]
    if not text.startswith("candidate:"):
        raise _bad_candidate("it must start with 'candidate:'")
    bits = text[len("candidate:") :].split()
    if len(bits) < 8:
        raise _bad_candidate("too few fields")
    foundation, component_s, transport, priority_s, address, port_s, typ, cand_type = bits[:8]
    if not _FOUNDATION.fullmatch(foundation):
        raise _bad_candidate("the foundation must be 1 to 32 letters, digits, '+' or '/'")
    if (
        not _DIGITS.fullmatch(component_s)
        or len(component_s) > 3
        or not (1 <= int(component_s) <= 256)
    ):
        raise _bad_candidate("the component must be a number from 1 to 256")
    if not _TOKEN_RE.fullmatch(transport):
        raise _bad_candidate("the transport is not a valid token")
    if not _DIGITS.fullmatch(priority_s) or len(priority_s) > 10 or int(priority_s) >= 2**32:
        raise _bad_candidate("the priority must be a 32-bit number")
    if not _is_address(address):
        raise _bad_candidate("the address is neither an IP address nor a host name")
    port = _port(port_s)
    if port is None:
        raise _bad_candidate("the port must be a number from 0 to 65535")
    if typ != "typ":
        raise _bad_candidate("'typ' must follow the port")
    cand_type = cand_type.lower()
    if cand_type not in _CANDIDATE_TYPES:
        raise _bad_candidate("the type must be host, srflx, prflx or relay")

    rest = bits[8:]
    if len(rest) % 2:
        raise _bad_candidate("an extension has a name but no value")
    related_address: str | None = None
    related_port: int | None = None
    tcp_type: str | None = None
    extensions: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in zip(rest[::2], rest[1::2], strict=True):
        if name in ("raddr", "rport", "tcptype"):
            if name in seen:
                raise _bad_candidate(f"'{name}' appears twice")
            seen.add(name)
        if name == "raddr":
            if not _is_address(value):
                raise _bad_candidate("raddr is not an address")
            related_address = value
        elif name == "rport":
            related_port = _port(value)
            if related_port is None:
                raise _bad_candidate("rport must be a number from 0 to 65535")
        elif name == "tcptype":
            if value.lower() not in _TCP_TYPES:
                raise _bad_candidate("tcptype must be active, passive or so")
            tcp_type = value.lower()
        elif not _EXTENSION_NAME.fullmatch(name) or not _EXTENSION_VALUE.fullmatch(value):
            raise _bad_candidate("an extension is not a name followed by a value")
        else:
            extensions.append((name, value))
    return Candidate(
        foundation=foundation,
        component=int(component_s),
        transport=transport.lower(),
        priority=int(priority_s),
        ip=address,
        port=port,
        type=cand_type,
        related_address=related_address,
        related_port=related_port,
        tcp_type=tcp_type,
        extensions=tuple(extensions),
    )


def candidate_is_usable(candidate: Candidate) -> bool:
    """Whether the SFU may use a candidate at all, before any network policy.

    It must be UDP (lophoc does not run ICE-TCP), component 1 (RTP; with ``rtcp-mux``
    component 2 is never used, RFC 5761 §5.1.3) and an IP literal: the server never resolves a
    name a client gave it, so neither mDNS ``.local`` names nor any other host name pass.
    """
    return (
        candidate.transport == "udp"
        and candidate.component == 1
        and candidate.ip_address is not None
    )


_LINE_WITH_ENDING = re.compile(r"[^\n]*\n|[^\n]+")


def filter_candidates(sdp: str, accept: Callable[[Candidate], bool]) -> str:
    """Remove the ``a=candidate`` lines the server must not use; keep every other byte.

    A candidate line is removed when it cannot be parsed, is not usable (TCP or another
    non-UDP transport, component ≠ 1, an mDNS ``.local`` or other host name: see
    ``candidate_is_usable``), or ``accept(candidate)`` is false (e.g. its address is outside
    the networks the server accepts). Every other line, and every line ending, is kept as it
    was, so the result differs from ``sdp`` only by whole removed lines.
    """
    kept: list[str] = []
    for line in _LINE_WITH_ENDING.findall(sdp):
        if line.startswith("a=candidate:"):
            try:
                candidate = parse_candidate(line)
            except SignalingError:
                continue
            if not candidate_is_usable(candidate) or not accept(candidate):
                continue
        kept.append(line)
    return "".join(kept)


# --- SDP -----------------------------------------------------------------------------------


def _bad(reason: str) -> SignalingError:
    return SignalingError(ErrorCode.BAD_SDP, f"Invalid SDP: {reason}.")


@dataclass(slots=True)
class _Attribute:
    line_no: int
    name: str
    value: str | None

    def where(self) -> str:
        return f"line {self.line_no} (a={self.name})"


@dataclass(slots=True)
class _RawSection:
    index: int
    line_no: int
    kind: str
    port: int
    proto: str
    fmts: list[int]
    attributes: list[_Attribute] = field(default_factory=list)
    bundle_only: bool = False

    @property
    def rejected(self) -> bool:
        return self.port == 0 and not self.bundle_only

    def values(self, name: str) -> list[str]:
        return [a.value or "" for a in self.attributes if a.name == name]

    def first(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.attributes)


def _split_lines(sdp: str) -> list[str]:
    """Lines without their endings; CRLF and LF both end a line (RFC 8866 §5 asks CRLF)."""
    lines = sdp.split("\n")
    if lines[-1] == "":
        lines.pop()
    result = []
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if "\r" in line:
            raise _bad(f"line {number} contains a carriage return that does not end the line")
        result.append(line)
    return result


def _check_session_name(number: int, value: str) -> None:
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            raise _bad(f"line {number} (s=): the session name contains a control character")


def _parse_attribute(number: int, value: str, level: str) -> _Attribute:
    name, colon, rest = value.partition(":")
    if not _TOKEN_RE.fullmatch(name):
        raise _bad(f"line {number}: the attribute name is not a valid token")
    attribute = _Attribute(number, name, rest if colon else None)
    if name in _REFUSED_ATTRIBUTES:
        raise _bad(f"{attribute.where()}: {_REFUSED_ATTRIBUTES[name]}")
    rule = _RULES.get(name)
    if rule is None:
        return attribute  # an attribute lophoc does not use: ignored (RFC 8866 §5.13)
    if level not in rule.where:
        place = "at the session level" if level == _S else "inside a media section"
        raise _bad(f"{attribute.where()}: this attribute is not allowed {place}")
    if rule.value is None:
        if attribute.value is not None:
            raise _bad(f"{attribute.where()}: this attribute takes no value")
    elif attribute.value is None or not rule.value.fullmatch(attribute.value):
        raise _bad(f"{attribute.where()}: the value is malformed")
    return attribute


def _parse_media_line(number: int, value: str, index: int) -> _RawSection:
    where = f"line {number} (m=)"
    bits = value.split(" ")
    if len(bits) < 4 or "" in bits:
        raise _bad(f"{where}: expected 'm=<media> <port> <proto> <formats>' separated by spaces")
    kind, port_s, proto, *formats = bits
    if kind == "application":
        raise _bad(f"{where}: data channels (m=application) are not supported")
    if kind not in ("audio", "video"):
        raise _bad(f"{where}: only audio and video media are supported")
    if "/" in port_s:
        raise _bad(f"{where}: port ranges are not supported")
    port = _port(port_s)
    if port is None:
        raise _bad(f"{where}: the port must be a number from 0 to 65535")
    if proto not in _PROTOCOLS:
        raise _bad(f"{where}: media must be encrypted with DTLS-SRTP (UDP/TLS/RTP/SAVPF)")
    fmts: list[int] = []
    for fmt in formats:
        if not _DIGITS.fullmatch(fmt) or len(fmt) > 3 or int(fmt) > 127:
            raise _bad(f"{where}: payload types must be numbers from 0 to 127")
        pt = int(fmt)
        if pt in _RTCP_PAYLOAD_TYPES:
            raise _bad(f"{where}: payload types 72 to 76 clash with RTCP (RFC 5761)")
        if pt in fmts:
            raise _bad(f"{where}: payload type {pt} is listed twice")
        fmts.append(pt)
    return _RawSection(index=index, line_no=number, kind=kind, port=port, proto=proto, fmts=fmts)


class _Document:
    """The SDP split into its session level and media sections, each line checked."""

    def __init__(self, sdp: object, limits: Limits, max_sections: int | None) -> None:
        if not isinstance(sdp, str):
            raise _bad("the SDP must be text")
        if len(sdp) > limits.max_sdp_bytes or (
            len(sdp) * 4 > limits.max_sdp_bytes
            and len(sdp.encode("utf-8", "surrogatepass")) > limits.max_sdp_bytes
        ):
            raise _bad(f"the SDP is larger than {limits.max_sdp_bytes} bytes")
        if not sdp:
            raise _bad("the SDP is empty")
        if "\x00" in sdp:
            raise _bad("the SDP contains a NUL character")
        try:
            sdp.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad("the SDP is not valid Unicode text") from None
        self.session: list[_Attribute] = []
        self.sections: list[_RawSection] = []
        lines = _split_lines(sdp)
        if not lines or lines[0] != "v=0":
            raise _bad("it must start with the line 'v=0'")
        for number, line in enumerate(lines, 1):
            self._line(number, line, limits, max_sections)
        if len(lines) < 3 or not lines[1].startswith("o=") or not lines[2].startswith("s="):
            raise _bad("'v=0' must be followed by an 'o=' line and an 's=' line")

    def _line(self, number: int, line: str, limits: Limits, max_sections: int | None) -> None:
        if not line:
            raise _bad(f"line {number} is empty")
        match = _LINE.fullmatch(line)
        if match is None:
            raise _bad(f"line {number} is not of the form '<letter>=<value>'")
        letter, value = match.groups()
        if letter == "s":
            _check_session_name(number, value)
        elif not _PRINTABLE.fullmatch(line):
            raise _bad(f"line {number} contains characters other than printable ASCII")
        if number <= 3:
            expected = "vos"[number - 1]
            if letter != expected:
                raise _bad(f"line {number} must be an '{expected}=' line")
            if letter == "o" and not _ORIGIN.fullmatch(value):
                raise _bad(f"line {number} (o=): expected '<user> <id> <version> IN IP4 <addr>'")
            return
        if letter == "m":
            if max_sections is not None and len(self.sections) >= max_sections:
                raise SignalingError(
                    ErrorCode.TOO_MANY_TRACKS,
                    f"An offer may carry at most {max_sections} audio or video tracks.",
                )
            self.sections.append(_parse_media_line(number, value, len(self.sections)))
            return
        level = _M if self.sections else _S
        allowed = _MEDIA_LETTERS if self.sections else _SESSION_LETTERS
        if letter == "k":
            raise _bad(f"line {number}: k= (keys in clear text) is obsolete (RFC 8866 §5.12)")
        if letter not in allowed:
            raise _bad(f"line {number}: '{letter}=' is not allowed here")
        if letter == "c" and not _CONNECTION.fullmatch(value):
            raise _bad(f"line {number} (c=): expected 'IN IP4 <address>' or 'IN IP6 <address>'")
        if letter == "b" and not _BANDWIDTH.fullmatch(value):
            raise _bad(f"line {number} (b=): expected '<type>:<number>'")
        if letter == "t" and not _TIMING.fullmatch(value):
            raise _bad(f"line {number} (t=): expected '<start> <stop>'")
        if letter == "a":
            attribute = _parse_attribute(number, value, level)
            if self.sections:
                section = self.sections[-1]
                section.attributes.append(attribute)
                if attribute.name == "bundle-only":
                    section.bundle_only = True
            else:
                self.session.append(attribute)

    def session_values(self, name: str) -> list[str]:
        return [a.value or "" for a in self.session if a.name == name]

    def session_first(self, name: str) -> str | None:
        values = self.session_values(name)
        return values[0] if values else None


def _check_once(attributes: Iterable[_Attribute], where: str) -> None:
    seen: set[str] = set()
    direction: str | None = None
    for attribute in attributes:
        rule = _RULES.get(attribute.name)
        if rule is not None and rule.once:
            if attribute.name in seen:
                raise _bad(f"{attribute.where()}: a={attribute.name} appears twice {where}")
            seen.add(attribute.name)
        if attribute.name in _DIRECTIONS:
            if direction is not None:
                raise _bad(f"{attribute.where()}: more than one direction {where}")
            direction = attribute.name


def _check_fingerprints(values: list[str], where: str) -> bool:
    """Whether ``values`` hold a sha-256-or-stronger fingerprint; refuse a lying length."""
    strong = False
    for value in values:
        match = _FINGERPRINT.fullmatch(value)
        assert match is not None  # the rule checked it
        algorithm, digest = match.group(1).lower(), match.group(2)
        size = _HASH_BYTES.get(algorithm)
        if size is None:
            continue  # weaker or unknown hashes are ignored (as aiortc does); one strong needed
        if (len(digest) + 1) // 3 != size:
            raise _bad(f"{where}: a {algorithm} fingerprint must be {size} bytes long")
        strong = True
    return strong


def _h264_forwardable(parameters: dict[str, str]) -> bool:
    """Whether aiortc 1.16 accepts this H.264 format: packetization-mode 1 and (constrained)
    baseline profile (RFC 6184 §8.1 profile-level-id; aiortc's H264_PROFILE_PATTERNS)."""
    if parameters.get("packetization-mode", "0") != "1":
        return False
    profile = parameters.get("profile-level-id", "42e01f")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", profile):
        return False
    idc, iop, level = int(profile[0:2], 16), int(profile[2:4], 16), int(profile[4:6], 16)
    if level not in (10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52):
        return False
    if idc == 0x42:
        return iop & 0x0F == 0
    if idc == 0x4D:  # constrained baseline signalled as main with constraint_set0
        return iop & 0x8F == 0x80
    if idc == 0x58:
        return iop & 0x8F == 0x80
    return False


def _forwardable(kind: str, codec: Codec) -> bool:
    """The codecs lophoc forwards: Opus for audio, VP8 or H.264 (baseline) for video."""
    name = codec.mime_subtype
    if kind == "audio":
        return name == "opus" and codec.clock_rate == 48000
    if name == "vp8":
        return codec.clock_rate == 90000
    if name == "h264":
        return codec.clock_rate == 90000 and _h264_forwardable(codec.parameters)
    return False


def _section_summary(doc: _Document, raw: _RawSection, limits: Limits) -> MediaSection:
    where = f"media section {raw.index} (line {raw.line_no})"
    _check_once(raw.attributes, f"in {where}")

    mid = raw.first("mid")
    assert mid is not None  # _summarise checked every section's mid

    # codecs: a=rtpmap, a=fmtp, a=rtcp-fb (RFC 8866 §6.6, §6.15; RFC 4585 §4.2)
    rtpmaps: dict[int, tuple[str, int, int | None]] = {}
    fmtps: dict[int, str] = {}
    feedback: dict[int | None, list[str]] = {}
    for attribute in raw.attributes:
        value = attribute.value or ""
        if attribute.name == "rtpmap":
            m = _RTPMAP.fullmatch(value)
            assert m is not None
            pt = int(m.group(1))
            if pt not in raw.fmts:
                raise _bad(f"{attribute.where()}: payload type {pt} is not on the m= line")
            if pt in rtpmaps:
                raise _bad(f"{attribute.where()}: payload type {pt} is mapped twice")
            clock_rate = int(m.group(3))
            if clock_rate == 0:
                raise _bad(f"{attribute.where()}: the clock rate must not be 0")
            channels = int(m.group(4)) if m.group(4) is not None else None
            if raw.kind == "audio" and channels == 0:
                raise _bad(f"{attribute.where()}: the channel count must not be 0")
            rtpmaps[pt] = (m.group(2), clock_rate, channels)
        elif attribute.name == "fmtp":
            m = _FMTP.fullmatch(value)
            assert m is not None
            pt = int(m.group(1))
            if pt in fmtps:
                raise _bad(f"{attribute.where()}: payload type {pt} has two a=fmtp lines")
            for part in m.group(2).split(";"):
                key, equals, param_value = part.partition("=")
                key = key.strip()
                if equals and key in _FMTP_INT_PARAMETERS:
                    if not _FMTP_INT_VALUE.fullmatch(param_value):
                        raise _bad(f"{attribute.where()}: '{key}' must be a number")
            fmtps[pt] = m.group(2)
        elif attribute.name == "rtcp-fb":
            m = _RTCP_FB.fullmatch(value)
            assert m is not None
            target = None if m.group(1) == "*" else int(m.group(1))
            if target is not None and target not in raw.fmts:
                raise _bad(f"{attribute.where()}: payload type {target} is not on the m= line")
            text = m.group(2) if m.group(3) is None else f"{m.group(2)} {m.group(3)}"
            feedback.setdefault(target, []).append(text)
    for pt in fmtps:
        if pt not in rtpmaps:  # aiortc looks the codec up by its rtpmap: StopIteration
            raise _bad(f"{where}: a=fmtp:{pt} has no matching a=rtpmap:{pt}")
    codecs: list[Codec] = []
    for pt in raw.fmts:
        if pt in rtpmaps:
            name, clock_rate, channels = rtpmaps[pt]
        elif pt in _STATIC_PAYLOAD_TYPES:
            name, clock_rate, channels = _STATIC_PAYLOAD_TYPES[pt]
        elif raw.rejected:
            continue
        else:
            raise _bad(f"{where}: payload type {pt} has no a=rtpmap")
        codecs.append(
            Codec(
                payload_type=pt,
                name=name,
                clock_rate=clock_rate,
                # RFC 8866 §6.6: an audio encoding without parameters has one channel
                channels=(channels or 1) if raw.kind == "audio" else None,
                fmtp=fmtps.get(pt),
                feedback=tuple(feedback.get(None, []) + feedback.get(pt, [])),
            )
        )
    for codec in codecs:
        if codec.mime_subtype == "rtx":
            apt = codec.apt
            if apt is None or apt not in raw.fmts:
                raise _bad(f"{where}: rtx payload type {codec.payload_type} needs a valid apt")

    # header extensions (RFC 8285 §8)
    extensions: list[HeaderExtension] = []
    for attribute in raw.attributes:
        if attribute.name != "extmap":
            continue
        m = _EXTMAP.fullmatch(attribute.value or "")
        assert m is not None
        ext_id = int(m.group(1))
        if not 1 <= ext_id <= 255 or ext_id == 15:
            raise _bad(f"{attribute.where()}: the id must be 1 to 14 or 16 to 255 (RFC 8285)")
        if any(e.id == ext_id and e.uri != m.group(3) for e in extensions):
            raise _bad(f"{attribute.where()}: id {ext_id} names two extensions")
        extensions.append(HeaderExtension(ext_id, m.group(3), m.group(2)))

    # SSRCs (RFC 5576)
    ssrcs: list[int] = []
    groups: list[SsrcGroup] = []
    for attribute in raw.attributes:
        if attribute.name == "ssrc":
            m = _SSRC.fullmatch(attribute.value or "")
            assert m is not None
            ssrc = int(m.group(1))
            if ssrc >= 2**32:
                raise _bad(f"{attribute.where()}: an SSRC is a 32-bit number")
            if ssrc not in ssrcs:
                ssrcs.append(ssrc)
    for attribute in raw.attributes:
        if attribute.name == "ssrc-group":
            m = _SSRC_GROUP.fullmatch(attribute.value or "")
            assert m is not None
            semantics = m.group(1)
            members = tuple(int(s) for s in m.group(2).split())
            if semantics.upper() == "SIM":
                raise _bad(
                    f"{attribute.where()}: simulcast is not supported yet; send a "
                    "single video layer"
                )
            if any(s not in ssrcs for s in members):
                raise _bad(f"{attribute.where()}: the group names an SSRC without a=ssrc")
            groups.append(SsrcGroup(semantics, members))

    candidates: list[Candidate] = []
    for attribute in raw.attributes:
        if attribute.name == "candidate":
            if len(candidates) >= limits.candidates_per_pc:
                raise _bad(f"{where} has more than {limits.candidates_per_pc} ICE candidates")
            try:
                candidates.append(parse_candidate("candidate:" + (attribute.value or ""), limits))
            except SignalingError as exc:
                raise _bad(f"{attribute.where()}: {exc.message.rstrip('.')}") from None

    rtcp = raw.first("rtcp")
    if rtcp is not None:
        m = _RTCP.fullmatch(rtcp)
        assert m is not None
        if _port(m.group(1)) is None:
            raise _bad(f"{where}: the a=rtcp port must be a number from 0 to 65535")

    direction = next((a.name for a in raw.attributes if a.name in _DIRECTIONS), None)
    if direction is None:
        direction = next((a.name for a in doc.session if a.name in _DIRECTIONS), "sendrecv")

    # transport attributes: this section, else the session level (RFC 8866 §5.13), as aiortc
    def effective(name: str) -> str | None:
        value = raw.first(name)
        return value if value is not None else doc.session_first(name)

    ufrag = effective("ice-ufrag")
    setup = effective("setup")
    if ufrag is None or effective("ice-pwd") is None:
        raise _bad(f"{where} has no a=ice-ufrag and a=ice-pwd (RFC 8839)")
    if not _check_fingerprints(
        raw.values("fingerprint") + doc.session_values("fingerprint"), where
    ):
        raise _bad(f"{where} has no a=fingerprint with sha-256 or stronger (RFC 8842)")
    if setup is None:
        raise _bad(f"{where} has no a=setup (RFC 8842)")
    if not raw.has("rtcp-mux"):
        raise _bad(f"{where} has no a=rtcp-mux (RFC 5761); lophoc needs RTP and RTCP muxed")

    kind: Kind = "audio" if raw.kind == "audio" else "video"
    return MediaSection(
        index=raw.index,
        kind=kind,
        mid=mid,
        direction=cast(Direction, direction),
        port=raw.port,
        rejected=raw.rejected,
        codecs=tuple(codecs),
        ssrcs=tuple(ssrcs),
        ssrc_groups=tuple(groups),
        msids=tuple(raw.values("msid")),
        extensions=tuple(extensions),
        candidates=tuple(candidates),
        ice_ufrag=ufrag,
        setup=setup,
    )


def _summarise(doc: _Document, limits: Limits) -> SdpSummary:
    _check_once(doc.session, "at the session level")
    setup = doc.session_first("setup")
    if setup is not None and setup not in _SETUP_VALUES:
        raise _bad("a=setup must be actpass, active or passive")
    for raw in doc.sections:
        value = raw.first("setup")
        if value is not None and value not in _SETUP_VALUES:
            raise _bad(f"media section {raw.index}: a=setup must be actpass, active or passive")
    _check_fingerprints(doc.session_values("fingerprint"), "the session level")
    if not doc.sections:
        raise _bad("it has no audio or video (no m= line)")

    mids: dict[str, _RawSection] = {}
    for raw in doc.sections:
        mid = raw.first("mid")
        if mid is None:
            raise _bad(f"media section {raw.index} (line {raw.line_no}) has no a=mid")
        if len(mid) > limits.max_mid_chars:
            raise _bad(f"a=mid:{mid[:20]} is longer than {limits.max_mid_chars} characters")
        if mid in mids:
            raise _bad(f"two media sections have a=mid:{mid}")
        mids[mid] = raw

    bundles = []
    for value in doc.session_values("group"):
        semantics, *members = value.split(" ")
        for member in members:
            if member not in mids:
                raise _bad(f"a=group:{semantics} names mid {member}, which no section has")
        if len(set(members)) != len(members):
            raise _bad(f"a=group:{semantics} names a mid twice")
        if semantics == "BUNDLE":
            bundles.append(tuple(members))
    if len(bundles) > 1:
        raise _bad("more than one a=group:BUNDLE; lophoc uses one transport per connection")
    bundle = bundles[0] if bundles else ()

    sections = [_section_summary(doc, raw, limits) for raw in doc.sections]
    active = [s for s in sections if not s.rejected]
    if len(active) > 1 and any(s.mid not in bundle for s in active):
        raise _bad(
            "every media section must be in one a=group:BUNDLE (one transport per connection)"
        )

    owner: dict[int, str] = {}
    uris: dict[int, str] = {}
    for section in active:
        for ssrc in section.ssrcs:
            if owner.setdefault(ssrc, section.mid) != section.mid:
                raise _bad(f"SSRC {ssrc} is used by two media sections (RFC 8843 §9.1)")
        for ext in section.extensions:
            if uris.setdefault(ext.id, ext.uri) != ext.uri:
                raise _bad(f"header extension id {ext.id} names two extensions in one bundle")
    return SdpSummary(sections=tuple(sections), bundle=bundle)


def check_offer(sdp: str, limits: Limits = DEFAULT_LIMITS) -> SdpSummary:
    """Check a client's publish offer; return what it describes.

    Raises ``SignalingError`` with ``bad_sdp`` (malformed, or something lophoc does not do),
    ``too_many_tracks`` (more m-lines than ``limits.m_lines_per_publish``) or
    ``unsupported_codec`` (an active section offers no codec lophoc can forward: Opus for
    audio, VP8 or H.264 constrained-baseline with packetization-mode 1 for video).
    """
    doc = _Document(sdp, limits, max_sections=limits.m_lines_per_publish)
    summary = _summarise(doc, limits)
    for section in summary.active_sections:
        if not any(_forwardable(section.kind, codec) for codec in section.codecs):
            wanted = "Opus" if section.kind == "audio" else "VP8 or H.264 (baseline)"
            raise SignalingError(
                ErrorCode.UNSUPPORTED_CODEC,
                f"The {section.kind} track (mid {section.mid}) offers no codec the server can "
                f"forward; it needs {wanted}.",
            )
    return summary


def check_answer(sdp: str, limits: Limits = DEFAULT_LIMITS) -> SdpSummary:
    """Check a client's answer to a subscribe offer; return what it describes.

    The same checks as ``check_offer`` except the m-line count (the server's offer set it) and
    the codec choice (the answer can only pick from what the server offered: that is compared
    by the media layer). RFC 8842 §5.3: an answer's ``a=setup`` is ``active`` or ``passive``.
    """
    doc = _Document(sdp, limits, max_sections=None)
    summary = _summarise(doc, limits)
    for section in summary.active_sections:
        if section.setup == "actpass":
            raise _bad(
                f"media section {section.index}: an answer must use a=setup:active or "
                "a=setup:passive (RFC 8842)"
            )
    return summary
