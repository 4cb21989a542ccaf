"""Redundant audio (RFC 2198 RED carrying Opus): parsing and rewriting, as pure functions.

A publisher that negotiates ``red/48000/2`` (fmtp ``111/111``: every block is Opus with payload
type 111) sends each RTP packet with its current Opus frame (the *primary* block) and copies of
one or more earlier frames (*redundant* blocks). A subscriber that lost packet *n* recovers its
audio from the redundant block of packet *n+1*, so random loss of a few per cent costs no
concealed audio — which is what a student on a weak phone link needs from the teacher's voice.

Payload format (RFC 2198 §3). Block headers come first, then the blocks' data in the same order:

* a non-final header is 4 bytes: ``F=1`` (1 bit), block payload type (7), timestamp offset
  (14, how far the block lies before the packet's timestamp) and block length (10, bytes);
* the final header is 1 byte: ``F=0`` and the payload type of the primary block, whose data is
  everything after the redundant blocks' data, and whose timestamp is the packet's own.

The SFU forwards RED untouched but for payload types, which differ per connection: the RTP
header carries the subscriber's ``red`` payload type and each block header the subscriber's
Opus payload type (``rewrite_block_types``). A subscriber that did not negotiate RED gets plain
Opus, the primary block alone (``primary``): the RTP timestamp stays the packet's, which is the
primary's, and the marker bit stays as sent.

Every function here reads untrusted bytes from a publisher: each is bounded (at most
``MAX_BLOCKS`` headers, one pass) and answers ``None`` for anything malformed — a header that
runs past the payload, block lengths that add up to more than the payload, an empty primary,
or a block whose payload type is not the negotiated Opus one. The router drops such a packet
and counts it.

Who offers RED (what a publisher's offer looks like, and what a subscriber answers):

* Chromium (Chrome, Edge, Chrome on Android; on by default since M96) offers
  ``a=rtpmap:63 red/48000/2`` with ``a=fmtp:63 111/111`` right after Opus (seen with Chromium
  156). It *sends* RED only if the answer lists ``red`` before ``opus`` — libwebrtc wraps its
  send codec in RED when ``red`` precedes it in the remote description — so the server's answer
  puts ``red`` first; it then sends one redundant block per packet (the previous 20 ms frame).
  Offered ``red`` first as a subscriber, it answers with ``red`` and decodes it.
* Safari (WebKit's libwebrtc, Safari 16 and later, iPhone included) offers the same
  ``63 red/48000/2`` / ``111/111`` lines as Chromium.
* Firefox offers no audio RED (seen with Firefox ESR 153; its ``red/90000`` is the video ULPFEC
  wrapper) and answers a ``red``-first offer with Opus alone, so its consumers unwrap. Its
  offer already asks for ``useinbandfec=1``: a Firefox publisher is protected by Opus in-band
  FEC instead, driven by the loss the SFU reflects to it (``media/feedback.py``).
"""

from __future__ import annotations

MAX_BLOCKS = 16
"""Most blocks (redundant + primary) read from one packet; Chromium sends two."""
MAX_TIMESTAMP_OFFSET = (1 << 14) - 1
MAX_BLOCK_LENGTH = (1 << 10) - 1


def parse(payload: bytes) -> list[tuple[int, int, int, int]] | None:
    """The blocks of a RED payload as ``(payload_type, timestamp_offset, start, end)``, the
    primary last (its offset is 0); ``None`` when the payload is malformed.

    ``payload[start:end]`` is each block's data."""
    n = len(payload)
    headers: list[tuple[int, int, int]] = []
    pos = 0
    while True:
        if pos >= n or len(headers) >= MAX_BLOCKS:
            return None
        b = payload[pos]
        if not b & 0x80:
            primary_type = b
            pos += 1
            break
        if pos + 4 > n:
            return None
        word = int.from_bytes(payload[pos + 1 : pos + 4], "big")
        headers.append((b & 0x7F, word >> 10, word & 0x3FF))
        pos += 4
    blocks: list[tuple[int, int, int, int]] = []
    for payload_type, ts_offset, length in headers:
        end = pos + length
        if end > n:
            return None
        blocks.append((payload_type, ts_offset, pos, end))
        pos = end
    if pos >= n:
        return None  # no primary data: nothing a decoder could play
    blocks.append((primary_type, 0, pos, n))
    return blocks


def primary(payload: bytes, payload_type: int) -> bytes | None:
    """The primary block's data (plain Opus), or ``None`` if the payload is malformed or any
    block is not of ``payload_type``."""
    blocks = parse(payload)
    if blocks is None or any(b[0] != payload_type for b in blocks):
        return None
    start = blocks[-1][2]
    return payload[start:]


def rewrite_block_types(payload: bytes, old: int, new: int) -> bytes | None:
    """The payload with every block header's payload type ``old`` changed to ``new`` (a
    subscriber numbers Opus differently); ``None`` if malformed or a block is not ``old``."""
    blocks = parse(payload)
    if blocks is None or any(b[0] != old for b in blocks):
        return None
    if old == new:
        return payload
    out = bytearray(payload)
    pos = 0
    for _ in range(len(blocks) - 1):
        out[pos] = 0x80 | new
        pos += 4
    out[pos] = new
    return bytes(out)


def encode(redundant: list[tuple[int, int, bytes]], primary_type: int, data: bytes) -> bytes:
    """A RED payload from ``(payload_type, timestamp_offset, data)`` redundant blocks (oldest
    first) and the primary block; ``ValueError`` for what the format cannot carry."""
    if len(redundant) + 1 > MAX_BLOCKS:
        raise ValueError("too many blocks")
    if not data:
        raise ValueError("empty primary block")
    head = bytearray()
    for payload_type, ts_offset, block in redundant:
        if not 0 <= payload_type < 128:
            raise ValueError("payload type out of range")
        if not 0 <= ts_offset <= MAX_TIMESTAMP_OFFSET:
            raise ValueError("timestamp offset out of range")
        if len(block) > MAX_BLOCK_LENGTH:
            raise ValueError("redundant block too long")
        head.append(0x80 | payload_type)
        head += ((ts_offset << 10) | len(block)).to_bytes(3, "big")
    if not 0 <= primary_type < 128:
        raise ValueError("payload type out of range")
    head.append(primary_type)
    return bytes(head) + b"".join(b for _, _, b in redundant) + data


class RedSource:
    """A producer that publishes RED wrapping Opus: which of its two payload types the packet
    being forwarded carries, and that packet's per-subscriber forms, computed once per packet
    (not once per consumer: a class of 40 shares one parse).

    ``accept`` runs once per received packet, before the fan-out; ``RedSink.transform`` runs per
    consumer.
    """

    __slots__ = ("_primary", "_rewritten", "current", "current_is_red", "opus_type", "red_type")

    def __init__(self, red_type: int, opus_type: int) -> None:
        self.red_type = red_type
        self.opus_type = opus_type
        self.current: bytes | None = None
        self.current_is_red = False
        self._primary: bytes | None = None
        self._rewritten: dict[int, bytes] = {}

    def accept(self, payload_type: int, payload: bytes) -> bool:
        """Take the next packet; False when it must be dropped (malformed RED, or a payload
        type that was not negotiated)."""
        if payload_type == self.red_type:
            data = primary(payload, self.opus_type)
            if data is None:
                self.current = None
                return False
            self.current = payload
            self.current_is_red = True
            self._primary = data
            self._rewritten = {self.opus_type: payload}
            return True
        if payload_type == self.opus_type:
            self.current = payload
            self.current_is_red = False
            return True
        self.current = None
        return False

    def as_red(self, opus_type: int) -> bytes:
        """The current (valid RED) packet with its blocks numbered ``opus_type``."""
        out = self._rewritten.get(opus_type)
        if out is None:
            assert self.current is not None
            # accept() validated the packet, so the rewrite cannot fail.
            out = rewrite_block_types(self.current, self.opus_type, opus_type) or b""
            self._rewritten[opus_type] = out
        return out

    def primary(self) -> bytes:
        return self._primary or b""


class RedSink:
    """How one consumer of a ``RedSource`` sends its packets: as RED (the subscriber negotiated
    it; ``red_type`` set) or unwrapped to plain Opus (``red_type`` is ``None``)."""

    __slots__ = ("opus_type", "red_type", "source")

    def __init__(self, source: RedSource, opus_type: int, red_type: int | None) -> None:
        self.source = source
        self.opus_type = opus_type
        self.red_type = red_type

    def transform(self, payload: bytes) -> tuple[int, bytes] | None:
        """``(payload_type, payload)`` to send for the producer's packet ``payload``, or
        ``None`` to send nothing.

        Only the packet being fanned out (``RedSource.accept``) has been validated; any other
        (an older packet from the producer's history, for a NACK) is not sent — audio is not
        NACKed in lophoc's SDP (no ``nack`` feedback for Opus), so nothing is lost by it. The
        identity test is the fast path; equal bytes (a copy, a view) are the same packet."""
        source = self.source
        current = source.current
        if payload is not current and (current is None or payload != current):
            return None
        if not source.current_is_red:
            return self.opus_type, payload
        if self.red_type is None:
            return self.opus_type, source.primary()
        return self.red_type, source.as_red(self.opus_type)
