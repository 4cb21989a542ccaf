"""What the downlink estimator costs the SFU: ``python -m loadtests.bwe_cost``.

``DownlinkEstimator.on_sent`` runs for every packet sent to every subscriber, inside the
forwarding path, so its cost is printed in nanoseconds of CPU per call, in all and above the
cost of calling an empty method the same way (what the estimator adds to a call the send path
makes anyway). Feedback and the periodic update run ~10–20 times a second per subscriber; they
are printed per packet reported and per call.
"""

from __future__ import annotations

import argparse
import time

from media.bwe import DownlinkEstimator
from media.rtp import build_transport_feedback, parse_rtcp


class _Empty:
    def on_sent(self, seq: int, size: int, now: float, cluster: int = -1) -> None:
        pass


def on_sent_ns(calls: int, rounds: int) -> tuple[float, float]:
    """(ns per call in all, ns per call above an empty method's), best of ``rounds``."""
    est = DownlinkEstimator()
    empty = _Empty()
    seqs = [i & 0xFFFF for i in range(calls)]
    now = 1000.0
    best = float("inf")
    best_total = float("inf")
    for _ in range(rounds):
        send = est.on_sent
        start = time.process_time_ns()
        for seq in seqs:
            send(seq, 1200, now, -1)
        spent = time.process_time_ns() - start
        send_empty = empty.on_sent
        start = time.process_time_ns()
        for seq in seqs:
            send_empty(seq, 1200, now, -1)
        base = time.process_time_ns() - start
        best = min(best, (spent - base) / calls)
        best_total = min(best_total, spent / calls)
    return best_total, best


def feedback_cost(reports: int, per_report: int) -> tuple[float, float]:
    """(µs per reported packet in on_transport_feedback, µs per update call)."""
    est = DownlinkEstimator()
    seq = 0
    t = 0.0
    work = 0.0
    updates = 0.0
    for _ in range(reports):
        arrivals: list[float | None] = []
        first = seq
        for i in range(per_report):
            est.on_sent(seq & 0xFFFF, 1200, t + i * 0.002)
            arrivals.append(None if i % 50 == 49 else 500.0 + t + 0.03 + i * 0.002)
            seq += 1
        t += per_report * 0.002
        (fb,) = parse_rtcp(build_transport_feedback(1, 2, first & 0xFFFF, 0, arrivals))
        assert fb.twcc is not None
        start = time.process_time()
        est.on_transport_feedback(fb.twcc, t + 0.05)
        work += time.process_time() - start
        start = time.process_time()
        est.update(t + 0.05)
        updates += time.process_time() - start
    return work / (reports * per_report) * 1e6, updates / reports * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    total, ns = on_sent_ns(args.calls, args.rounds)
    per_packet, per_update = feedback_cost(500, 40)
    print(
        f"on_sent: {total:.0f} ns per call, {ns:.0f} ns above an empty method call "
        f"(best of {args.rounds} × {args.calls}, CPU time)"
    )
    print(f"on_transport_feedback: {per_packet:.2f} µs per reported packet (40 per feedback)")
    print(f"update: {per_update:.2f} µs per call")


if __name__ == "__main__":
    main()
