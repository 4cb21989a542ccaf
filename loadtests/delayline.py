"""A delay line: forwards every Ethernet frame between two interfaces after a fixed delay.

``python -m loadtests.delayline IFACE_A IFACE_B`` runs inside a network namespace the caller
created (``loadtests/netem.py`` puts it in the router namespace of a weak link, between a host's
veth and the bridge). It opens one ``AF_PACKET`` raw socket per interface (packet(7)), reads
every frame that arrives on one side and sends it out of the other ``delay`` seconds later, in
arrival order, in both directions. Frames the line sent itself show up on its socket as
``PACKET_OUTGOING`` and are skipped. It adds latency only: rate limits (``tc tbf`` on an
interface the line sends into, which a packet socket's frames pass through) and loss (nftables
on the receiving host) are applied elsewhere. When the interface's queue refuses a frame
(``ENOBUFS``: the shaper's queue is full), the frame is dropped and counted, as a router would.

The host on either side keeps its own address, so nothing changes for ICE. Interfaces must have
checksum and segmentation offloads off (``ethtool -K``): a frame read from a packet socket is
sent as is, so it must be a finished, MTU-sized frame.

Control, one line at a time on stdin: ``delay <ms>`` sets the one-way delay (both directions;
frames already queued keep their time), ``stats`` prints a JSON line of counters. The line
prints ``ready`` once both sockets are bound, and exits when stdin closes (its parent went away)
or on SIGTERM.
"""

from __future__ import annotations

import collections
import errno
import json
import os
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["DelayLine", "main"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65_536
RECEIVE_BUFFER = 4 * 1024 * 1024


def _packet_socket(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


@dataclass
class _Side:
    name: str
    sock: socket.socket
    queue: collections.deque[tuple[float, bytes]] = field(default_factory=collections.deque)
    """Frames read on the *other* side, to send out of this one: (when due, frame)."""
    received: int = 0
    sent: int = 0
    dropped: int = 0


class DelayLine:
    def __init__(self, a: str, b: str, delay: float = 0.0) -> None:
        self.delay = delay
        self.sides = (_Side(a, _packet_socket(a)), _Side(b, _packet_socket(b)))
        self.running = True

    def _read(self, source: _Side, target: _Side, now: float) -> None:
        for _ in range(256):
            try:
                frame, address = source.sock.recvfrom(MAX_FRAME)
            except BlockingIOError:
                return
            if address[0] != source.name or address[2] == PACKET_OUTGOING:
                continue
            source.received += 1
            target.queue.append((now + self.delay, frame))

    def _flush(self, side: _Side, now: float) -> None:
        while side.queue and side.queue[0][0] <= now:
            _, frame = side.queue.popleft()
            try:
                side.sock.send(frame)
                side.sent += 1
            except OSError as exc:
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.EMSGSIZE):
                    raise
                side.dropped += 1

    def stats(self) -> dict[str, object]:
        return {
            "delay_ms": round(self.delay * 1000, 3),
            **{
                side.name: {
                    "received": side.received,
                    "sent": side.sent,
                    "dropped": side.dropped,
                    "queued": len(side.queue),
                }
                for side in self.sides
            },
        }

    def _command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        if words[0] == "delay" and len(words) == 2:
            self.delay = max(0.0, float(words[1]) / 1000)
            print("ok", flush=True)
        elif words[0] == "stats":
            print(json.dumps(self.stats()), flush=True)
        else:
            print(f"error: unknown command {line!r}", flush=True)

    def run(self, control: int) -> None:
        a, b = self.sides
        selector = selectors.DefaultSelector()
        selector.register(a.sock, selectors.EVENT_READ, (a, b))
        selector.register(b.sock, selectors.EVENT_READ, (b, a))
        selector.register(control, selectors.EVENT_READ, None)
        pending = b""
        print("ready", flush=True)
        while self.running:
            now = time.monotonic()
            heads = [side.queue[0][0] for side in self.sides if side.queue]
            timeout = max(0.0, min(heads) - now) if heads else 1.0
            for key, _ in selector.select(timeout):
                now = time.monotonic()
                if key.data is None:
                    chunk = os.read(control, 4096)
                    if not chunk:
                        return
                    pending += chunk
                    while b"\n" in pending:
                        line, pending = pending.split(b"\n", 1)
                        self._command(line.decode())
                else:
                    source, target = key.data
                    self._read(source, target, now)
            now = time.monotonic()
            for side in self.sides:
                self._flush(side, now)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3):
        raise SystemExit("usage: python -m loadtests.delayline IFACE_A IFACE_B [DELAY_MS]")
    line = DelayLine(args[0], args[1], float(args[2]) / 1000 if len(args) == 3 else 0.0)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        line.running = False

    signal.signal(signal.SIGTERM, stop)
    line.run(sys.stdin.fileno())


if __name__ == "__main__":
    main()
