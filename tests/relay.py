"""A UDP relay on 127.0.0.1 between two ICE peers, to play a bad network in tests.

Each peer's host candidate is rewritten (``UdpRelay.hide``) to a port of the relay that stands
for it, so every datagram between the two goes through the relay, which can hold it for a
delay, drop everything, or drop a seeded random share of one direction. The relay answers the
peers from the ports they were told, so ICE sees ordinary host candidates (no peer-reflexive
ones) and the selected pair is the relay's address.

Directions: ``"ab"`` is what peer ``a`` sends to peer ``b``, ``"ba"`` the reverse.
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
from dataclasses import dataclass, field
from typing import Any

_HOST_CANDIDATE = re.compile(r"^(a=candidate:\S+ 1 udp \d+ )127\.0\.0\.1 (\d+)( typ host.*)$", re.M)


@dataclass
class Direction:
    delay: float = 0.0
    """Seconds each datagram is held."""
    drop: bool = False
    """Drop every datagram."""
    loss: float = 0.0
    """Share of datagrams dropped at random (seeded)."""
    only_rtp: bool = False
    """Apply ``loss`` to SRTP/SRTCP only (first byte 128–191, RFC 7983), not STUN or DTLS."""
    only_ssrcs: frozenset[int] | None = None
    """Apply ``loss`` to SRTP packets of these SSRCs only (read from the clear RTP header)."""
    forwarded: int = 0
    dropped: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def passes(self, data: bytes) -> bool:
        if self.drop:
            return False
        if not self.loss:
            return True
        rtp_or_rtcp = len(data) >= 12 and 127 < data[0] < 192
        if self.only_ssrcs is not None:
            # RTCP packet types are 192–223 in the second byte (RFC 5761 §4).
            if not rtp_or_rtcp or 192 <= data[1] <= 223:
                return True
            if int.from_bytes(data[8:12], "big") not in self.only_ssrcs:
                return True
        elif self.only_rtp and not rtp_or_rtcp:
            return True
        return self.rng.random() >= self.loss


class _Face(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, side: str) -> None:
        self.relay = relay
        self.side = side  # the peer this socket stands for
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay._forward(self.side, data)


class UdpRelay:
    def __init__(self) -> None:
        self.real: dict[str, tuple[str, int]] = {}
        self.faces: dict[str, _Face] = {}
        self.ab = Direction()
        self.ba = Direction()

    @classmethod
    async def open(cls) -> UdpRelay:
        relay = cls()
        loop = asyncio.get_running_loop()
        for side in ("a", "b"):
            _, face = await loop.create_datagram_endpoint(
                functools.partial(_Face, relay, side), local_addr=("127.0.0.1", 0)
            )
            relay.faces[side] = face
        return relay

    def port_of(self, side: str) -> int:
        transport = self.faces[side].transport
        assert transport is not None
        return int(transport.get_extra_info("sockname")[1])

    def hide(self, sdp: str, side: str) -> str:
        """Peer ``side``'s SDP with its one host candidate moved to the relay's port for it."""
        matches = _HOST_CANDIDATE.findall(sdp)
        ports = {int(m[1]) for m in matches}
        assert len(ports) == 1, sdp
        self.real[side] = ("127.0.0.1", ports.pop())
        port = self.port_of(side)
        return _HOST_CANDIDATE.sub(lambda m: f"{m.group(1)}127.0.0.1 {port}{m.group(3)}", sdp)

    def set(self, **kwargs: Any) -> None:
        """Set the same property on both directions."""
        for direction in (self.ab, self.ba):
            for key, value in kwargs.items():
                setattr(direction, key, value)

    def _forward(self, face_side: str, data: bytes) -> None:
        # A datagram reaching the socket that stands for ``face_side`` was sent by the other
        # peer; it leaves from the other peer's socket toward ``face_side``'s real address.
        sender = "b" if face_side == "a" else "a"
        direction = self.ab if sender == "a" else self.ba
        target = self.real.get(face_side)
        out = self.faces[sender].transport
        if target is None or out is None:
            return
        if not direction.passes(data):
            direction.dropped += 1
            return
        direction.forwarded += 1
        if direction.delay > 0:
            asyncio.get_running_loop().call_later(direction.delay, _send, out, data, target)
        else:
            out.sendto(data, target)

    def close(self) -> None:
        for face in self.faces.values():
            if face.transport is not None:
                face.transport.close()


def _send(transport: asyncio.DatagramTransport, data: bytes, target: tuple[str, int]) -> None:
    if not transport.is_closing():
        transport.sendto(data, target)
