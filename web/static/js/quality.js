/**
 * Connection quality from `RTCPeerConnection.getStats()`: good, fair or poor.
 *
 * Three numbers, the worst of which decides (W3C webrtc-stats):
 * - round-trip time of the selected candidate pair (`currentRoundTripTime`), or the RTT the
 *   server reports back for what we send (`remote-inbound-rtp.roundTripTime`);
 * - packet loss of what we receive (`inbound-rtp`: packetsLost against packetsReceived, over the
 *   last interval) and of what we send (`remote-inbound-rtp.fractionLost`);
 * - jitter of what we receive (`inbound-rtp.jitter`) and of what we send as the server sees it.
 */

/** Thresholds: at or above `fair` the level is fair, at or above `poor` it is poor. */
export const THRESHOLDS = Object.freeze({
  rtt: { fair: 0.25, poor: 0.5 }, // seconds
  loss: { fair: 0.02, poor: 0.08 }, // fraction of packets
  jitter: { fair: 0.03, poor: 0.1 }, // seconds
});

const LEVELS = ["good", "fair", "poor"];

/**
 * The level of one measurement.
 * @param {{rtt?: number | null, loss?: number | null, jitter?: number | null}} sample
 * @returns {"good" | "fair" | "poor" | "unknown"}
 */
export function classify(sample) {
  let worst = -1;
  for (const [name, limits] of Object.entries(THRESHOLDS)) {
    const value = sample[name];
    if (typeof value !== "number" || !Number.isFinite(value)) continue;
    const level = value >= limits.poor ? 2 : value >= limits.fair ? 1 : 0;
    worst = Math.max(worst, level);
  }
  return worst < 0 ? "unknown" : /** @type {any} */ (LEVELS[worst]);
}

const max = (a, b) => (typeof a === "number" ? (typeof b === "number" ? Math.max(a, b) : a) : b);

/**
 * Turns successive `getStats()` reports into a level; keeps the previous counters to measure
 * loss over the last interval rather than since the call began.
 */
export class QualityMeter {
  /** @type {Map<string, {lost: number, received: number}>} */
  #previous = new Map();

  /**
   * Measure the given peer connections now.
   * @param {Array<RTCPeerConnection | null>} pcs
   * @returns {Promise<{level: string, rtt: number | null, loss: number | null,
   *                    jitter: number | null}>}
   */
  async measure(pcs) {
    const sample = { rtt: null, loss: null, jitter: null };
    let lost = 0;
    let received = 0;
    const seen = new Map();
    for (const pc of pcs) {
      if (!pc || pc.connectionState === "closed") continue;
      let report;
      try {
        report = await pc.getStats();
      } catch {
        continue;
      }
      sample.rtt = max(sample.rtt, selectedPairRtt(report));
      report.forEach((stats) => {
        if (stats.type === "inbound-rtp") {
          const key = stats.id;
          const now = { lost: stats.packetsLost ?? 0, received: stats.packetsReceived ?? 0 };
          const before = this.#previous.get(key) ?? { lost: 0, received: 0 };
          seen.set(key, now);
          lost += Math.max(0, now.lost - before.lost);
          received += Math.max(0, now.received - before.received);
          if (stats.packetsReceived > 0) sample.jitter = max(sample.jitter, stats.jitter);
        } else if (stats.type === "remote-inbound-rtp") {
          sample.rtt = max(sample.rtt, stats.roundTripTime);
          sample.loss = max(sample.loss, stats.fractionLost);
          sample.jitter = max(sample.jitter, stats.jitter);
        }
      });
    }
    this.#previous = seen;
    if (lost + received > 0) sample.loss = max(sample.loss, lost / (lost + received));
    return { level: classify(sample), ...sample };
  }
}

/**
 * RTT of the candidate pair in use: the transport's `selectedCandidatePairId`, else the
 * nominated succeeded pair (Firefox has no transport stats).
 * @param {RTCStatsReport} report
 * @returns {number | null}
 */
function selectedPairRtt(report) {
  let selectedId = null;
  report.forEach((stats) => {
    if (stats.type === "transport" && stats.selectedCandidatePairId) {
      selectedId = stats.selectedCandidatePairId;
    }
  });
  let rtt = null;
  report.forEach((stats) => {
    if (stats.type !== "candidate-pair") return;
    const chosen = selectedId
      ? stats.id === selectedId
      : stats.selected || (stats.nominated && stats.state === "succeeded");
    if (chosen && typeof stats.currentRoundTripTime === "number") {
      rtt = max(rtt, stats.currentRoundTripTime);
    }
  });
  return rtt;
}

/**
 * Measure every `intervalMs` and report changes of level.
 * @param {() => Array<RTCPeerConnection | null>} getPcs
 * @param {(level: string) => void} onLevel
 * @param {number} [intervalMs]
 * @returns {() => void} stops the monitor
 */
export function monitorQuality(getPcs, onLevel, intervalMs = 2_000) {
  const meter = new QualityMeter();
  let last = null;
  let stopped = false;
  const tick = async () => {
    const { level } = await meter.measure(getPcs());
    if (!stopped && level !== last) {
      last = level;
      onLevel(level);
    }
  };
  const timer = setInterval(tick, intervalMs);
  tick();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
