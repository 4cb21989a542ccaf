"""RTP and RTCP on bytes: the pure functions the forwarding path is made of.

Sans-I/O: nothing here knows about sockets, SRTP or asyncio, so every function is unit-tested
exhaustively and fuzzed (``tests/media/test_rtp.py``). The forwarding loop in
``media/router.py`` inlines the cheapest of these (header field reads, ``HEADER.pack``) for speed;
the functions here are the reference those inlined lines are tested against.

References: RFC 3550 (RTP, RTCP SR/RR), RFC 4585 (generic NACK, PLI), RFC 5104 (FIR),
RFC 8285 (header extensions), RFC 7741 (VP8 payload), RFC 6184 (H.264 payload),
draft-alvestrand-rmcat-remb (REMB), RFC 5761 (RTP/RTCP multiplexing),
draft-holmer-rmcat-transport-wide-cc-extensions-01 (transport-wide congestion control feedback).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from itertools import accumulate

RTP_VERSION_BITS = 0x80
HEADER = struct.Struct("!BBHII")
"""The fixed 12-byte RTP header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC."""

ABS_SEND_TIME_EXTENSION = struct.Struct("!HHB3s")

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_RTPFB = 205
RTCP_PSFB = 206
RTPFB_NACK = 1
RTPFB_TWCC = 15
PSFB_PLI = 1
PSFB_FIR = 4
PSFB_APP = 15


class MalformedPacket(ValueError):
    """A packet whose header lies about its own length, or is too short to be RTP/RTCP."""


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: with RTP and RTCP multiplexed, RTCP packet types 192–223 sit in byte 1."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True)
class RtpHeader:
    """The fields of an RTP packet the SFU reads. ``payload_offset`` skips CSRCs and extensions."""

    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload_offset: int
    padding: bool
    extension_offset: int  # 0 when the packet has no header extension
    extension_length: int  # in bytes, without the 4-byte extension header


def parse_header(data: bytes) -> RtpHeader:
    """Parse an RTP header (RFC 3550 §5.1) without copying the payload."""
    n = len(data)
    if n < 12:
        raise MalformedPacket("RTP packet shorter than its fixed header")
    b0 = data[0]
    if b0 & 0xC0 != RTP_VERSION_BITS:
        raise MalformedPacket("RTP version is not 2")
    offset = 12 + 4 * (b0 & 0x0F)
    ext_offset = 0
    ext_length = 0
    if b0 & 0x10:
        if n < offset + 4:
            raise MalformedPacket("RTP header extension is truncated")
        ext_offset = offset + 4
        ext_length = 4 * ((data[offset + 2] << 8) | data[offset + 3])
        offset = ext_offset + ext_length
    if offset > n:
        raise MalformedPacket("RTP header is longer than the packet")
    padding = bool(b0 & 0x20)
    if padding:
        pad = data[-1]
        if pad == 0 or offset + pad > n:
            raise MalformedPacket("RTP padding length is impossible")
    _, b1, seq, ts, ssrc = HEADER.unpack_from(data)
    return RtpHeader(
        marker=bool(b1 & 0x80),
        payload_type=b1 & 0x7F,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload_offset=offset,
        padding=padding,
        extension_offset=ext_offset,
        extension_length=ext_length,
    )


def find_extension(data: bytes, header: RtpHeader, ext_id: int) -> bytes | None:
    """The value of one-byte or two-byte header extension ``ext_id`` (RFC 8285 §4), if present."""
    if not header.extension_offset or not 1 <= ext_id <= 255:
        return None
    profile = (data[header.extension_offset - 4] << 8) | data[header.extension_offset - 3]
    pos = header.extension_offset
    end = pos + header.extension_length
    if profile == 0xBEDE:
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            eid, length = b >> 4, (b & 0x0F) + 1
            if eid == 15:
                return None
            if pos + 1 + length > end:
                return None
            if eid == ext_id:
                return bytes(data[pos + 1 : pos + 1 + length])
            pos += 1 + length
    elif profile & 0xFFF0 == 0x1000:
        while pos + 1 < end:
            eid = data[pos]
            if eid == 0:
                pos += 1
                continue
            length = data[pos + 1]
            if pos + 2 + length > end:
                return None
            if eid == ext_id:
                return bytes(data[pos + 2 : pos + 2 + length])
            pos += 2 + length
    return None


def rewrite(
    data: bytes,
    header: RtpHeader,
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    extension: bytes = b"",
) -> bytes:
    """The packet as one consumer sends it: new PT/seq/timestamp/SSRC, the publisher's header
    extensions and CSRCs dropped (their ids mean nothing on the subscriber's connection, see
    BROWSER-TESTING.md), ``extension`` (a complete RFC 8285 block, or empty) put in their place;
    payload and padding untouched.
    """
    b0 = RTP_VERSION_BITS | (data[0] & 0x20) | (0x10 if extension else 0)
    b1 = (0x80 if header.marker else 0) | payload_type
    return (
        HEADER.pack(
            b0,
            b1,
            sequence_number & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + extension
        + data[header.payload_offset :]
    )


def abs_send_time_block(ext_id: int, abs_send_time: int) -> bytes:
    """An RFC 8285 one-byte extension block holding abs-send-time (6.18 fixed-point seconds).

    Receivers (Chrome, aiortc) estimate the path's bandwidth from it and report REMB.
    """
    return ABS_SEND_TIME_EXTENSION.pack(
        0xBEDE, 1, (ext_id << 4) | 2, (abs_send_time & 0xFFFFFF).to_bytes(3, "big")
    )


def abs_send_time(ntp: int) -> int:
    """abs-send-time from a 64-bit NTP timestamp: 24 bits, 6 integer and 18 fractional."""
    return (ntp >> 14) & 0xFFFFFF


def seq_newer(a: int, b: int) -> bool:
    """Whether 16-bit sequence number ``a`` comes after ``b`` (RFC 3550 §A.1, wrap-aware)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def seq_diff(a: int, b: int) -> int:
    """Signed distance from ``b`` to ``a`` in 16-bit sequence space (−32768 … 32767)."""
    d = (a - b) & 0xFFFF
    return d - 0x10000 if d >= 0x8000 else d


# --- keyframes -------------------------------------------------------------------------------


def vp8_is_keyframe_start(payload: bytes) -> bool:
    """Whether this VP8 RTP payload starts a key frame (RFC 7741 §4.2, §4.3).

    The payload descriptor must have S=1 and PID=0 (first packet of partition 0), and the P bit
    of the VP8 payload header that follows must be 0 (an intra frame).
    """
    n = len(payload)
    if n < 1:
        return False
    b = payload[0]
    if not (b & 0x10) or (b & 0x07) != 0:
        return False
    pos = 1
    if b & 0x80:  # X: extended control bits
        if n < 2:
            return False
        x = payload[1]
        pos = 2
        if x & 0x80:  # I: picture id
            if n <= pos:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x30:  # T or K: TID/KEYIDX
            pos += 1
    if n <= pos:
        return False
    return not (payload[pos] & 0x01)


H264_NAL_IDR = 5
H264_NAL_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def h264_is_keyframe_start(payload: bytes) -> bool:
    """Whether this H.264 RTP payload starts an IDR picture or carries its SPS.

    RFC 6184 §5.6 (single NAL unit), §5.7.1 (STAP-A), §5.8 (FU-A)."""
    n = len(payload)
    if n < 1:
        return False
    nal = payload[0] & 0x1F
    if nal in (H264_NAL_IDR, H264_NAL_SPS):
        return True
    if nal == H264_STAP_A:
        pos = 1
        while pos + 2 < n:
            size = (payload[pos] << 8) | payload[pos + 1]
            if size == 0 or pos + 2 + size > n:
                return False
            if payload[pos + 2] & 0x1F in (H264_NAL_IDR, H264_NAL_SPS):
                return True
            pos += 2 + size
        return False
    if nal == H264_FU_A:
        return (
            n >= 2
            and bool(payload[1] & 0x80)
            and payload[1] & 0x1F
            in (
                H264_NAL_IDR,
                H264_NAL_SPS,
            )
        )
    return False


def keyframe_detector(codec_name: str):  # type: ignore[no-untyped-def]
    """The keyframe test for a codec, or ``None`` for codecs without keyframes (audio)."""
    name = codec_name.lower()
    if name == "vp8":
        return vp8_is_keyframe_start
    if name == "h264":
        return h264_is_keyframe_start
    return None


# --- RTCP ------------------------------------------------------------------------------------


def build_sender_report(
    ssrc: int, ntp: int, rtp_timestamp: int, packet_count: int, octet_count: int
) -> bytes:
    """An RTCP SR with no report blocks (RFC 3550 §6.4.1)."""
    return struct.pack(
        "!BBHIIIIII",
        0x80,
        RTCP_SR,
        6,
        ssrc,
        (ntp >> 32) & 0xFFFFFFFF,
        ntp & 0xFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )


@dataclass(frozen=True, slots=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int


def build_receiver_report(sender_ssrc: int, blocks: list[ReportBlock]) -> bytes:
    """An RTCP RR (RFC 3550 §6.4.2) with up to 31 report blocks."""
    blocks = blocks[:31]
    out = [struct.pack("!BBHI", 0x80 | len(blocks), RTCP_RR, 1 + 6 * len(blocks), sender_ssrc)]
    for b in blocks:
        lost = max(-0x800000, min(0x7FFFFF, b.packets_lost)) & 0xFFFFFF
        out.append(
            struct.pack(
                "!IBBHIIII",
                b.ssrc,
                b.fraction_lost & 0xFF,
                lost >> 16,
                lost & 0xFFFF,
                b.highest_sequence & 0xFFFFFFFF,
                b.jitter & 0xFFFFFFFF,
                b.lsr & 0xFFFFFFFF,
                b.dlsr & 0xFFFFFFFF,
            )
        )
    return b"".join(out)


def build_pli(sender_ssrc: int, media_ssrc: int) -> bytes:
    """A Picture Loss Indication (RFC 4585 §6.3.1)."""
    return struct.pack("!BBHII", 0x80 | PSFB_PLI, RTCP_PSFB, 2, sender_ssrc, media_ssrc)


def build_nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """A generic NACK (RFC 4585 §6.2.1) covering the given sequence numbers."""
    fci: list[bytes] = []
    seqs = sorted(set(s & 0xFFFF for s in lost), key=lambda s: seq_diff(s, lost[0]))
    i = 0
    while i < len(seqs):
        pid = seqs[i]
        blp = 0
        i += 1
        while i < len(seqs):
            d = seq_diff(seqs[i], pid)
            if not 1 <= d <= 16:
                break
            blp |= 1 << (d - 1)
            i += 1
        fci.append(struct.pack("!HH", pid, blp))
    length = 2 + len(fci)
    return struct.pack("!BBHII", 0x80 | RTPFB_NACK, RTCP_RTPFB, length, sender_ssrc, media_ssrc) + (
        b"".join(fci)
    )


def build_remb(sender_ssrc: int, bitrate: int, ssrcs: list[int]) -> bytes:
    """Receiver Estimated Maximum Bitrate (draft-alvestrand-rmcat-remb §2.2)."""
    exp = 0
    mantissa = max(0, int(bitrate))
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exp += 1
    length = 4 + len(ssrcs)
    return struct.pack(
        "!BBHII4sBBH",
        0x80 | PSFB_APP,
        RTCP_PSFB,
        length,
        sender_ssrc,
        0,
        b"REMB",
        len(ssrcs),
        (exp << 2) | (mantissa >> 16),
        mantissa & 0xFFFF,
    ) + b"".join(struct.pack("!I", s) for s in ssrcs)


# --- transport-wide congestion control feedback ---------------------------------------------
#
# draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1. After the common RTPFB header
# (sender SSRC, media SSRC) the FCI is:
#
#   base sequence number (16) | packet status count (16)
#   reference time (24, multiples of 64 ms) | feedback packet count (8)
#   packet chunks (16 bits each) ... | receive deltas (8 or 16 bits each) ... | zero padding
#
# A chunk is either a run length chunk (bit 0 = 0: 2-bit symbol, 13-bit run length) or a status
# vector chunk (bit 0 = 1; bit 1 = 0: fourteen 1-bit symbols, bit 1 = 1: seven 2-bit symbols).
# Symbols: 0 not received, 1 received with a small delta (1 byte, 0 … 63.75 ms), 2 received with
# a large or negative delta (2 bytes, signed), 3 reserved. Deltas count 250 µs; the first is
# relative to the reference time, each next one to the previous received packet.

TWCC_DELTA_UNIT = 0.000250
"""Seconds per receive-delta tick (250 µs)."""
TWCC_REFERENCE_UNIT = 0.064
"""Seconds per reference-time tick (64 ms)."""
TWCC_TICKS_PER_REFERENCE = 256
"""Receive-delta ticks in one reference-time tick (64 ms / 250 µs)."""
TWCC_NOT_RECEIVED = 0
TWCC_SMALL_DELTA = 1
TWCC_LARGE_DELTA = 2
_TWCC_MAX_RUN = 0x1FFF
TWCC_MAX_STATUS_COUNT = 8192
"""The most statuses one feedback may carry. A receiver reports every ~50–250 ms; the SFU sends
a subscriber at most ~1000 packets a second, so a genuine report holds a few hundred. A larger
claim is refused (it would cost the parser work for bytes a subscriber made up)."""


class TransportFeedback:
    """One transport-wide feedback packet.

    ``packets`` lists ``packet status count`` entries in sequence order: the 16-bit transport
    sequence number and the arrival time in seconds on the receiver's clock (reference time plus
    the receive deltas), or ``None`` for a packet reported as not received. Arrival times are
    exact multiples of 250 µs; only their differences mean anything to the sender.

    The parser fills ``arrivals`` instead — the same arrival times (or ``None``) of
    ``base_seq``, ``base_seq + 1``, … — and ``packets`` is then built only when read: the
    estimator walks ``arrivals`` without a tuple per packet. Built from ``packets`` (any
    sequence numbers, in any order), ``arrivals`` is None.
    """

    __slots__ = ("_packets", "arrivals", "base_seq", "feedback_count", "reference_time")

    def __init__(
        self,
        base_seq: int,
        feedback_count: int,
        reference_time: float,
        packets: tuple[tuple[int, float | None], ...] | None = None,
        *,
        arrivals: list[float | None] | None = None,
    ) -> None:
        if (packets is None) == (arrivals is None):
            raise ValueError("a transport feedback has either packets or arrivals")
        self.base_seq = base_seq
        self.feedback_count = feedback_count
        self.reference_time = reference_time
        self._packets = None if packets is None else tuple(packets)
        self.arrivals = arrivals

    @property
    def packets(self) -> tuple[tuple[int, float | None], ...]:
        if self._packets is None:
            base = self.base_seq
            assert self.arrivals is not None
            self._packets = tuple(((base + i) & 0xFFFF, a) for i, a in enumerate(self.arrivals))
        return self._packets

    def _key(self) -> tuple[object, ...]:
        return (self.base_seq, self.feedback_count, self.reference_time, self.packets)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TransportFeedback):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"TransportFeedback(base_seq={self.base_seq}, feedback_count={self.feedback_count}, "
            f"reference_time={self.reference_time}, packets={self.packets!r})"
        )


def _vector_table(bits: int, symbols: int) -> list[bytes]:
    """Status symbols of every value of ``symbols`` × ``bits`` bits, first symbol highest."""
    mask = (1 << bits) - 1
    return [
        bytes((v >> (bits * (symbols - 1 - k))) & mask for k in range(symbols))
        for v in range(1 << (bits * symbols))
    ]


# A status vector chunk decoded by table, in two halves: fourteen 1-bit symbols as 7 + 7, seven
# 2-bit symbols as 4 + 3 (RFC draft §3.1.4); a run length chunk as one repeated byte.
_ONE_BIT_7 = _vector_table(1, 7)
_TWO_BIT_4 = _vector_table(2, 4)
_TWO_BIT_3 = _vector_table(2, 3)
_RUNS = [bytes([s]) for s in range(4)]


def _parse_transport_feedback(fci: bytes) -> TransportFeedback:
    n = len(fci)
    if n < 8:
        raise MalformedPacket("transport feedback is truncated")
    base_seq, count, ref_hi, ref_lo, fb_count = struct.unpack_from("!HHBHB", fci, 0)
    if count == 0:
        raise MalformedPacket("transport feedback reports no packet")
    reference = (ref_hi << 16) | ref_lo
    # A run length chunk of 2 bytes may claim 8191 statuses: the count is bounded before any
    # work proportional to it is done.
    if count > TWCC_MAX_STATUS_COUNT:
        raise MalformedPacket("transport feedback reports too many packets")
    symbols = b""
    pos = 8
    while len(symbols) < count:
        if pos + 2 > n:
            raise MalformedPacket("transport feedback chunks are truncated")
        chunk = (fci[pos] << 8) | fci[pos + 1]
        pos += 2
        left = count - len(symbols)
        if not chunk & 0x8000:
            symbol = (chunk >> 13) & 0x03
            run = chunk & _TWCC_MAX_RUN
            if run == 0:
                raise MalformedPacket("transport feedback run length chunk of length 0")
            if symbol == 3:
                raise MalformedPacket("transport feedback uses the reserved status symbol")
            symbols += _RUNS[symbol] * (run if run < left else left)
        elif not chunk & 0x4000:
            vector = _ONE_BIT_7[(chunk >> 7) & 0x7F] + _ONE_BIT_7[chunk & 0x7F]
            symbols += vector if left >= 14 else vector[:left]
        else:
            vector = _TWO_BIT_4[(chunk >> 6) & 0xFF] + _TWO_BIT_3[chunk & 0x3F]
            if left < 7:
                vector = vector[:left]
            if 3 in vector:
                raise MalformedPacket("transport feedback uses the reserved status symbol")
            symbols += vector
    small = symbols.count(TWCC_SMALL_DELTA)
    large = symbols.count(TWCC_LARGE_DELTA)
    if pos + small + 2 * large > n:
        raise MalformedPacket("transport feedback receive deltas are truncated")
    ticks = reference * TWCC_TICKS_PER_REFERENCE
    unit = TWCC_DELTA_UNIT
    arrivals: list[float | None]
    if small == count:  # everything received, every delta one byte: the common report
        arrivals = [t * unit for t in accumulate(fci[pos : pos + count], initial=ticks)]
        del arrivals[0]
    else:
        arrivals = [None] * count
        for i, symbol in enumerate(symbols):
            if symbol == TWCC_SMALL_DELTA:
                ticks += fci[pos]
                pos += 1
                arrivals[i] = ticks * unit
            elif symbol:
                delta = (fci[pos] << 8) | fci[pos + 1]
                ticks += delta - 0x10000 if delta & 0x8000 else delta
                pos += 2
                arrivals[i] = ticks * unit
    return TransportFeedback(base_seq, fb_count, reference * TWCC_REFERENCE_UNIT, arrivals=arrivals)


def _twcc_chunks(symbols: list[int]) -> list[int]:
    """Encode status symbols: a run length chunk where a run is long, else a status vector."""
    chunks: list[int] = []
    i = 0
    n = len(symbols)
    while i < n:
        run = 1
        while i + run < n and run < _TWCC_MAX_RUN and symbols[i + run] == symbols[i]:
            run += 1
        if run >= 14 or i + run == n:
            chunks.append((symbols[i] << 13) | run)
            i += run
            continue
        window = symbols[i : i + 14]
        if TWCC_LARGE_DELTA not in window:
            chunk = 0x8000
            for k, symbol in enumerate(window):
                chunk |= symbol << (13 - k)
            chunks.append(chunk)
            i += len(window)
        else:
            chunk = 0xC000
            for k, symbol in enumerate(symbols[i : i + 7]):
                chunk |= symbol << (12 - 2 * k)
            chunks.append(chunk)
            i += 7
    return chunks


def build_transport_feedback(
    sender_ssrc: int,
    media_ssrc: int,
    base_seq: int,
    feedback_count: int,
    arrivals: list[float | None],
) -> bytes:
    """A transport-wide feedback packet for packets ``base_seq``, ``base_seq + 1``, … whose
    arrival times (seconds on the receiver's clock, ``None`` = not received) are ``arrivals``.

    The reference time is the first received arrival rounded down to 64 ms, so the first delta
    is never negative; arrivals are rounded to 250 µs. Raises ``ValueError`` when there is
    nothing to report or when two consecutive received packets are more than ±8.19 s apart (a
    receiver then starts a new feedback packet).
    """
    if not 1 <= len(arrivals) <= TWCC_MAX_STATUS_COUNT:
        raise ValueError("a transport feedback reports 1 … TWCC_MAX_STATUS_COUNT packets")
    first = next((round(a / TWCC_DELTA_UNIT) for a in arrivals if a is not None), 0)
    base = first // TWCC_TICKS_PER_REFERENCE
    reference = base & 0xFFFFFF  # the field wraps after 2^24 × 64 ms (12.4 days)
    symbols: list[int] = []
    deltas = bytearray()
    ticks = base * TWCC_TICKS_PER_REFERENCE
    for arrival in arrivals:
        if arrival is None:
            symbols.append(TWCC_NOT_RECEIVED)
            continue
        t = round(arrival / TWCC_DELTA_UNIT)
        delta = t - ticks
        ticks = t
        if 0 <= delta <= 0xFF:
            symbols.append(TWCC_SMALL_DELTA)
            deltas.append(delta)
        elif -0x8000 <= delta <= 0x7FFF:
            symbols.append(TWCC_LARGE_DELTA)
            deltas += (delta & 0xFFFF).to_bytes(2, "big")
        else:
            raise ValueError("receive delta does not fit in 16 bits")
    body = bytearray(
        struct.pack(
            "!IIHHBHB",
            sender_ssrc,
            media_ssrc,
            base_seq & 0xFFFF,
            len(arrivals),
            reference >> 16,
            reference & 0xFFFF,
            feedback_count & 0xFF,
        )
    )
    for chunk in _twcc_chunks(symbols):
        body += chunk.to_bytes(2, "big")
    body += deltas
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!BBH", 0x80 | RTPFB_TWCC, RTCP_RTPFB, len(body) // 4) + bytes(body)


@dataclass(slots=True)
class Feedback:
    """One RTCP packet, reduced to what the SFU acts on. Not frozen: one is made for every
    RTCP packet a subscriber sends (transport-wide feedback every 50–100 ms), and a frozen
    dataclass pays ``object.__setattr__`` per field; nothing changes one after parsing."""

    kind: str  # "sr", "rr", "pli", "fir", "nack", "remb", "twcc", "bye", "other"
    sender_ssrc: int = 0
    media_ssrcs: tuple[int, ...] = ()
    lost: tuple[int, ...] = ()
    bitrate: int = 0
    reports: tuple[ReportBlock, ...] = ()
    ntp: int = 0
    rtp_timestamp: int = 0
    twcc: TransportFeedback | None = None


def parse_rtcp(data: bytes) -> list[Feedback]:
    """Split a compound RTCP packet and read what the SFU needs; raise MalformedPacket on lies."""
    out: list[Feedback] = []
    pos = 0
    n = len(data)
    if n < 4:
        raise MalformedPacket("RTCP packet shorter than its header")
    while pos < n:
        if n - pos < 4:
            raise MalformedPacket("RTCP packet truncated")
        b0, pt, length = struct.unpack_from("!BBH", data, pos)
        if b0 & 0xC0 != 0x80:
            raise MalformedPacket("RTCP version is not 2")
        end = pos + 4 + 4 * length
        if end > n:
            raise MalformedPacket("RTCP length is longer than the packet")
        body = data[pos + 4 : end]
        count = b0 & 0x1F
        if pt in (RTCP_SR, RTCP_RR):
            need = 4 + (20 if pt == RTCP_SR else 0)
            if len(body) < need + 24 * count:
                raise MalformedPacket("RTCP report is truncated")
            (sender,) = struct.unpack_from("!I", body, 0)
            ntp = rtp_ts = 0
            if pt == RTCP_SR:
                hi, lo, rtp_ts = struct.unpack_from("!III", body, 4)
                ntp = (hi << 32) | lo
            reports = []
            for i in range(count):
                ssrc, fl, lh, ll, hs, jit, lsr, dlsr = struct.unpack_from(
                    "!IBBHIIII", body, need + 24 * i
                )
                cumulative_lost = (lh << 16) | ll
                if cumulative_lost & 0x800000:
                    cumulative_lost -= 0x1000000
                reports.append(ReportBlock(ssrc, fl, cumulative_lost, hs, jit, lsr, dlsr))
            out.append(
                Feedback(
                    "sr" if pt == RTCP_SR else "rr",
                    sender_ssrc=sender,
                    reports=tuple(reports),
                    ntp=ntp,
                    rtp_timestamp=rtp_ts,
                )
            )
        elif pt in (RTCP_RTPFB, RTCP_PSFB):
            if len(body) < 8:
                raise MalformedPacket("RTCP feedback is truncated")
            sender, media = struct.unpack_from("!II", body, 0)
            fci = body[8:]
            if pt == RTCP_RTPFB and count == RTPFB_NACK:
                lost: list[int] = []
                for i in range(0, len(fci) - 3, 4):
                    pid, blp = struct.unpack_from("!HH", fci, i)
                    lost.append(pid)
                    for bit in range(16):
                        if blp & (1 << bit):
                            lost.append((pid + bit + 1) & 0xFFFF)
                out.append(Feedback("nack", sender, (media,), lost=tuple(lost)))
            elif pt == RTCP_RTPFB and count == RTPFB_TWCC:
                if b0 & 0x20:  # RFC 3550 §6.4.1: the last octet counts the padding
                    pad = body[-1]
                    if pad == 0 or pad > len(fci):
                        raise MalformedPacket("RTCP padding length is impossible")
                    fci = fci[:-pad]
                twcc = _parse_transport_feedback(fci)
                out.append(Feedback("twcc", sender, (media,), twcc=twcc))
            elif pt == RTCP_PSFB and count == PSFB_PLI:
                out.append(Feedback("pli", sender, (media,)))
            elif pt == RTCP_PSFB and count == PSFB_FIR:
                targets = tuple(
                    struct.unpack_from("!I", fci, i)[0] for i in range(0, len(fci) - 7, 8)
                )
                out.append(Feedback("fir", sender, targets))
            elif pt == RTCP_PSFB and count == PSFB_APP and fci[:4] == b"REMB" and len(fci) >= 8:
                num = fci[4]
                exp = fci[5] >> 2
                mantissa = ((fci[5] & 0x03) << 16) | (fci[6] << 8) | fci[7]
                ssrcs = tuple(
                    struct.unpack_from("!I", fci, 8 + 4 * i)[0]
                    for i in range(num)
                    if 8 + 4 * i + 4 <= len(fci)
                )
                out.append(Feedback("remb", sender, ssrcs, bitrate=mantissa << exp))
            else:
                out.append(Feedback("other", sender, (media,)))
        elif pt == RTCP_BYE:
            ssrcs = tuple(
                struct.unpack_from("!I", body, 4 * i)[0]
                for i in range(count)
                if 4 * i + 4 <= len(body)
            )
            out.append(Feedback("bye", media_ssrcs=ssrcs))
        else:
            out.append(Feedback("other"))
        pos = end
    return out
