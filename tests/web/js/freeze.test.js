// The freeze detector's verdicts for sequences of frame times (milliseconds), as a browser
// reports them: requestVideoFrameCallback at the frame rate, or framesDecoded polled.
import assert from "node:assert/strict";
import { test } from "node:test";

import { FIRST_FRAME_GRACE_MS, FREEZE_AFTER_MS, FreezeDetector } from "../js/freeze.js";

/** Feed frames at `fps` from `start` (inclusive) to `end` (exclusive); the last frame's time. */
function frames(detector, start, end, fps = 30) {
  let last = null;
  for (let i = 0; start + (i * 1000) / fps < end; i += 1) {
    last = start + (i * 1000) / fps;
    detector.frame(last);
  }
  return last;
}

test("idle until video is expected, whatever frames arrive", () => {
  const detector = new FreezeDetector();
  frames(detector, 0, 1000);
  assert.equal(detector.check(5_000), "idle");
});

test("a playing video at 30 fps is live", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 0);
  assert.equal(detector.check(0), "waiting");
  frames(detector, 200, 10_000);
  for (let t = 300; t < 10_000; t += 250) assert.equal(detector.check(t), "live", `at ${t}`);
});

test("frames stop: frozen only after the threshold, live again with the next frame", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 0);
  const last = frames(detector, 100, 5_000);
  assert.equal(detector.check(5_000), "live");
  // Still live just under 1.5 s after the last frame, frozen just after.
  assert.equal(detector.check(last + FREEZE_AFTER_MS - 10), "live");
  assert.equal(detector.check(last + FREEZE_AFTER_MS + 10), "frozen");
  assert.equal(detector.check(20_000), "frozen");
  detector.frame(20_010);
  assert.equal(detector.check(20_020), "live");
});

test("a slow but moving video (screen share at 1 fps) is not frozen", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 0);
  frames(detector, 0, 30_000, 1);
  for (let t = 500; t < 30_000; t += 250) assert.notEqual(detector.check(t), "frozen", `${t}`);
});

test("a stall of 2 s in the middle, replayed in time order: frozen, then live", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 0);
  const stall = [3_000, 5_000]; // no frame presented in between
  const seen = new Map();
  for (let tick = 250; tick <= 8_000; tick += 250) {
    for (let t = tick - 250; t < tick; t += 1000 / 30) {
      if (t < stall[0] || t >= stall[1]) detector.frame(t);
    }
    seen.set(tick, detector.check(tick));
  }
  for (const [tick, verdict] of seen) {
    const lastFrame = tick <= stall[0] ? tick : tick <= stall[1] ? stall[0] : tick;
    const expected = tick - lastFrame > FREEZE_AFTER_MS + 34 ? "frozen" : "live";
    if (Math.abs(tick - lastFrame - FREEZE_AFTER_MS) < 40) continue; // the frame period
    assert.equal(verdict, expected, `at ${tick} ms`);
  }
  assert.equal(seen.get(4_750), "frozen");
  assert.equal(seen.get(5_000), "frozen");
  assert.equal(seen.get(5_250), "live");
});

test("no first frame within the grace: frozen (held back from the start)", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 1_000);
  assert.equal(detector.check(1_000 + FREEZE_AFTER_MS + FIRST_FRAME_GRACE_MS - 1), "waiting");
  assert.equal(detector.check(1_000 + FREEZE_AFTER_MS + FIRST_FRAME_GRACE_MS + 1), "frozen");
  detector.frame(7_000);
  assert.equal(detector.check(7_100), "live");
});

test("no longer expected: idle; expected again: the clock starts afresh", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 0);
  frames(detector, 0, 1_000);
  detector.expect(false, 1_000);
  assert.equal(detector.check(9_000), "idle");
  detector.frame(9_100); // frames while not expected do not count
  detector.expect(true, 10_000);
  assert.equal(detector.check(10_000 + FREEZE_AFTER_MS + 100), "waiting");
});

test("restart after the page was hidden: a gap in frames is not a freeze", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 0);
  frames(detector, 0, 2_000);
  detector.restart(60_000);
  assert.equal(detector.check(60_100), "live");
  assert.equal(detector.check(60_000 + FREEZE_AFTER_MS + 1), "frozen");
});

test("frames reported out of order do not move the last frame back", () => {
  const detector = new FreezeDetector();
  detector.expect(true, 0);
  detector.frame(3_000);
  detector.frame(1_000);
  assert.equal(detector.check(3_000 + FREEZE_AFTER_MS - 1), "live");
});
