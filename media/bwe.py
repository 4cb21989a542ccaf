"""A subscriber's downlink bandwidth estimate: Google Congestion Control on the sender side.

The SFU writes its own transport-wide sequence number into every RTP packet it sends a
subscriber (draft-holmer-rmcat-transport-wide-cc-extensions-01) and the subscriber's browser
reports, every 50–250 ms, when each packet arrived. :class:`DownlinkEstimator` turns those
reports into the bitrate the allocator may share out, in the design of draft-ietf-rmcat-gcc-02
(the sender-side variant libwebrtc ships as ``goog_cc``). It is sans-I/O: it is fed packets,
feedback and clock readings, and it never reads a clock or touches a socket, so it is tested
with simulated links and recorded traces (``tests/media/test_bwe.py``, ``test_twcc.py``).

**Send history.** ``on_sent`` runs for every packet the subscriber is sent (the transport's
send path inlines it), so it only stores one tuple — the packet's 16-bit sequence number, send
time, size and probe cluster — in a preallocated list indexed by ``seq & 4095``. 4096 slots
hold several seconds of the heaviest stream a subscriber is sent (4 Mbit/s is ~400 packets/s),
far more than feedback ever lags. Feedback sequence numbers are unwrapped with an extended
counter (the highest one already processed; a parsed report's consecutive numbers once per
report), a slot whose stored sequence number differs belongs to another packet, and each
packet is counted once. The feedback loop works per packet only where it must (history, loss,
the acknowledged-bitrate windows, the grouping below, all on local variables) and runs the
trendline once per group.

**Delay-based estimate** (gcc-02 §5). Received packets, in arrival order, are grouped: a group
is every packet sent within 5 ms of the group's first one (a video frame leaves the SFU as one
burst), and a packet that arrives within 5 ms of the previous one yet with a smaller propagation
delay joins it too (the path delivered a burst, e.g. after a radio scheduling gap; up to 100 ms
of them). Between consecutive groups the one-way delay variation is ``d = Δarrival − Δsend``.
The *trendline filter* accumulates ``d``, smooths the sum exponentially (α = 0.9), and fits a
least-squares line to the last 20 (arrival time, smoothed delay) points: its slope is the rate
at which the bottleneck queue grows. The *overuse detector* compares the slope, scaled by the
number of samples (at most 60) and a gain of 4, with an adaptive threshold γ (gcc-02 §5.4): γ
moves toward |m| by ``k·(|m| − γ)·Δt`` with k = 0.039 going down and 0.0087 going up, and
stays within 6 … 600 (starting at 12.5); a value more than 15 above γ does not move it (a single
spike is no reason to become deaf). Overuse is declared only when the slope has stayed above γ
for 10 ms and for two samples and is not falling; underuse when it is below −γ.

**AIMD rate control** (gcc-02 §5.5). *increase* on normal, *hold* on underuse (the queue
drains, let it), *decrease* on overuse, then hold. Far from the last known congestion point the
increase is multiplicative, 8 % per second; once an overuse has shown where the link saturates
(the mean and spread of the acknowledged bitrate at overuse), it is additive, about one packet
per response time (100 ms + RTT), at least 4 kbit/s per second. The estimate never grows above
1.5 × the acknowledged bitrate (or what was delivered over the last 300 ms, if more: the
smoothed figure trails video that resumes after a hold) + 10 kbit/s: it grows only while
traffic proves the link carries it. On overuse it drops to 0.85 × the acknowledged bitrate, at
most once per RTT (10 … 200 ms).
The *acknowledged bitrate* is measured from feedback over 150 ms windows of arrival time (the
first over 500 ms) and smoothed by a Bayesian update whose sample variance grows with the
sample's distance from the estimate, so one odd window barely moves it.

**Doubted overuse** (a departure from gcc-02). A receiver whose CPU is starved (a phone, a
loaded machine) reads nothing for a while and then stamps its backlog at once: the delay grows
and vanishes while the link carries everything, and the trend reads overuse. Cutting then to
0.85 × what an app-limited sender sends (video at 850 kbit/s under an estimate of 1.2 Mbit/s)
lands below what its audio and video need, and the allocator holds the video for nothing. So
an overuse is *doubted* when no packet was reported lost for a second, the packets of the last
second (of arrival time) were delivered at least 90 % as fast as they were sent (no queue grew
at the link over that second) and delivered below the estimate (the sender was app-limited,
the link was never asked for more): it cuts the estimate no lower than 1.15 × the rate
delivered (so the sender stays app-limited through the next stall) or the last successful
probe's result, whichever is higher, and teaches the capacity estimate nothing. A real drop
below what is sent delivers slower than it was sent, or loses, and is cut as gcc-02 says.
libwebrtc's goog_cc knows application-limited periods (its ALR detector: sending below 65 % of
the estimate) for probing and for the loss-based estimate's bounds, but backs off the delay-based
estimate there as anywhere. Second, a cut without loss is *undone* when, within two seconds, the
queue has drained (a feedback's least-delayed packet back within 10 ms of the base delay; the
trend may still lag) while the link went on delivering, and the sender went on sending, at
least 90 % of the rate delivered before the cut: the sender did not drain that queue, so it
was not the link's (a sender that obeyed the cut sends 85 % or less and keeps it).

**Loss-based estimate** (gcc-02 §6). From the TWCC reports' not-received packets (in batches
of at least 20 packets), else from receiver reports' fraction lost: below 2 % it may rise to
8 % above the lowest target of the last second; 2 … 10 % holds; above 10 % it falls to
``target × (1 − 0.5 × loss)`` (from the recently acknowledged bitrate when more than 20 % is
lost: the link carries far less than is sent), at most once per 300 ms + RTT. Random loss of a
few percent therefore never collapses the estimate, and the delay-based one keeps tracking the
queue; a full drop-tail queue loses far more than 10 % and is cut at once. Loss is evaluated
over at least a second (or 200 packets) so that 5 % random loss rarely reads as 10 %. One
departure from gcc-02: in the 2 … 10 % band the estimate may still rise when no feedback of
the window showed a standing queue (its least-delayed packet within 10 ms of the path's base
delay), since loss with an empty queue is the radio's, not ours; without that, a link with
steady random loss could never win back what one congestion episode took.
**REMB** (draft-alvestrand-rmcat-remb, the receiver's own delay-based estimate) stands in for
the delay-based estimate for a browser without transport-cc. The target is
``min(delay-based or REMB, loss-based)`` clamped to the configured bounds. Feedback that stops
while packets are still being sent cuts the estimate by 20 % per second.

**Probing.** While video is paused or held below what the allocator wants for lack of
bandwidth, the estimate cannot grow (nothing proves the link), so the sender asks
:meth:`DownlinkEstimator.next_probe` and, when it says so, sends :func:`probe_cluster_bytes` of
padding paced at the given rate, tagging each packet with the id
:meth:`DownlinkEstimator.start_probe` returned. Once feedback has reported packets sent after
the cluster, its result is computed as libwebrtc's probe bitrate estimator does: the send rate
over the cluster, the receive rate, the minimum of the two, and 95 % of the receive rate when
the link plainly could not keep up (receive < 90 % of send). A token-bucket shaper (``tc tbf …
burst 5000``) lets the first kilobytes through at the sending rate, so the receive rate over
the whole cluster overstates the link. Here the receive rate is measured only over the packets
that *found a queue*: those whose one-way delay exceeds the cluster's smallest by more than
5 ms, which waited behind the bottleneck and so left it at the bottleneck's rate. When no
packet queued, the link carried the whole cluster at the sending rate and all of it is
measured. A cluster at rate P through a bucket of B bytes refilled at R passes P·B/(P − R)
bytes before anything queues; clusters are 20 KB (at least 150 ms, at most 1 s of sending),
which covers a 5 KB bucket whenever P ≥ 4/3 · R, and a probe closer to the link's rate than
that overstates it by less than a third. A result above the estimate raises it; a result of at
least 70 % of the probed rate lets the sender probe twice as high at once, a failed probe backs
off 2 … 5 s, and no probe goes out within 2 s of a decrease.

References: draft-ietf-rmcat-gcc-02; draft-holmer-rmcat-transport-wide-cc-extensions-01;
libwebrtc modules/congestion_controller/goog_cc (inter_arrival_delta, trendline_estimator,
aimd_rate_control, acknowledged_bitrate_estimator, probe_bitrate_estimator,
send_side_bandwidth_estimation), pion/interceptor pkg/gcc.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from operator import itemgetter

from .rtp import TransportFeedback

HISTORY_SIZE = 4096
HISTORY_MASK = HISTORY_SIZE - 1
HISTORY_MAX_AGE = 10.0
"""Seconds after which a send-history slot no longer answers for its sequence number."""

BURST_INTERVAL = 0.005
BURST_MAX_DURATION = 0.100
ARRIVAL_JUMP = 3.0
"""A gap between groups this much larger on arrival than on send resets the grouping."""

TRENDLINE_WINDOW = 20
TRENDLINE_SMOOTHING = 0.9
_TRENDLINE_REST = 1 - TRENDLINE_SMOOTHING
TRENDLINE_GAIN = 4.0
TRENDLINE_MAX_DELTAS = 60
TRENDLINE_REBASE = 256
"""Updates between exact recomputations of the trendline's running sums."""
THRESHOLD_START = 12.5
THRESHOLD_MIN = 6.0
THRESHOLD_MAX = 600.0
THRESHOLD_K_UP = 0.0087
THRESHOLD_K_DOWN = 0.039
THRESHOLD_MAX_OFFSET = 15.0
OVERUSE_TIME = 0.010

BETA = 0.85
INCREASE_PER_SECOND = 1.08
MIN_INCREASE = 1_000
ADDITIVE_MIN_PER_SECOND = 4_000
ADDITIVE_PACKET_BITS = 1200 * 8
THROUGHPUT_CAP_FACTOR = 1.5
THROUGHPUT_CAP_MARGIN = 10_000

ACKED_WINDOW = 0.150
ACKED_FIRST_WINDOW = 0.500
ACKED_UNCERTAINTY = 10.0
ACKED_PROCESS_NOISE = 5.0
ACKED_FAST_CHANGE_VARIANCE = 200.0

LOSS_LOW = 0.02
LOSS_HIGH = 0.10
LOSS_MIN_PACKETS = 20
STANDING_QUEUE = 0.010
"""A feedback whose least-delayed packet waited this long (s) more than the path's base delay
shows a queue that never drained: loss at that time is congestion, not noise."""
BASE_DELAY_WINDOW = 5.0
LOSS_WINDOW = 1.0
LOSS_HEAVY = 0.20
LOSS_WINDOW_PACKETS = 200
LOSS_DECREASE_INTERVAL = 0.300
MIN_HISTORY_WINDOW = 1.0

CARRIED_WINDOW = 1.0
"""Seconds of arrival time over which the rate the link demonstrably carried is measured."""
CARRIED_HEADROOM = 1.15
"""A doubted overuse leaves the estimate this much above what the link carried, so the sender
stays app-limited (and a stall that follows is doubted too)."""
DELIVERY_RATIO = 0.9
"""An overuse is doubted only if the link delivered the last second's packets at least this
fast relative to how fast they were sent (over the same packets: no queue grew there)."""
CLEAN_WINDOW = 1.0
"""Seconds without a reported loss before a delay trend alone is doubted (see below)."""

UNDO_WINDOW = 2.0
"""Seconds after a lossless delay-based cut during which it is undone if it proves spurious."""
UNDO_RATE = 0.9
"""Share of the rate delivered before the cut that the link must go on delivering while its
queue drains for the cut to count as spurious."""

FEEDBACK_TIMEOUT = 1.0
FEEDBACK_TIMEOUT_CUT = 0.8

DEFAULT_RTT = 0.200

PROBE_MIN_BYTES = 20_000
PROBE_MIN_DURATION = 0.150
PROBE_MAX_DURATION = 1.0
PROBE_QUEUE_DELAY = 0.005
PROBE_END_MARGIN = 0.050
PROBE_TIMEOUT = 1.5
PROBE_MAX_INTERVAL = 2.0
PROBE_MAX_RATIO = 2.0
PROBE_SATURATED_RATIO = 0.9
PROBE_TARGET_UTILIZATION = 0.95
PROBE_SUCCESS_RATIO = 0.7
PROBE_MIN_PACKETS = 5
PROBE_BACKOFF_MIN = 2.0
PROBE_BACKOFF_MAX = 5.0
PROBE_GROWTH = 2.0
PROBE_CHAIN_WINDOW = 1.0
PROBE_AFTER_DECREASE = 2.0


_ARRIVAL = itemgetter(0)


def probe_cluster_bytes(bitrate: int) -> int:
    """How many bytes of padding a probe cluster at ``bitrate`` should carry: 20 KB, at least
    150 ms and at most 1 s of it."""
    bytes_ = max(PROBE_MIN_BYTES, int(bitrate * PROBE_MIN_DURATION / 8))
    return min(bytes_, int(bitrate * PROBE_MAX_DURATION / 8))


class _InterArrival:
    """Groups packets sent within 5 ms (or delivered as one burst) and yields group deltas."""

    __slots__ = (
        "cur_arrival",
        "cur_first_arrival",
        "cur_first_send",
        "cur_send",
        "prev_arrival",
        "prev_send",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.cur_first_send = -1.0
        self.cur_send = 0.0
        self.cur_first_arrival = 0.0
        self.cur_arrival = 0.0
        self.prev_send = -1.0
        self.prev_arrival = 0.0

    def add(self, send: float, arrival: float) -> tuple[float, float] | None:
        """Feed one packet; return (Δsend, Δarrival) of the two groups before it, if it starts
        a new group after a complete one."""
        if self.cur_first_send < 0:
            self._start(send, arrival)
            return None
        if send < self.cur_first_send:
            return None  # reordered behind its group: ignored, as gcc-02 §5.2 allows
        out: tuple[float, float] | None = None
        if self._new_group(send, arrival):
            if self.prev_send >= 0:
                d_send = self.cur_send - self.prev_send
                d_arrival = self.cur_arrival - self.prev_arrival
                if d_arrival - d_send > ARRIVAL_JUMP or d_arrival < 0:
                    self.reset()
                    self._start(send, arrival)
                    return None
                out = (d_send, d_arrival)
            self.prev_send = self.cur_send
            self.prev_arrival = self.cur_arrival
            self._start(send, arrival)
            return out
        if send > self.cur_send:
            self.cur_send = send
        if arrival > self.cur_arrival:
            self.cur_arrival = arrival
        return None

    def _start(self, send: float, arrival: float) -> None:
        self.cur_first_send = send
        self.cur_send = send
        self.cur_first_arrival = arrival
        self.cur_arrival = arrival

    def _new_group(self, send: float, arrival: float) -> bool:
        d_arrival = arrival - self.cur_arrival
        d_send = send - self.cur_send
        if d_send == 0:
            return False
        if (
            d_arrival - d_send < 0
            and d_arrival <= BURST_INTERVAL
            and arrival - self.cur_first_arrival < BURST_MAX_DURATION
        ):
            return False
        return send - self.cur_first_send > BURST_INTERVAL


class _Trendline:
    """Trendline filter and overuse detector with the adaptive threshold (gcc-02 §5.3–5.4)."""

    __slots__ = (
        "accumulated",
        "deltas",
        "first_arrival",
        "last_threshold_update",
        "modified_trend",
        "over_count",
        "prev_trend",
        "smoothed",
        "state",
        "sums",
        "threshold",
        "time_over",
        "trend",
        "updates",
        "window",
    )

    def __init__(self) -> None:
        self.window: deque[tuple[float, float]] = deque(maxlen=TRENDLINE_WINDOW)
        self.sums = [0.0, 0.0, 0.0, 0.0]  # Σx, Σy, Σxx, Σxy over the window
        self.updates = 0
        self.accumulated = 0.0
        self.smoothed = 0.0
        self.deltas = 0
        self.first_arrival = -1.0
        self.trend = 0.0
        self.prev_trend = 0.0
        self.modified_trend = 0.0
        self.threshold = THRESHOLD_START
        self.last_threshold_update = -1.0
        self.time_over = -1.0
        self.over_count = 0
        self.state = "normal"

    def update(self, d_send: float, d_arrival: float, arrival: float) -> None:
        """One group delta: the filter, the slope, the detector and the threshold (one call
        per group, on local variables)."""
        delay_ms = (d_arrival - d_send) * 1000.0
        deltas = self.deltas + 1
        if deltas > 1000:
            deltas = 1000
        self.deltas = deltas
        accumulated = self.accumulated + delay_ms
        self.accumulated = accumulated
        smoothed = TRENDLINE_SMOOTHING * self.smoothed + _TRENDLINE_REST * accumulated
        self.smoothed = smoothed
        first_arrival = self.first_arrival
        if first_arrival < 0:
            first_arrival = self.first_arrival = arrival
        # The least-squares slope over the window from running sums (one update per group,
        # O(1)); the origin of x moves to the oldest point now and then, and the sums are
        # recomputed then, so their rounding never builds up.
        window = self.window
        sums = self.sums
        x = (arrival - first_arrival) * 1000.0
        y = smoothed
        sx, sy, sxx, sxy = sums
        n = len(window)
        if n == TRENDLINE_WINDOW:
            ox, oy = window[0]
            sx -= ox
            sy -= oy
            sxx -= ox * ox
            sxy -= ox * oy
        else:
            n += 1
        window.append((x, y))
        sums[0] = sx = sx + x
        sums[1] = sy = sy + y
        sums[2] = sxx = sxx + x * x
        sums[3] = sxy = sxy + x * y
        self.updates += 1
        if self.updates >= TRENDLINE_REBASE:
            self._rebase()  # from the next update on; this slope is from the sums above
        trend = self.trend
        if n == TRENDLINE_WINDOW:
            den = sxx - sx * sx / n
            if den > 1e-9:
                trend = self.trend = (sxy - sx * sy / n) / den
        # -- the overuse detector (gcc-02 §5.4)
        m = (deltas if deltas < TRENDLINE_MAX_DELTAS else TRENDLINE_MAX_DELTAS) * trend
        m = m * TRENDLINE_GAIN
        self.modified_trend = m
        threshold = self.threshold
        if m > threshold:
            if self.time_over < 0:
                self.time_over = d_send * 1000.0 / 2
            else:
                self.time_over += d_send * 1000.0
            self.over_count += 1
            if (
                self.time_over > OVERUSE_TIME * 1000.0
                and self.over_count > 1
                and trend >= self.prev_trend
            ):
                self.time_over = 0.0
                self.over_count = 0
                self.state = "overusing"
        elif m < -threshold:
            self.time_over = -1.0
            self.over_count = 0
            self.state = "underusing"
        else:
            self.time_over = -1.0
            self.over_count = 0
            self.state = "normal"
        self.prev_trend = trend
        # -- the adaptive threshold
        if self.last_threshold_update < 0:
            self.last_threshold_update = arrival
        am = m if m >= 0 else -m
        if am > threshold + THRESHOLD_MAX_OFFSET:
            self.last_threshold_update = arrival
            return
        k = THRESHOLD_K_DOWN if am < threshold else THRESHOLD_K_UP
        dt_ms = (arrival - self.last_threshold_update) * 1000.0
        if dt_ms > 100.0:
            dt_ms = 100.0
        threshold += k * (am - threshold) * dt_ms
        if threshold > THRESHOLD_MAX:
            threshold = THRESHOLD_MAX
        self.threshold = threshold if threshold > THRESHOLD_MIN else THRESHOLD_MIN
        self.last_threshold_update = arrival

    def _rebase(self) -> None:
        """Move x's origin to the oldest point and recompute the sums exactly."""
        window = self.window
        self.updates = 0
        base = window[0][0]
        self.first_arrival += base / 1000.0
        points = [(x - base, y) for x, y in window]
        window.clear()
        window.extend(points)
        self.sums = [
            sum(x for x, _ in points),
            sum(y for _, y in points),
            sum(x * x for x, _ in points),
            sum(x * y for x, y in points),
        ]


def _slope(points: deque[tuple[float, float]]) -> float | None:
    """Least-squares slope of the points, or None when their x values do not spread: the
    reference the trendline's running sums are tested against."""
    n = len(points)
    mean_x = sum(p[0] for p in points) / n
    mean_y = sum(p[1] for p in points) / n
    num = 0.0
    den = 0.0
    for x, y in points:
        num += (x - mean_x) * (y - mean_y)
        den += (x - mean_x) ** 2
    return num / den if den > 0 else None


class _AckedBitrate:
    """Throughput the receiver acknowledged, in bit/s: windowed samples, Bayesian smoothing."""

    __slots__ = ("bits", "estimate_kbps", "first", "prev", "samples", "variance", "window_time")

    def __init__(self) -> None:
        self.bits = 0.0
        self.window_time = 0.0
        self.prev = -1.0
        self.first = True
        self.estimate_kbps: float | None = None
        self.variance = 50.0
        self.samples: deque[float] = deque(maxlen=2)

    @property
    def bitrate(self) -> int | None:
        return None if self.estimate_kbps is None else int(self.estimate_kbps * 1000)

    @property
    def recent(self) -> int | None:
        """The raw throughput over the last 300 ms, unsmoothed (the larger of its two windows,
        as a window edge can cut a frame in two): what a busy bottleneck delivered just now,
        which is its capacity."""
        if not self.samples:
            return None
        return int(max(self.samples) * 1000)

    def add(self, arrival: float, size: int) -> None:
        window = ACKED_FIRST_WINDOW if self.first else ACKED_WINDOW
        if self.prev >= 0:
            gap = arrival - self.prev
            if gap < 0:
                self.bits = 0.0
                self.window_time = 0.0
            else:
                self.window_time += gap
                if gap > window:
                    self.bits = 0.0
                    self.window_time %= window
        self.prev = max(arrival, self.prev)
        if self.window_time >= window:
            sample = self.bits / window / 1000.0
            self.window_time -= window
            self.bits = 0.0
            self.first = False
            self._sample(sample)
        self.bits += size * 8

    def expect_fast_change(self) -> None:
        """The sender is about to change its rate a lot (video resumes after a probe): let the
        next samples move the estimate quickly instead of being doubted."""
        self.variance += ACKED_FAST_CHANGE_VARIANCE

    def _sample(self, sample: float) -> None:
        self.samples.append(sample)
        if self.estimate_kbps is None:
            self.estimate_kbps = sample
            return
        est = max(self.estimate_kbps, 1e-3)
        uncertainty = ACKED_UNCERTAINTY * abs(est - sample) / est
        sample_var = uncertainty * uncertainty
        pred_var = self.variance + ACKED_PROCESS_NOISE
        self.estimate_kbps = (sample_var * est + pred_var * sample) / (sample_var + pred_var)
        self.variance = sample_var * pred_var / (sample_var + pred_var)


class _Aimd:
    """AIMD rate control with the link capacity estimate that picks additive increase."""

    __slots__ = ("capacity_kbps", "capacity_var", "estimate", "last_change", "state")

    def __init__(self, start: int) -> None:
        self.estimate = float(start)
        self.state = "increase"
        self.last_change = -1.0
        self.capacity_kbps: float | None = None
        self.capacity_var = 0.4

    def _capacity_bounds(self) -> tuple[float, float]:
        assert self.capacity_kbps is not None
        std = math.sqrt(self.capacity_var * self.capacity_kbps)
        return (self.capacity_kbps - 3 * std) * 1000, (self.capacity_kbps + 3 * std) * 1000

    def _on_overuse(self, acked: float) -> None:
        kbps = acked / 1000.0
        if self.capacity_kbps is None:
            self.capacity_kbps = kbps
        else:
            self.capacity_kbps = 0.95 * self.capacity_kbps + 0.05 * kbps
        deviation = (self.capacity_kbps - kbps) ** 2 / max(self.capacity_kbps, 1.0)
        self.capacity_var = 0.95 * self.capacity_var + 0.05 * deviation
        self.capacity_var = min(max(self.capacity_var, 0.4), 2.5)

    def time_to_reduce(self, now: float, rtt: float, acked: int | None) -> bool:
        interval = min(max(rtt, 0.010), 0.200)
        if now - self.last_change >= interval:
            return True
        return acked is not None and acked < 0.5 * self.estimate

    def update(
        self,
        signal: str,
        acked: int | None,
        recent: int | None,
        rtt: float,
        now: float,
        floor: float | None = None,
    ) -> None:
        """One rate-control step. ``floor``: on an overuse the link is not shown to be the
        bottleneck (no standing queue, no loss), so the estimate is not cut below that rate
        (what the link demonstrably carried) and the overuse teaches nothing about capacity."""
        if self.last_change < 0:
            self.last_change = now
        if signal == "overusing":
            if self.state != "decrease":
                self.state = "decrease"
        elif signal == "underusing":
            self.state = "hold"
        elif self.state == "hold":
            self.state = "increase"
            self.last_change = now
        if self.state == "increase":
            dt = min(max(now - self.last_change, 0.0), 1.0)
            if self.capacity_kbps is not None and acked is not None:
                if acked > self._capacity_bounds()[1]:
                    self.capacity_kbps = None
            limit = math.inf
            if acked is not None:
                # The smoothed figure trails a rate that jumps (video resuming after a hold
                # reads as one far-off sample after another); what the link delivered over
                # the last 300 ms proves at least as much.
                carried = acked if recent is None else max(acked, recent)
                limit = THROUGHPUT_CAP_FACTOR * carried + THROUGHPUT_CAP_MARGIN
            if self.estimate < limit:
                if self.capacity_kbps is not None:
                    bits_per_frame = self.estimate / 30.0
                    packets = max(1.0, math.ceil(bits_per_frame / ADDITIVE_PACKET_BITS))
                    per_second = max(
                        ADDITIVE_MIN_PER_SECOND, (bits_per_frame / packets) / (0.100 + rtt)
                    )
                    increase = per_second * dt
                else:
                    increase = max(self.estimate * (INCREASE_PER_SECOND**dt - 1.0), MIN_INCREASE)
                self.estimate = max(self.estimate, min(self.estimate + increase, limit))
            self.last_change = now
        elif self.state == "decrease":
            if acked is not None:
                if recent is not None:
                    # Overuse means the bottleneck queue is busy, so what it delivered over
                    # the last 300 ms is its rate; the smoothed figure lags a capacity drop
                    # and, with video paused, reads the audio rather than the link.
                    acked = recent
                decreased = BETA * acked
                if decreased > self.estimate and self.capacity_kbps is not None:
                    decreased = BETA * self.capacity_kbps * 1000
                if floor is not None and decreased < floor:
                    if floor < self.estimate:
                        self.estimate = floor
                else:
                    if decreased < self.estimate:
                        self.estimate = decreased
                    if self.capacity_kbps is not None and acked < self._capacity_bounds()[0]:
                        self.capacity_kbps = None
                    self._on_overuse(acked)
            self.state = "hold"
            self.last_change = now


@dataclass(slots=True)
class _Cluster:
    cluster_id: int
    bitrate: int
    start: float
    end: float
    sent: list[tuple[float, int]] = field(default_factory=list)  # (send time, size)
    received: list[tuple[float, float, int]] = field(default_factory=list)  # (send, arrival, size)


def probe_result(cluster: _Cluster) -> int:
    """The bitrate a finished probe cluster proved, 0 when it proved nothing (see the module
    docstring: send rate, receive rate over the queued part, their minimum)."""
    if len(cluster.sent) < PROBE_MIN_PACKETS or len(cluster.received) < PROBE_MIN_PACKETS:
        return 0
    sent = sorted(cluster.sent)
    send_interval = sent[-1][0] - sent[0][0]
    if not 0 < send_interval <= PROBE_MAX_INTERVAL:
        return 0
    send_rate = (sum(s for _, s in sent) - sent[-1][1]) * 8 / send_interval
    received = sorted(cluster.received, key=lambda p: p[1])
    base_delay = min(a - s for s, a, _ in received)
    first_queued = next(
        (i for i, (s, a, _) in enumerate(received) if a - s > base_delay + PROBE_QUEUE_DELAY),
        None,
    )
    measured = received
    if first_queued is not None and len(received) - first_queued >= 2:
        measured = received[first_queued:]
    recv_interval = measured[-1][1] - measured[0][1]
    if not 0 < recv_interval <= PROBE_MAX_INTERVAL:
        return 0
    recv_rate = (sum(z for _, _, z in measured) - measured[0][2]) * 8 / recv_interval
    if recv_rate > PROBE_MAX_RATIO * send_rate:
        return 0
    if recv_rate < PROBE_SATURATED_RATIO * send_rate:
        return int(PROBE_TARGET_UTILIZATION * recv_rate)
    return int(min(send_rate, recv_rate))


class DownlinkEstimator:
    """One subscriber connection's downlink estimate (see the module docstring)."""

    def __init__(
        self,
        *,
        start_bitrate: int = 1_000_000,
        min_bitrate: int = 30_000,
        max_bitrate: int = 4_000_000,
    ) -> None:
        if not 0 < min_bitrate <= max_bitrate:
            raise ValueError("need 0 < min_bitrate <= max_bitrate")
        self.min_bitrate = min_bitrate
        self.max_bitrate = max_bitrate
        start = min(max(start_bitrate, min_bitrate), max_bitrate)
        self.estimate = start
        self.history: list[tuple[int, float, int, int] | None] = [None] * HISTORY_SIZE
        """(sequence number, send time, size, probe cluster) of each packet sent, in the
        slot ``seq & HISTORY_MASK``; the send path may write it directly (as ``on_sent``)."""
        self.next_seq = 0
        """The transport-wide sequence number of the next packet (``on_sent`` moves it)."""
        self._fb_ext = -1  # highest extended transport sequence number already reported
        self._inter = _InterArrival()
        self._trend = _Trendline()
        self._acked = _AckedBitrate()
        self._aimd = _Aimd(start)
        self._rtt = DEFAULT_RTT
        self._twcc_seen = False
        self._last_feedback = -math.inf
        self._last_timeout_cut = -math.inf
        self._feedbacks = 0
        self._remb: int | None = None
        self._rr_pending: float | None = None  # a receiver report's loss not yet acted on
        self._rr_last: float | None = None
        self._loss_lost = 0
        self._loss_total = 0
        self._loss_fraction = 0.0
        self._loss_based = float(start)
        self._last_loss_decrease = -math.inf
        self._loss_window_start = -math.inf
        self._last_decrease = -math.inf
        self._base_delay = (math.inf, math.inf)  # minimum one-way delay: this window, the last
        self._base_delay_start = -math.inf
        self._last_loss = -math.inf  # when a feedback last reported a packet not received
        self._proven = 0  # the last successful probe's result, until a trusted decrease
        # (estimate before, when, recent delivered rate, capacity, its variance) of the last
        # delay-based cut without loss, while it may still prove spurious
        self._undo: tuple[float, float, int, float | None, float] | None = None
        self._undone = 0
        # (first arrival, last arrival, first send, last send, bits received) of each recent
        # feedback
        self._delivered: deque[tuple[float, float, float, float, int]] = deque(maxlen=64)
        self._queue_delay = 0.0  # the last feedback's smallest delay above the base
        self._window_queue = 0.0  # the largest of those over the current loss window
        self._min_history: deque[tuple[float, int]] = deque()
        self._next_cluster = 0
        self._clusters: dict[int, _Cluster] = {}
        self._probe_bitrate = 0
        self._probe_result = 0
        self._probe_ok = False
        self._probe_backoff = PROBE_BACKOFF_MIN  # the wait after the next failure
        self._probe_wait = PROBE_BACKOFF_MIN  # the wait after the last probe
        self._last_probe_end = -math.inf
        self._source = "start"

    # -- hot path ---------------------------------------------------------------------------

    def on_sent(self, seq: int, size: int, now: float, cluster: int = -1) -> None:
        """Remember one packet sent to the subscriber: one tuple in its history slot."""
        self.history[seq & HISTORY_MASK] = (seq, now, size, cluster)
        self.next_seq = (seq + 1) & 0xFFFF

    @property
    def _last_sent(self) -> float:
        """When the newest packet was sent (-inf before any)."""
        seq = (self.next_seq - 1) & 0xFFFF
        entry = self.history[seq & HISTORY_MASK]
        return entry[1] if entry is not None and entry[0] == seq else -math.inf

    # -- feedback ---------------------------------------------------------------------------

    def on_transport_feedback(self, fb: TransportFeedback, now: float) -> None:
        """Process one transport-wide feedback: loss, acked bitrate, delay trend, AIMD, probes.

        Only packets this estimator sent and has not yet seen reported count; a feedback with
        none of them (a duplicate, or made up) changes nothing at all.

        This runs ~10–20 times a second per subscriber over every packet sent it, so the
        per-packet work is one loop over the report (history lookup, loss, the least delay,
        what was delivered) and one over the received packets in arrival order with the
        acknowledged-bitrate windows and the inter-arrival grouping inlined on local
        variables; the trendline runs once per completed group."""
        history = self.history
        fb_ext = self._fb_ext
        clusters = self._clusters
        received: list[tuple[float, float, int]] = []  # (arrival, send, size)
        lost = 0
        newest_send = -math.inf
        arrivals = fb.arrivals
        first = 0
        if arrivals is not None and fb_ext >= 0:
            d = (fb.base_seq - fb_ext) & 0xFFFF
            offset = d - 0x10000 if d >= 0x8000 else d
            if offset + len(arrivals) - 1 > 0x7FFF:
                arrivals = None  # past half the sequence space: unwrap packet by packet
            else:
                first = fb_ext + offset  # the extended number of arrivals[0]
        elif arrivals is not None:
            first = fb.base_seq
        if arrivals is not None:
            # Consecutive sequence numbers from base_seq: unwrapped once.
            base = fb.base_seq
            for k in range(max(fb_ext - first + 1, 0), len(arrivals)):
                seq = (base + k) & 0xFFFF
                entry = history[seq & HISTORY_MASK]
                if entry is None or entry[0] != seq:
                    continue
                _, send, size, cid = entry
                if now - send > HISTORY_MAX_AGE:
                    continue
                fb_ext = first + k
                if send > newest_send:
                    newest_send = send
                arrival = arrivals[k]
                probe = clusters.get(cid) if cid >= 0 else None
                if probe is not None:
                    probe.sent.append((send, size))
                if arrival is None:
                    lost += 1
                else:
                    received.append((arrival, send, size))
                    if probe is not None:
                        probe.received.append((send, arrival, size))
        else:
            ref = fb_ext
            for seq, arrival in fb.packets:
                if ref < 0:
                    ext = seq
                else:
                    d = (seq - ref) & 0xFFFF
                    ext = ref + (d - 0x10000 if d >= 0x8000 else d)
                if ext <= fb_ext:
                    continue
                entry = history[seq & HISTORY_MASK]
                if entry is None or entry[0] != seq:
                    continue
                _, send, size, cid = entry
                if now - send > HISTORY_MAX_AGE:
                    continue
                fb_ext = ref = ext
                if send > newest_send:
                    newest_send = send
                probe = clusters.get(cid) if cid >= 0 else None
                if probe is not None:
                    probe.sent.append((send, size))
                if arrival is None:
                    lost += 1
                else:
                    received.append((arrival, send, size))
                    if probe is not None:
                        probe.received.append((send, arrival, size))
        if not lost and not received:
            return
        self._fb_ext = fb_ext
        self._twcc_seen = True
        self._feedbacks += 1
        self._last_feedback = now
        self._loss_lost += lost
        self._loss_total += lost + len(received)
        if lost:
            self._last_loss = now
        if received:
            self._received(received, now)
        acked = self._acked.bitrate
        recent = self._acked.recent
        signal = self._trend.state
        undo = self._undo
        if undo is not None:
            if lost or now - undo[1] > UNDO_WINDOW:
                self._undo = undo = None
            elif (
                self._queue_delay < STANDING_QUEUE
                and recent is not None
                and recent >= UNDO_RATE * undo[2]
                and self._sent_since(undo[1], now) >= UNDO_RATE * undo[2]
            ):
                # The queue drained while the link went on delivering what it did before
                # the cut: the sender did not drain it, so the link was not the bottleneck.
                # (The trend may still read overuse: it lags a delay that fell at once.)
                aimd = self._aimd
                aimd.estimate = max(aimd.estimate, undo[0])
                aimd.capacity_kbps, aimd.capacity_var = undo[3], undo[4]
                self._undo = undo = None
                self._undone += 1
        if signal != "overusing" or self._aimd.time_to_reduce(now, self._rtt, acked):
            aimd = self._aimd
            before = aimd.estimate
            capacity = (aimd.capacity_kbps, aimd.capacity_var)
            floor = self._doubted() if signal == "overusing" else None
            aimd.update(signal, acked, recent, self._rtt, now, floor)
            if floor is None and signal == "overusing":
                self._proven = 0
            if aimd.estimate < before:
                self._last_decrease = now
                if undo is None and recent is not None and now - self._last_loss > CLEAN_WINDOW:
                    self._undo = (before, now, recent, capacity[0], capacity[1])
        self._aimd.estimate = min(self._aimd.estimate, float(self.max_bitrate))
        for cluster in list(self._clusters.values()):
            if newest_send > cluster.end + PROBE_END_MARGIN:
                self._finish_probe(cluster, now)

    def _received(self, received: list[tuple[float, float, int]], now: float) -> None:
        """The received packets of one feedback, (arrival, send, size) in report order."""
        least = math.inf
        first_send = math.inf
        last_send = -math.inf
        bytes_ = 0
        for arrival, send, size in received:
            delay = arrival - send
            if delay < least:
                least = delay
            if send < first_send:
                first_send = send
            if send > last_send:
                last_send = send
            bytes_ += size
        self._note_queue(least, now)
        received.sort(key=_ARRIVAL)  # stable: report order among equal arrivals
        newest = received[-1][0]
        delivered = self._delivered
        delivered.append((received[0][0], newest, first_send, last_send, 8 * bytes_))
        while delivered[0][1] < newest - CARRIED_WINDOW:
            delivered.popleft()
        # _AckedBitrate.add and _InterArrival.add, inlined on locals (see those classes).
        acked = self._acked
        bits = acked.bits
        window_time = acked.window_time
        prev = acked.prev
        window = ACKED_FIRST_WINDOW if acked.first else ACKED_WINDOW
        inter = self._inter
        cur_first_send = inter.cur_first_send
        cur_send = inter.cur_send
        cur_first_arrival = inter.cur_first_arrival
        cur_arrival = inter.cur_arrival
        prev_send = inter.prev_send
        prev_arrival = inter.prev_arrival
        trend = self._trend
        for arrival, send, size in received:
            if prev >= 0:
                gap = arrival - prev
                if gap < 0:
                    bits = 0.0
                    window_time = 0.0
                else:
                    window_time += gap
                    if gap > window:
                        bits = 0.0
                        window_time %= window
            if arrival > prev:
                prev = arrival
            if window_time >= window:
                sample = bits / window / 1000.0
                window_time -= window
                bits = 0.0
                acked.first = False
                window = ACKED_WINDOW
                acked._sample(sample)
            bits += size * 8
            # -- inter-arrival grouping
            if cur_first_send < 0:
                cur_first_send = cur_send = send
                cur_first_arrival = cur_arrival = arrival
                continue
            if send < cur_first_send:
                continue  # reordered behind its group: ignored, as gcc-02 §5.2 allows
            d_send = send - cur_send
            if d_send == 0:
                new_group = False
            else:
                d_arrival = arrival - cur_arrival
                if (
                    d_arrival - d_send < 0
                    and d_arrival <= BURST_INTERVAL
                    and arrival - cur_first_arrival < BURST_MAX_DURATION
                ):
                    new_group = False
                else:
                    new_group = send - cur_first_send > BURST_INTERVAL
            if new_group:
                if prev_send >= 0:
                    g_send = cur_send - prev_send
                    g_arrival = cur_arrival - prev_arrival
                    if g_arrival - g_send > ARRIVAL_JUMP or g_arrival < 0:
                        prev_send = -1.0
                        prev_arrival = 0.0
                        cur_first_send = cur_send = send
                        cur_first_arrival = cur_arrival = arrival
                        continue
                    trend.update(g_send, g_arrival, arrival)
                prev_send = cur_send
                prev_arrival = cur_arrival
                cur_first_send = cur_send = send
                cur_first_arrival = cur_arrival = arrival
                continue
            if send > cur_send:
                cur_send = send
            if arrival > cur_arrival:
                cur_arrival = arrival
        acked.bits = bits
        acked.window_time = window_time
        acked.prev = prev
        inter.cur_first_send = cur_first_send
        inter.cur_send = cur_send
        inter.cur_first_arrival = cur_first_arrival
        inter.cur_arrival = cur_arrival
        inter.prev_send = prev_send
        inter.prev_arrival = prev_arrival

    def _sent_since(self, start: float, now: float) -> float:
        """Bits per second sent from ``start`` to ``now`` (0 until 200 ms have passed), read
        back from the send history."""
        if now - start < 0.2:
            return 0.0
        history = self.history
        seq = (self.next_seq - 1) & 0xFFFF
        bits = 0
        for _ in range(HISTORY_SIZE):
            entry = history[seq & HISTORY_MASK]
            if entry is None or entry[0] != seq or entry[1] < start:
                break
            bits += entry[2] * 8
            seq = (seq - 1) & 0xFFFF
        return bits / (now - start)

    def _doubted(self) -> float | None:
        """The rate an overuse is not trusted to cut the estimate below, or None when it is
        trusted (see the module docstring). Doubted: no packet was reported lost for
        ``CLEAN_WINDOW`` and the link delivered less than the estimate over the last
        ``CARRIED_WINDOW`` of arrival time — the sender was app-limited, so the link carried
        everything it was asked to. The rate: what was delivered then, or the last successful
        probe's result if higher (no trusted decrease since)."""
        if self._last_loss >= self._last_feedback - CLEAN_WINDOW:
            return None
        delivered = self._delivered
        if not delivered:
            return None
        newest = delivered[-1][1]
        while delivered and delivered[0][0] < newest - CARRIED_WINDOW:
            delivered.popleft()
        if not delivered:
            return None
        span = newest - delivered[0][0]
        if span < CARRIED_WINDOW / 2:
            return None
        sent_span = max(e[3] for e in delivered) - min(e[2] for e in delivered)
        if sent_span < DELIVERY_RATIO * span:
            return None  # delivered slower than sent: a queue grew at the link
        rate = sum(e[4] for e in delivered) / span
        if rate >= self._aimd.estimate:
            return None
        return max(rate * CARRIED_HEADROOM, float(self._proven))

    def _note_queue(self, delay: float, now: float) -> None:
        """Track the path's base one-way delay (a minimum over 5 … 10 s; the receiver's clock
        offset cancels) and how far this feedback's least-delayed packet sat above it."""
        current, previous = self._base_delay
        if now - self._base_delay_start >= BASE_DELAY_WINDOW:
            self._base_delay_start = now
            current, previous = math.inf, current
        current = min(current, delay)
        self._base_delay = (current, previous)
        self._queue_delay = delay - min(current, previous)
        self._window_queue = max(self._window_queue, self._queue_delay)

    def on_remb(self, bitrate: int, now: float) -> None:
        """A receiver's REMB: the delay-based estimate of a browser without transport-cc."""
        self._remb = max(0, int(bitrate))
        if (self._rr_last or 0.0) < LOSS_LOW and not self._twcc_seen:
            self._loss_based = max(self._loss_based, float(self._remb))

    def on_receiver_loss(self, fraction_lost: int, now: float) -> None:
        """A receiver report block's fraction lost (0 … 255, RFC 3550 §6.4.1), one call per
        block about a stream sent to this subscriber; of the blocks that arrive between two
        updates the worst counts (audio and video share the downlink)."""
        fraction = min(max(fraction_lost, 0), 255) / 256.0
        self._rr_pending = max(fraction, self._rr_pending or 0.0)
        self._rr_last = fraction

    def on_rtt(self, rtt: float, now: float) -> None:
        if rtt > 0:
            self._rtt = rtt

    # -- probing ----------------------------------------------------------------------------

    def start_probe(self, bitrate: int, now: float, size: int | None = None) -> int:
        """Open a probe cluster at ``bitrate``: the sender sends ``size`` bytes (default
        ``probe_cluster_bytes(bitrate)``) of padding paced at that rate, each packet passed to
        ``on_sent`` with the returned id."""
        bitrate = max(int(bitrate), 1)
        cid = self._next_cluster
        self._next_cluster += 1
        duration = (size if size is not None else probe_cluster_bytes(bitrate)) * 8 / bitrate
        self._clusters[cid] = _Cluster(cid, bitrate, now, now + duration)
        self._probe_bitrate = bitrate
        return cid

    def next_probe(self, now: float, wanted: int, *, app_limited: bool = True) -> int:
        """The rate to probe at now (0: not now) for a sender that would send ``wanted`` bit/s
        if the estimate allowed. ``app_limited``: the sender sends well below the estimate
        (video paused, or no layer fits between what it sends and the estimate), so its own
        traffic cannot prove more. After a successful probe: at once and twice as high; else,
        only when app-limited, 2 … 5 s after the last (doubling after each failure). Never
        while a probe is out, the queue grows, or within 2 s of a decrease."""
        if self._clusters or self._trend.state == "overusing":
            return 0
        if self.estimate >= min(wanted, self.max_bitrate):
            return 0
        if now - self._last_decrease < PROBE_AFTER_DECREASE:
            return 0
        chained = self._probe_ok and now - self._last_probe_end < PROBE_CHAIN_WINDOW
        if not chained and (not app_limited or now - self._last_probe_end < self._probe_wait):
            return 0
        rate = min(PROBE_GROWTH * self.estimate, self.max_bitrate, 1.25 * wanted)
        return int(rate) if rate > self.estimate else 0

    def _finish_probe(self, cluster: _Cluster, now: float) -> None:
        del self._clusters[cluster.cluster_id]
        result = probe_result(cluster)
        self._probe_result = result
        self._last_probe_end = now
        self._probe_ok = result >= PROBE_SUCCESS_RATIO * cluster.bitrate
        if self._probe_ok:
            self._proven = max(self._proven, result)
            self._probe_backoff = self._probe_wait = PROBE_BACKOFF_MIN
        else:
            self._probe_wait = self._probe_backoff
            self._probe_backoff = min(self._probe_backoff * 2, PROBE_BACKOFF_MAX)
        if result > self.estimate:
            self._acked.expect_fast_change()
            raised = float(min(result, self.max_bitrate))
            self._aimd.estimate = max(self._aimd.estimate, raised)
            self._loss_based = max(self._loss_based, raised)

    # -- the periodic decision --------------------------------------------------------------

    def update(self, now: float) -> int:
        """Combine delay-based, loss-based and REMB into the target bitrate (call every ~100 ms)."""
        for cluster in list(self._clusters.values()):
            if now > cluster.end + PROBE_TIMEOUT:
                self._finish_probe(cluster, now)
        if (
            self._twcc_seen
            and now - self._last_feedback > FEEDBACK_TIMEOUT
            and self._last_sent - self._last_feedback > FEEDBACK_TIMEOUT
            and now - self._last_timeout_cut >= FEEDBACK_TIMEOUT
        ):
            self._last_timeout_cut = now
            self._aimd.estimate *= FEEDBACK_TIMEOUT_CUT
            self._loss_based = min(self._loss_based, self._aimd.estimate)
        history = self._min_history
        while history and history[0][0] < now - MIN_HISTORY_WINDOW + 1e-6:
            history.popleft()
        self._loss_step(now)
        if self._twcc_seen:
            self._source = "twcc"
            limit = self._aimd.estimate
            if self._remb is not None:
                limit = min(limit, self._remb)
        elif self._remb is not None:
            self._source = "remb"
            limit = float(self._remb)
        elif self._rr_last is not None:
            self._source = "loss"
            limit = math.inf
        else:
            self._source = "start"
            limit = math.inf
        target = min(limit, self._loss_based)
        self.estimate = int(min(max(target, self.min_bitrate), self.max_bitrate))
        while history and history[-1][1] >= self.estimate:
            history.pop()
        history.append((now, self.estimate))
        return self.estimate

    def _loss_step(self, now: float) -> None:
        fraction: float | None = None
        standing = math.inf  # unknown without transport-wide feedback: assume a queue
        if self._twcc_seen:
            if self._loss_total and self._loss_window_start == -math.inf:
                self._loss_window_start = now
            if self._loss_total >= LOSS_MIN_PACKETS and (
                now - self._loss_window_start >= LOSS_WINDOW
                or self._loss_total >= LOSS_WINDOW_PACKETS
            ):
                fraction = self._loss_lost / self._loss_total
                self._loss_lost = self._loss_total = 0
                self._loss_window_start = -math.inf
                standing = self._window_queue
                self._window_queue = 0.0
        elif self._rr_pending is not None:
            fraction = self._rr_pending
            self._rr_pending = None
        if fraction is None:
            return
        self._loss_fraction = fraction
        if fraction < LOSS_LOW or (fraction <= LOSS_HIGH and standing < STANDING_QUEUE):
            floor = self._min_history[0][1] if self._min_history else self.estimate
            self._loss_based = max(self._loss_based, floor * INCREASE_PER_SECOND + MIN_INCREASE)
        elif fraction > LOSS_HIGH:
            if now - self._last_loss_decrease >= LOSS_DECREASE_INTERVAL + self._rtt:
                self._last_loss_decrease = now
                self._proven = 0
                self._last_decrease = now
                base = min(self._loss_based, float(self.estimate))
                recent = self._acked.recent if self._twcc_seen else None
                if recent is not None and fraction > LOSS_HEAVY:
                    base = min(base, float(recent))  # the link carries far less than is sent
                self._loss_based = base * (1.0 - 0.5 * fraction)
        self._loss_based = min(max(self._loss_based, float(self.min_bitrate)), self.max_bitrate)

    # -- observation ------------------------------------------------------------------------

    @property
    def detector_state(self) -> str:
        return self._trend.state

    @property
    def rate_control_state(self) -> str:
        return self._aimd.state

    def snapshot(self) -> dict[str, int | float | str]:
        """The inputs and decisions, for /metrics and the staff's connection view."""
        acked = self._acked.bitrate
        return {
            "source": self._source,
            "estimate": self.estimate,
            "delay_based": int(self._aimd.estimate) if self._twcc_seen else 0,
            "loss_based": int(self._loss_based),
            "remb": self._remb if self._remb is not None else 0,
            "acked_bitrate": acked if acked is not None else 0,
            "loss_fraction": round(self._loss_fraction, 4),
            "trend": round(self._trend.trend, 6),
            "modified_trend": round(self._trend.modified_trend, 3),
            "threshold": round(self._trend.threshold, 3),
            "detector": self._trend.state,
            "rate_control": self._aimd.state,
            "rtt": self._rtt,
            "queue_delay": round(self._queue_delay, 4),
            "feedbacks": self._feedbacks,
            "undone": self._undone,
            "probe_bitrate": self._probe_bitrate,
            "probe_result": self._probe_result,
        }
