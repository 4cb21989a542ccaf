/**
 * Never show a frozen frame as live.
 *
 * A `<video>` whose track stops delivering frames (the server paused it to keep the sound, the
 * publisher's uplink stalled, packets are lost) keeps showing its last frame, which looks like a
 * teacher who stopped moving. The page watches each remote video for new frames and, when none
 * came for a while although one should be playing, covers it with a stand-in (the person's
 * initial and name, "Video paused") until frames flow again.
 *
 * `FreezeDetector` is the decision, a pure function of frame times and the clock (tested with
 * real sequences of frame times). `watchFrames` feeds it from the browser: the time of each
 * presented frame from `requestVideoFrameCallback` where the browser has it (WICG
 * video-rvfc), else the receiver's `framesDecoded` counter (W3C webrtc-stats, `inbound-rtp`)
 * polled with `getStats()`.
 */

/** No new frame for this long while video should play: frozen. */
export const FREEZE_AFTER_MS = 1_500;
/** The first frame of a new track may take longer (ICE, DTLS, a keyframe): extra time for it. */
export const FIRST_FRAME_GRACE_MS = 3_000;

/**
 * @typedef {"idle" | "waiting" | "live" | "frozen"} FrameState
 * idle: no video is expected; waiting: expected, no frame yet (within the grace); live: frames
 * come; frozen: expected, but no new frame for longer than the threshold.
 */

/** Decides from frame times whether a video is live or frozen. Times are milliseconds. */
export class FreezeDetector {
  #expecting = false;
  #since = 0;
  /** @type {number | null} */
  #lastFrame = null;

  /**
   * @param {{after?: number, firstFrameGrace?: number}} [options]
   */
  constructor({ after = FREEZE_AFTER_MS, firstFrameGrace = FIRST_FRAME_GRACE_MS } = {}) {
    this.after = after;
    this.firstFrameGrace = firstFrameGrace;
  }

  /** @returns {boolean} whether frames are expected now */
  get expecting() {
    return this.#expecting;
  }

  /**
   * Say whether frames should be coming (a live video track is attached and meant to play).
   * Turning it on starts the clock afresh; frames seen before do not count.
   * @param {boolean} expecting
   * @param {number} now
   */
  expect(expecting, now) {
    if (expecting === this.#expecting) return;
    this.#expecting = expecting;
    this.#since = now;
    this.#lastFrame = null;
  }

  /**
   * Start the clock again without forgetting that a frame was seen (the page was hidden and
   * the browser presented no frames meanwhile: that is not a freeze).
   * @param {number} now
   */
  restart(now) {
    this.#since = now;
    if (this.#lastFrame !== null) this.#lastFrame = now;
  }

  /**
   * A new frame was presented (or decoded) at `now`.
   * @param {number} now
   */
  frame(now) {
    if (!this.#expecting) return;
    if (this.#lastFrame === null || now > this.#lastFrame) this.#lastFrame = now;
  }

  /**
   * The verdict at `now`.
   * @param {number} now
   * @returns {FrameState}
   */
  check(now) {
    if (!this.#expecting) return "idle";
    if (this.#lastFrame === null) {
      return now - this.#since > this.after + this.firstFrameGrace ? "frozen" : "waiting";
    }
    return now - this.#lastFrame > this.after ? "frozen" : "live";
  }
}

/**
 * Whether a `<video>` has a live video track to play.
 * @param {HTMLVideoElement} video
 * @returns {MediaStreamTrack | null}
 */
function liveVideoTrack(video) {
  const stream = video.srcObject;
  if (!(stream instanceof MediaStream)) return null;
  return stream.getVideoTracks().find((track) => track.readyState === "live") ?? null;
}

/**
 * Watch a `<video>` for frames and report its state when it changes.
 * @param {HTMLVideoElement} video
 * @param {object} options
 * @param {(state: FrameState) => void} options.onChange
 * @param {(track: MediaStreamTrack) => RTCRtpReceiver | null} [options.receiver] finds the
 *   receiver of a track, for the `getStats()` fallback
 * @param {() => boolean} [options.wanted] whether the page means this video to play now
 * @param {number} [options.interval] how often to decide (ms)
 * @returns {{stop: () => void, readonly state: FrameState}}
 */
export function watchFrames(
  video,
  { onChange, receiver = () => null, wanted = () => true, interval = 250 },
) {
  const detector = new FreezeDetector();
  /** @type {FrameState} */
  let state = "idle";
  let stopped = false;
  let handle = 0;
  let decoded = -1;
  let polling = false;
  /** @type {MediaStreamTrack | null} */
  let watched = null;
  const useCallback = typeof video.requestVideoFrameCallback === "function";

  const onFrame = () => {
    if (stopped) return;
    detector.frame(performance.now());
    handle = video.requestVideoFrameCallback(onFrame);
  };
  if (useCallback) handle = video.requestVideoFrameCallback(onFrame);

  const poll = async (track) => {
    const rtp = receiver(track);
    if (!rtp || polling) return;
    polling = true;
    try {
      const report = await rtp.getStats();
      report.forEach((stats) => {
        if (stats.type !== "inbound-rtp" || typeof stats.framesDecoded !== "number") return;
        if (stats.framesDecoded > decoded && decoded >= 0) detector.frame(performance.now());
        decoded = stats.framesDecoded;
      });
    } catch {
      // the peer connection is closing: the next tick sees the track end
    } finally {
      polling = false;
    }
  };

  const tick = () => {
    if (stopped) return;
    const now = performance.now();
    if (document.visibilityState === "hidden") detector.restart(now); // no frames are drawn
    const track = wanted() ? liveVideoTrack(video) : null;
    if (track !== watched) {
      watched = track;
      decoded = -1;
      detector.expect(false, now);
      detector.expect(Boolean(track), now);
    }
    if (track && !useCallback) poll(track);
    const next = detector.check(now);
    if (next !== state) {
      state = next;
      onChange(state);
    }
  };
  const onVisibility = () => {
    if (document.visibilityState === "visible") detector.restart(performance.now());
  };
  document.addEventListener("visibilitychange", onVisibility);
  const timer = setInterval(tick, interval);
  tick();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      document.removeEventListener("visibilitychange", onVisibility);
      if (useCallback && handle) video.cancelVideoFrameCallback(handle);
    },
    get state() {
      return state;
    },
  };
}
