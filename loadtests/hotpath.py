"""Profile the SFU's per-packet path in isolation: ``python -m loadtests.hotpath``.

One video producer fans out to N consumers whose transports do the real work below them — the
subscriber's send path (``SubscribeTransport.send_media``: pacing, the transport-wide sequence
number and the downlink estimator's send history), SRTP protect (pylibsrtp) and a UDP
``sendto`` to a socket on 127.0.0.1 — so the number is the forwarding cost alone, without ICE,
DTLS, RTCP timers or the event loop. Packets carry the times of an 800 kbit/s stream (so the
pacer lets them through as it would in a lesson) while the loop runs as fast as it can.
Prints CPU µs per forwarded packet and a cProfile breakdown.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import socket
import struct
import time

from pylibsrtp import Policy, Session

from media.extensions import TRANSPORT_CC_ID
from media.policing import Policer
from media.router import Codec, Consumer, Producer
from media.transport import SubscribeTransport


class _SocketTransport:
    """The sending half of a subscribe transport: the same ``send_media`` and ``send_rtp`` as
    ``media.transport``, on a real SRTP session and socket."""

    send_rtp = SubscribeTransport.send_rtp
    send_media = SubscribeTransport.send_media
    _emit = SubscribeTransport._emit
    _wake = SubscribeTransport._wake
    _drain = SubscribeTransport._drain
    closed = False
    _probe = None
    _probe_handle = None

    def __init__(self, sock: socket.socket, peer: tuple[str, int], transport_cc: bool) -> None:
        policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
        policy.allow_repeat_tx = True
        self._tx = Session(policy)
        self._sendto = sock.sendto
        self._peer = peer
        SubscribeTransport.init_sending(self)  # type: ignore[arg-type]
        if transport_cc:
            self._tcc_word = ((TRANSPORT_CC_ID << 4) | 1) << 24

    def forget_consumer(self, consumer: Consumer) -> None:
        pass

    def send_nack(self, ssrc: int, lost: list[int]) -> None:
        pass

    def send_pli(self, ssrc: int) -> None:
        pass

    @staticmethod
    def now() -> float:
        return time.time()


STREAM_BITRATE = 800_000
"""The video stream whose packet times the benchmark replays, bits per second."""


def run(
    consumers: int, packets: int, profile: bool, transport_cc: bool = True, rtx: bool = False
) -> float:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    peer = sink.getsockname()
    producer = Producer(
        producer_id="pr",
        participant_id="p",
        kind="video",
        codec=Codec("video/VP8", 90000, 96),
        ssrc=1,
        transport=_SocketTransport(out, peer, transport_cc),  # type: ignore[arg-type]
        policer=Policer.for_stream("video", 1_500_000),  # as every publisher's producer has
    )
    for i in range(consumers):
        c = Consumer(
            consumer_id=f"c{i}",
            producer=producer,
            transport=_SocketTransport(out, peer, transport_cc),  # type: ignore[arg-type]
            ssrc=1000 + i,
            payload_type=96,
            abs_send_time=not transport_cc,
            transport_cc=transport_cc,
            rtx_ssrc=5000 + i if rtx else None,
            rtx_payload_type=97 if rtx else None,
        )
        producer.add_consumer(c)
    payload = b"\x10\x00\x9d\x01\x2a" + os.urandom(1100)
    ext = struct.pack("!HH", 0xBEDE, 1) + bytes([0x22, 1, 2, 3])
    datagrams = [
        struct.pack("!BBHII", 0x90, 96, seq & 0xFFFF, seq * 3000, 1) + ext + payload
        for seq in range(packets)
    ]

    def drain() -> None:
        try:
            while True:
                sink.recv(2048)
        except BlockingIOError:
            pass

    profiler = cProfile.Profile() if profile else None
    interval = len(datagrams[0]) * 8 / STREAM_BITRATE
    t0 = time.time()
    start = time.process_time()
    for i, data in enumerate(datagrams):
        if profiler:
            profiler.enable()
        producer.receive(data, t0 + i * interval)
        if profiler:
            profiler.disable()
        if i % 8 == 0:
            drain()
    cpu = time.process_time() - start
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    return cpu / (packets * consumers) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--consumers", type=int, default=40)
    parser.add_argument("--packets", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--abs-send-time",
        action="store_true",
        help="subscribers without transport-wide feedback (abs-send-time for REMB)",
    )
    parser.add_argument(
        "--rtx", action="store_true", help="subscribers that negotiated RTX (RFC 4588)"
    )
    args = parser.parse_args()
    transport_cc = not args.abs_send_time
    us = run(args.consumers, args.packets, False, transport_cc, args.rtx)
    print(
        f"{us:.2f} CPU µs per forwarded packet ({args.consumers} consumers, "
        f"{args.packets} packets, {'transport-wide-cc' if transport_cc else 'abs-send-time'}"
        f"{', RTX' if args.rtx else ''}; includes draining the receiving socket)"
    )
    if args.profile:
        run(args.consumers, args.packets, True, transport_cc, args.rtx)


if __name__ == "__main__":
    main()
