// What the student page shows for the server's `downlink` events, the data-saver choice and
// the freeze detector's verdict; and the participants' `link` as the roster keeps it.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  COVER_KEYS,
  NOTICE_KEYS,
  formatBitrate,
  initialOf,
  linkBadge,
  noticeKind,
  parseDownlink,
  parseLink,
  stageView,
  statsRows,
} from "../js/downlink.js";
import { Roster } from "../js/roster.js";
import en from "../js/i18n/en.js";
import vi from "../js/i18n/vi.js";

const OK = parseDownlink(null);
const teacher = (paused = false) => ({
  id: "p_teacher",
  name: "Cô Lan",
  state: "connected",
  video: { producer: "pr_video", paused },
});

test("a downlink event as the protocol sends it", () => {
  const event = {
    state: "audio_only",
    reason: "bandwidth",
    estimate: 180_000.4,
    paused: ["pr_video", "pr_other", "pr_video", 7],
  };
  assert.deepEqual(parseDownlink(event), {
    state: "audio_only",
    reason: "bandwidth",
    estimate: 180_000,
    paused: ["pr_video", "pr_other"],
  });
  assert.deepEqual(parseDownlink({ state: "ok", reason: null, estimate: null, paused: [] }), OK);
});

test("a malformed or unknown downlink event hides nothing", () => {
  for (const data of [null, "weak", 3, {}, { state: "terrible" }, { state: ["weak"] }]) {
    assert.equal(parseDownlink(data).state, "ok", JSON.stringify(data));
  }
  // A reason on an `ok` link means nothing; an unknown reason is dropped.
  assert.equal(parseDownlink({ state: "ok", reason: "bandwidth" }).reason, null);
  assert.equal(parseDownlink({ state: "weak", reason: "solar_flare" }).reason, null);
  assert.equal(parseDownlink({ state: "weak", estimate: -5 }).estimate, null);
  assert.equal(parseDownlink({ state: "weak", estimate: Number.NaN }).estimate, null);
});

test("the notice: the student's own choice first, then the server's word", () => {
  const weak = parseDownlink({ state: "weak", reason: "bandwidth", paused: ["pr_x"] });
  const audio = parseDownlink({ state: "audio_only", reason: "bandwidth" });
  const saver = parseDownlink({ state: "audio_only", reason: "data_saver" });
  assert.equal(noticeKind(OK, false), null);
  assert.equal(noticeKind(weak, false), "weak");
  assert.equal(noticeKind(audio, false), "audio_only");
  assert.equal(noticeKind(saver, false), "data_saver"); // e.g. chosen on another tab
  assert.equal(noticeKind(OK, true), "data_saver"); // before the server confirms
  assert.equal(noticeKind(audio, true), "data_saver");
});

test("every notice and cover has its text in both languages", () => {
  for (const key of [...Object.values(NOTICE_KEYS), ...Object.values(COVER_KEYS)]) {
    assert.ok(vi[key] && en[key], key);
  }
  assert.equal(vi[NOTICE_KEYS.data_saver], "Chỉ nghe tiếng — đang tiết kiệm dữ liệu");
  assert.equal(en[NOTICE_KEYS.data_saver], "Audio only — saving data");
  assert.match(vi[NOTICE_KEYS.audio_only], /mạng yếu/i);
  assert.match(en[NOTICE_KEYS.audio_only], /weak connection/i);
});

test("the stage: placeholders while there is no video to expect", () => {
  const base = { received: false, downlink: OK, dataSaver: false, frozen: false };
  assert.equal(stageView({ ...base, teacher: undefined }).placeholder, "student.waiting_teacher");
  const away = { ...teacher(), state: "reconnecting" };
  assert.equal(stageView({ ...base, teacher: away }).placeholder, "student.teacher_reconnecting");
  assert.deepEqual(stageView({ ...base, teacher: teacher() }), {
    placeholder: "student.connecting_video",
    cover: null,
    render: true,
  });
});

test("the stage: the teacher's live video is shown, a frozen one covered", () => {
  const base = { teacher: teacher(), received: true, downlink: OK, dataSaver: false };
  assert.deepEqual(stageView({ ...base, frozen: false }), {
    placeholder: null,
    cover: null,
    render: true,
  });
  assert.equal(stageView({ ...base, frozen: true }).cover, "frozen");
});

test("the stage: camera off, data saver and held-back video are covered", () => {
  const base = { received: true, downlink: OK, dataSaver: false, frozen: false };
  assert.equal(stageView({ ...base, teacher: teacher(true) }).cover, "camera_off");
  assert.equal(stageView({ ...base, teacher: { ...teacher(), video: null } }).cover, "camera_off");
  // Data saver: the video track leaves the <video> (no frame is even drawn).
  const saving = stageView({ ...base, teacher: teacher(), dataSaver: true });
  assert.deepEqual(saving, { placeholder: null, cover: "data_saver", render: false });
  const confirmed = parseDownlink({ state: "audio_only", reason: "data_saver" });
  assert.equal(stageView({ ...base, teacher: teacher(), downlink: confirmed }).cover, "data_saver");
  // The server holds her video back: covered, but kept attached to come back by itself.
  const audioOnly = parseDownlink({ state: "audio_only", reason: "bandwidth" });
  assert.deepEqual(stageView({ ...base, teacher: teacher(), downlink: audioOnly }), {
    placeholder: null,
    cover: "bandwidth",
    render: true,
  });
  const heldBack = parseDownlink({ state: "weak", reason: "bandwidth", paused: ["pr_video"] });
  assert.equal(stageView({ ...base, teacher: teacher(), downlink: heldBack }).cover, "bandwidth");
  // Weak, but her video is not among the held back: it plays.
  const others = parseDownlink({ state: "weak", reason: "bandwidth", paused: ["pr_student"] });
  assert.equal(stageView({ ...base, teacher: teacher(), downlink: others }).cover, null);
  // Camera off wins over everything: the cover says what the teacher did.
  const all = { ...base, teacher: teacher(true), downlink: audioOnly, dataSaver: true };
  assert.equal(stageView(all).cover, "camera_off");
});

test("initials for the cover: the given name's", () => {
  assert.equal(initialOf("  đặng thu hà"), "H");
  assert.equal(initialOf(""), "?");
  assert.equal(initialOf("Ánh"), "Á");
});

test("a participant's link and its badge", () => {
  assert.equal(parseLink("weak"), "weak");
  assert.equal(parseLink(undefined, "audio_only"), "audio_only");
  assert.equal(parseLink("awful"), "ok");
  assert.equal(linkBadge("ok"), null);
  assert.deepEqual(linkBadge("weak"), { label: "link.weak", title: "link.weak_title" });
  assert.equal(vi[linkBadge("weak").label], "Mạng yếu");
  assert.equal(en[linkBadge("audio_only").label], "Audio only");
});

test("the roster keeps `link` from joins and updates, and an update without it keeps it", () => {
  const roster = new Roster();
  roster.reset({
    participant: { id: "p_me" },
    participants: [
      { id: "p_me", name: "Me", role: "teacher", state: "connected", link: "ok" },
      { id: "p_an", name: "An", role: "student", state: "connected", link: "weak" },
      { id: "p_old", name: "Old", role: "student", state: "connected" }, // an older server
    ],
    producers: [],
  });
  assert.equal(roster.get("p_an").link, "weak");
  assert.equal(roster.get("p_old").link, "ok");
  roster.apply("participant_updated", { id: "p_an", name: "An", role: "student", link: "audio_only" });
  assert.equal(roster.get("p_an").link, "audio_only");
  roster.apply("participant_updated", { id: "p_an", state: "reconnecting" });
  assert.equal(roster.get("p_an").link, "audio_only");
  roster.apply("participant_joined", { id: "p_binh", name: "Bình", role: "student", link: "x" });
  assert.equal(roster.get("p_binh").link, "ok");
});

test("connection details: figures for people, a dash for what the server did not say", () => {
  assert.equal(formatBitrate(850_400, "en"), "850 kbit/s");
  assert.equal(formatBitrate(1_250_000, "en"), "1.3 Mbit/s");
  assert.equal(formatBitrate(1_250_000, "vi"), "1,3 Mbit/s");
  assert.equal(formatBitrate(null, "en"), null);
  assert.equal(formatBitrate(-1, "en"), null);
  const rows = statsRows(
    {
      estimate: 310_000,
      source: "twcc",
      rtt: 182.6,
      loss: 0.034,
      sent_bitrate: 295_000,
      state: "weak",
      tracks: [
        { producer: "pr_t", kind: "video", paused: false },
        { producer: "pr_a", kind: "video", paused: true },
        { producer: "pr_b", kind: "video", paused: true },
        { producer: "pr_s", kind: "audio", paused: false },
      ],
    },
    "en",
  );
  const byName = Object.fromEntries(rows.map((row) => [row.name, row]));
  assert.equal(byName.state.valueKey, "link.weak");
  assert.equal(byName.estimate.value, "310 kbit/s (twcc)");
  assert.equal(byName.sent_bitrate.value, "295 kbit/s");
  assert.equal(byName.rtt.value, "183 ms");
  assert.equal(byName.loss.value, "3.4 %");
  assert.equal(byName.paused.value, "2 / 3");
  for (const row of rows) assert.ok(en[row.label] && vi[row.label], row.label);
  for (const row of statsRows({}, "vi")) {
    if (row.name === "state") assert.equal(row.valueKey, "link.ok");
    else assert.equal(row.value, "—", row.name);
  }
  assert.equal(statsRows({ loss: 7 }, "en").find((row) => row.name === "loss").value, "—");
});
