"""The downlink estimator: its parts on hand-made feedback, then whole calls over simulated links
(``linksim``: token bucket, time-bounded drop-tail queue, random loss, delay, real TWCC bytes),
then recorded traces replayed through a fresh estimator."""

from __future__ import annotations

import json
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.bwe import (
    HISTORY_SIZE,
    PROBE_MIN_BYTES,
    TRENDLINE_WINDOW,
    DownlinkEstimator,
    _Cluster,
    _slope,
    _Trendline,
    probe_cluster_bytes,
    probe_result,
)
from media.rtp import TransportFeedback, build_transport_feedback, parse_rtcp

from .linksim import (
    DECISIONS,
    TRACES,
    Call,
    Link,
    decision_calls,
    decisions_of,
    read_trace,
    replay,
)

# -- parts ------------------------------------------------------------------------------------


def feedback(
    first: int, arrivals: list[float | None], count: int = 0, offset: float = 500.0
) -> TransportFeedback:
    packets = tuple(
        ((first + i) & 0xFFFF, None if a is None else a + offset) for i, a in enumerate(arrivals)
    )
    return TransportFeedback(first & 0xFFFF, count, offset, packets)


def paced(
    est: DownlinkEstimator,
    *,
    first: int,
    n: int,
    start: float,
    send_gap: float,
    arrival_gap: float,
    size: int = 1200,
    lose_every: int = 0,
    delay: float = 0.05,
    cluster: int = -1,
) -> list[float | None]:
    """Send n packets every send_gap; they arrive every arrival_gap (a queue when larger)."""
    arrivals: list[float | None] = []
    for i in range(n):
        est.on_sent((first + i) & 0xFFFF, size, start + i * send_gap, cluster)
        lost = lose_every and i % lose_every == lose_every - 1
        arrivals.append(None if lost else start + delay + i * arrival_gap)
    return arrivals


def test_send_history_wraps_and_counts_each_packet_once() -> None:
    est = DownlinkEstimator()
    arrivals = paced(est, first=65530, n=12, start=1.0, send_gap=0.01, arrival_gap=0.01)
    fb = feedback(65530, arrivals[:6])
    est.on_transport_feedback(fb, 1.2)
    est.on_transport_feedback(fb, 1.2)  # a duplicate changes nothing
    est.on_transport_feedback(feedback(65536, arrivals[6:]), 1.3)  # across the wrap
    assert est.snapshot()["feedbacks"] == 2  # the duplicate was not counted
    assert est._fb_ext == 65530 + 11
    assert est._loss_total == 12 and est._loss_lost == 0
    # Sequence numbers the estimator never sent (or that a ring slot no longer holds) are
    # ignored rather than matched with another packet's send time.
    stale = feedback(65542 + HISTORY_SIZE, [2.0, 2.01])
    est.on_transport_feedback(stale, 2.1)
    assert est._loss_total == 12


def test_receiver_report_loss_steps() -> None:
    est = DownlinkEstimator(start_bitrate=500_000)
    est.on_receiver_loss(0, 0.0)  # audio: nothing lost
    est.on_receiver_loss(64, 0.0)  # video: 25 % lost; the worst block counts
    assert est.update(0.1) == int(500_000 * (1 - 0.5 * 0.25))
    est.on_receiver_loss(13, 1.1)  # 5 %: hold
    assert est.update(1.2) == int(500_000 * (1 - 0.5 * 0.25))
    est.on_receiver_loss(2, 2.2)  # under 2 %: up to 8 % above the last second's lowest
    assert est.update(2.3) == int(500_000 * (1 - 0.5 * 0.25) * 1.08 + 1000)
    assert est.snapshot()["source"] == "loss"


def test_feedback_about_nothing_sent_does_not_switch_off_the_fallbacks() -> None:
    est = DownlinkEstimator()
    est.on_receiver_loss(0, 0.0)
    est.on_transport_feedback(feedback(100, [1.0, 1.1]), 1.0)  # never sent
    est.update(1.1)
    assert est.snapshot()["source"] == "loss" and est.snapshot()["feedbacks"] == 0


def test_reported_losses_reach_the_loss_fraction() -> None:
    est = DownlinkEstimator()
    arrivals = paced(est, first=0, n=200, start=0.0, send_gap=0.005, arrival_gap=0.005)
    for k in range(0, 200, 20):
        chunk = [None if i % 4 == 0 else a for i, a in enumerate(arrivals[k : k + 20])]
        est.on_transport_feedback(feedback(k, chunk), k * 0.005 + 0.15)
    est.update(1.1)
    assert est.snapshot()["loss_fraction"] == pytest.approx(0.25)
    assert est.estimate < 1_000_000  # 25 % loss is a decrease


def test_a_growing_queue_is_overuse_and_a_steady_one_is_not() -> None:
    steady = DownlinkEstimator()
    growing = DownlinkEstimator()
    for est, arrival_gap in ((steady, 0.010), (growing, 0.013)):
        seq = 0
        for step in range(20):  # 2 s, feedback every 100 ms
            start = step * 0.1
            arrivals = paced(
                est, first=seq, n=10, start=start, send_gap=0.01, arrival_gap=arrival_gap
            )
            # the queue carries over: shift by what accumulated so far
            arrivals = [
                None if a is None else a + step * 10 * (arrival_gap - 0.01) for a in arrivals
            ]
            est.on_transport_feedback(feedback(seq, arrivals), start + 0.15)
            est.update(start + 0.15)
            seq += 10
    assert steady.detector_state == "normal"
    assert float(growing.snapshot()["trend"]) > 0.1
    assert growing._aimd.capacity_kbps is not None  # an overuse was seen and acted on
    assert growing.estimate < steady.estimate


def probe_through(link: Link, rate: int, start: float = 1.0) -> tuple[_Cluster, int]:
    """Send one probe cluster at ``rate`` through ``link``; return it and the naive rate
    (received bytes over the whole cluster's arrival time)."""
    cluster = _Cluster(0, rate, start, 0.0)
    t = start
    for _ in range(probe_cluster_bytes(rate) // 1200):
        arrival = link.send(t, 1200)
        cluster.sent.append((t, 1200))
        if arrival is not None:
            cluster.received.append((t, arrival, 1200))
        t += 1200 * 8 / rate
    got = cluster.received
    naive = (sum(z for *_, z in got) - got[0][2]) * 8 / (got[-1][1] - got[0][1])
    return cluster, int(naive)


@pytest.mark.parametrize("rate", [600_000, 1_200_000, 3_000_000])
def test_probe_result_ignores_a_token_bucket_burst(rate: int) -> None:
    cluster, naive = probe_through(Link(300_000, burst=5000), rate)
    assert naive > 360_000  # the whole cluster overstates the link by a fifth or more
    assert 250_000 <= probe_result(cluster) <= 310_000


def test_probe_result_on_an_open_link_is_the_sending_rate() -> None:
    cluster, _ = probe_through(Link(None), 800_000)
    assert 760_000 <= probe_result(cluster) <= 800_000
    cluster, _ = probe_through(Link(5_000_000, burst=1500), 800_000)
    assert 760_000 <= probe_result(cluster) <= 800_000


def test_probe_clusters_are_long_enough_and_bounded() -> None:
    assert probe_cluster_bytes(4_000_000) == 4_000_000 * 0.15 / 8
    assert probe_cluster_bytes(600_000) == PROBE_MIN_BYTES
    assert probe_cluster_bytes(60_000) == 60_000 // 8  # at most a second of it


def test_probe_policy() -> None:
    est = DownlinkEstimator(start_bitrate=100_000)
    assert est.next_probe(0.0, 90_000) == 0  # nothing wanted beyond the estimate
    assert est.next_probe(0.0, 1_000_000, app_limited=False) == 0  # traffic can prove it
    rate = est.next_probe(0.0, 1_000_000)
    assert rate == 200_000
    cid = est.start_probe(rate, 0.0)
    assert est.next_probe(0.1, 1_000_000) == 0  # one cluster at a time
    # The cluster goes out paced at its rate over an open path and is reported.
    n = probe_cluster_bytes(rate) // 1200
    gap = 1200 * 8 / rate
    arrivals = paced(est, first=0, n=n, start=0.0, send_gap=gap, arrival_gap=gap, cluster=cid)
    est.on_sent(n, 100, n * 0.048 + 0.1)  # audio after the cluster
    arrivals.append(0.05 + n * 0.048 + 0.1)
    est.on_transport_feedback(feedback(0, arrivals), n * 0.048 + 0.2)
    assert 180_000 <= int(est.snapshot()["probe_result"]) <= 200_000
    assert est.update(n * 0.048 + 0.2) >= 180_000
    # A success may be followed at once, twice as high.
    assert est.next_probe(n * 0.048 + 0.3, 1_000_000, app_limited=False) >= 360_000


def test_a_failed_probe_backs_off() -> None:
    est = DownlinkEstimator(start_bitrate=100_000)
    cid = est.start_probe(200_000, 0.0)
    # Nothing of the cluster is ever reported: it times out as a failure.
    assert est.update(0.5) == 100_000
    est.update(3.0)
    assert est.snapshot()["probe_result"] == 0 and cid == 0
    assert est.next_probe(4.9, 1_000_000) == 0
    assert est.next_probe(5.0, 1_000_000) == 200_000  # 2 s after the first failure
    est.start_probe(200_000, 5.0)
    est.update(8.0)  # fails again
    assert est.next_probe(11.9, 1_000_000) == 0
    assert est.next_probe(12.0, 1_000_000) == 200_000  # then 4 s, then 5 s at most


def test_remb_caps_transport_cc_and_bounds_are_kept() -> None:
    call = Call(Link(None), DownlinkEstimator(max_bitrate=2_000_000))
    call.run(3.0)
    est = call.estimator
    est.on_remb(400_000, 3.0)
    assert est.update(3.1) == 400_000 and est.snapshot()["source"] == "twcc"
    est.on_remb(10, 3.2)
    assert est.update(3.3) == est.min_bitrate
    with pytest.raises(ValueError):
        DownlinkEstimator(min_bitrate=0)


feedback_packets = st.lists(
    st.tuples(st.integers(0, 0xFFFF), st.one_of(st.none(), st.floats(-1e6, 1e6))),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), feedback_packets), min_size=1, max_size=8))
def test_made_up_feedback_cannot_break_the_estimator(
    reports: list[tuple[int, list[tuple[int, float | None]]]],
) -> None:
    """A subscriber's feedback is untrusted: whatever it claims, the estimator keeps running
    and its estimate stays within bounds."""
    est = DownlinkEstimator(min_bitrate=50_000, max_bitrate=2_000_000)
    t = 0.0
    for i in range(300):
        est.on_sent(i, 1200, i * 0.003, 0 if 100 <= i < 120 else -1)
    est.start_probe(500_000, 0.3)
    for k, (base, packets) in enumerate(reports):
        t = 1.0 + k * 0.1
        fb = TransportFeedback(base, k & 0xFF, 0.0, tuple(packets))
        est.on_transport_feedback(fb, t)
        assert 50_000 <= est.update(t) <= 2_000_000
    est.update(t + 5.0)
    assert est.snapshot()["detector"] in ("normal", "overusing", "underusing")


# -- whole calls -------------------------------------------------------------------------------


def test_an_unconstrained_link_keeps_the_estimate_above_what_is_sent() -> None:
    call = Call(Link(10_000_000), DownlinkEstimator())
    call.run(15.0)
    for second in range(1, 15):
        sent = call.sent_rate(second, second + 1)
        assert call.estimate_at(second + 1) >= 0.95 * sent
    assert all(s["detector"] != "overusing" for _, s in call.snapshots)
    assert call.estimate_at(15.0) >= 2_000_000  # 8 % a second, the loss bound trailing


def test_a_capacity_drop_cuts_the_estimate_within_two_seconds() -> None:
    call = Call(Link(2_000_000), DownlinkEstimator())
    call.rate_changes = [(8.0, 150_000)]
    call.run(16.0)
    assert call.estimate_at(7.9) >= 1_300_000
    assert max(call.estimates_between(10.0, 16.0)) <= 200_000
    assert min(call.estimates_between(10.0, 16.0)) >= 60_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_loss_on_a_slow_link_does_not_collapse_the_estimate(seed: int) -> None:
    call = Call(Link(300_000, loss=0.05, seed=seed), DownlinkEstimator(), seed=seed)
    call.run(40.0)
    late = call.estimates_between(15.0, 40.0)
    inside = [e for e in late if 200_000 <= e <= 400_000]
    assert 200_000 <= statistics.median(late) <= 400_000
    assert len(inside) >= 0.85 * len(late)
    assert min(late) >= 150_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_loss_on_a_megabit_link_keeps_most_of_it(seed: int) -> None:
    call = Call(Link(1_000_000, loss=0.05, seed=seed), DownlinkEstimator(), seed=seed)
    call.run(30.0)
    late = call.estimates_between(10.0, 30.0)
    assert min(late) >= 600_000
    assert statistics.median(late) >= 800_000


def test_probes_find_recovered_capacity() -> None:
    call = Call(Link(150_000), DownlinkEstimator())
    call.rate_changes = [(10.0, None)]
    call.run(20.0)
    assert max(call.estimates_between(3.0, 10.0)) <= 200_000  # video paused: audio and probes
    assert call.estimate_at(20.0) >= 800_000
    assert any(int(s["probe_result"]) >= 400_000 for t, s in call.snapshots if t > 10.0)


def test_probes_through_a_token_bucket_do_not_overshoot() -> None:
    # Start below the lowest video layer so the sender probes from the first second.
    call = Call(Link(300_000, burst=5000), DownlinkEstimator(start_bitrate=60_000))
    call.run(20.0)
    results = [int(s["probe_result"]) for _, s in call.snapshots]
    assert max(results) <= 320_000
    assert max(results) >= 150_000  # the probes did raise it
    assert max(e for _, e in call.estimates) <= 400_000


def test_without_transport_cc_receiver_report_loss_bounds_the_estimate() -> None:
    call = Call(Link(500_000), DownlinkEstimator(), mode="rr")
    call.run(30.0)
    late = call.estimates_between(6.0, 30.0)
    assert all(s["source"] == "loss" for t, s in call.snapshots if t >= 2.0)
    assert 350_000 <= min(late) and max(late) <= 650_000
    lossless = Call(Link(None), DownlinkEstimator(start_bitrate=300_000), mode="rr")
    lossless.run(10.0)
    assert lossless.estimate_at(10.0) >= 500_000  # 8 % a second while nothing is lost


def test_without_transport_cc_remb_leads() -> None:
    call = Call(Link(500_000), DownlinkEstimator(), mode="remb")
    call.rate_changes = [(10.0, 2_000_000)]
    call.run(20.0)
    assert all(s["source"] == "remb" for t, s in call.snapshots if t >= 2.0)
    assert set(call.estimates_between(3.0, 10.0)) == {450_000}
    assert call.estimate_at(13.0) == 1_800_000
    capped = Call(Link(None), DownlinkEstimator(max_bitrate=1_000_000), mode="remb")
    capped.run(5.0)
    assert capped.estimate_at(5.0) == 1_000_000  # 0.9 × 10 Mbit/s, clamped


def test_silent_feedback_while_sending_cuts_the_estimate() -> None:
    link = Link(1_000_000)
    call = Call(link, DownlinkEstimator())
    call.run(5.0)
    before = call.estimate_at(5.0)
    link.loss = 1.0  # the downlink dies: nothing arrives, nothing is reported
    call.run(10.0)
    assert call.estimate_at(10.0) <= 0.5 * before


def test_the_snapshot_names_its_inputs_and_decisions() -> None:
    call = Call(Link(1_000_000), DownlinkEstimator())
    call.run(3.0)
    snap = call.estimator.snapshot()
    assert snap["source"] == "twcc"
    assert snap["detector"] in ("normal", "overusing", "underusing")
    assert snap["rate_control"] in ("increase", "hold", "decrease")
    for key in ("delay_based", "loss_based", "acked_bitrate", "loss_fraction", "trend"):
        assert key in snap
    assert int(snap["acked_bitrate"]) > 0 and float(snap["threshold"]) >= 6.0
    assert DownlinkEstimator().snapshot()["source"] == "start"


# -- recorded traces ---------------------------------------------------------------------------


def test_trace_of_a_capacity_drop_replays_to_the_same_decisions() -> None:
    header, events = read_trace(TRACES / "drop_2m_to_150k.jsonl")
    drop = float(header["drop_at"])  # type: ignore[arg-type]
    out = replay(events, DownlinkEstimator())
    before = [e for t, e, _ in out if drop - 2 <= t < drop]
    after = [e for t, e, _ in out if drop + 2 <= t]
    assert min(before) >= 1_300_000
    assert after and max(after) <= 200_000
    cut = [s for t, _, s in out if drop <= t <= drop + 2]
    assert any(s["detector"] == "overusing" for s in cut)
    assert any(float(s["loss_fraction"]) > 0.1 for s in cut)


def test_trace_of_a_recovery_replays_to_probes_that_succeed() -> None:
    header, events = read_trace(TRACES / "recover_150k_to_unlimited.jsonl")
    recover = float(header["recover_at"])  # type: ignore[arg-type]
    out = replay(events, DownlinkEstimator())
    assert max(e for t, e, _ in out if 3.0 <= t < recover) <= 200_000
    assert max(e for t, e, _ in out if t >= recover) >= 800_000
    assert max(int(s["probe_result"]) for t, _, s in out if t > recover) >= 400_000


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=0.05),  # send spacing, s
            st.floats(min_value=-0.02, max_value=0.08),  # extra arrival spacing, s
        ),
        min_size=TRENDLINE_WINDOW,
        max_size=700,
    )
)
def test_the_trendline_running_sums_give_the_least_squares_slope(
    steps: list[tuple[float, float]],
) -> None:
    """The O(1) running sums (rebased every few hundred updates) agree with the slope
    computed from the window's points, over long runs as well as short ones."""
    trend = _Trendline()
    arrival = 1000.0
    for d_send, extra in steps:
        d_arrival = max(d_send + extra, 0.0)
        arrival += d_arrival
        trend.update(d_send, d_arrival, arrival)
        if len(trend.window) == TRENDLINE_WINDOW:
            exact = _slope(trend.window)
            if exact is not None:
                assert trend.trend == pytest.approx(exact, rel=1e-6, abs=1e-9)


# -- a receiver that stalls ---------------------------------------------------------------------

STALLS = [(8.0, 0.15), (11.0, 0.3), (14.5, 0.2), (17.0, 0.25), (17.6, 0.15), (21.0, 0.3)]


def test_receiver_stalls_do_not_cut_an_app_limited_sender_below_what_it_sends() -> None:
    """A receiver whose CPU is starved stamps a backlog of arrivals late: the delay grows and
    vanishes while the link (10 Mbit/s) carries everything the sender has (800 kbit/s of
    video, app-limited). The trend may read overuse, but the estimate must stay above what
    the sender sends, so the allocation never has to hold its video."""
    call = Call(Link(10_000_000), DownlinkEstimator(), app_video=800_000, stalls=STALLS)
    call.run(25.0)
    assert any(s["detector"] == "overusing" for t, s in call.snapshots if t >= 8.0)
    need = 800_000 + 40_000
    assert min(call.estimates_between(4.0, 25.0)) >= need


def test_an_app_limited_sender_whose_link_drops_is_still_cut() -> None:
    call = Call(Link(10_000_000), DownlinkEstimator(), app_video=800_000, stalls=STALLS[:2])
    call.rate_changes = [(13.0, 500_000)]
    call.run(20.0)
    assert call.estimate_at(12.9) >= 840_000
    assert max(call.estimates_between(15.0, 20.0)) <= 600_000
    assert min(call.estimates_between(15.0, 20.0)) >= 250_000


def test_a_stall_while_video_is_held_keeps_what_a_probe_proved() -> None:
    """Video held (the sender has only audio), the estimate raised by probes: stalls must not
    cut it back to a fraction of the audio."""
    call = Call(Link(5_000_000), DownlinkEstimator(start_bitrate=60_000), app_video=0)
    call.stalls = [(t, 0.2) for t in (8.0, 9.5, 11.0, 13.0, 15.5)]
    call.wanted = 900_000
    call.run(18.0)
    assert call.estimate_at(7.9) >= 900_000  # probes found the link
    assert min(call.estimates_between(8.0, 18.0)) >= 700_000


# -- the decisions are pinned ---------------------------------------------------------------------


def test_closed_loop_decisions_are_those_recorded() -> None:
    """Every decision of five closed-loop calls (drop, recovery, random loss, token bucket,
    receiver stalls) equals the recording: the per-packet work may get cheaper, never
    different."""
    recorded = json.loads(DECISIONS.read_text())
    for name, call in decision_calls().items():
        assert decisions_of(call) == recorded[name], name


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 400)), min_size=1, max_size=80),
    st.integers(0, 0xFFFF),
)
def test_parsed_and_listed_feedback_decide_alike(steps: list[int | None], first: int) -> None:
    """The same report read from bytes (the parser's compact form) and given as a list of
    (sequence number, arrival) pairs moves two estimators identically."""
    a, b = DownlinkEstimator(), DownlinkEstimator()
    arrivals: list[float | None] = []
    t = 4000
    for i, step in enumerate(steps):
        for est in (a, b):
            est.on_sent((first + i) & 0xFFFF, 1000 + 7 * i, 1.0 + 0.004 * i, -1)
        if step is not None:
            t += step
        arrivals.append(None if step is None else t * 0.00025)
    if all(x is None for x in arrivals):
        arrivals[0] = 1.0
    (fb,) = parse_rtcp(build_transport_feedback(1, 2, first, 0, arrivals))
    assert fb.twcc is not None
    listed = TransportFeedback(fb.twcc.base_seq, 0, 0.0, tuple(fb.twcc.packets))
    a.on_transport_feedback(fb.twcc, 2.0)
    b.on_transport_feedback(listed, 2.0)
    assert a.update(2.1) == b.update(2.1)
    assert a.snapshot() == b.snapshot()
