/**
 * What a weak downlink means for the page, as plain functions of data (no DOM, no I/O).
 *
 * The server estimates each subscriber's downlink and, when it cannot carry every video, holds
 * video back to keep the sound (docs/protocol.md, "Downlink"). It tells the subscriber with the
 * `downlink` event: `ok`, `weak` (the teacher's video still comes, other video is held back) or
 * `audio_only` (no video at all), with the reason (`bandwidth`, or `data_saver` when the
 * participant asked for audio only) and the producers whose video it holds back. Staff see each
 * participant's state as `link` in the participant descriptions.
 *
 * The page decides from these, and from what it knows itself (the data-saver choice, whether the
 * teacher's video really delivers frames), what covers the teacher's video and which notice the
 * student reads. Those decisions live here so that they are tested with real inputs.
 */

/** The downlink states of the protocol, best first. */
export const DOWNLINK_STATES = Object.freeze(["ok", "weak", "audio_only"]);
/** Why video is held back. */
export const DOWNLINK_REASONS = Object.freeze(["bandwidth", "data_saver"]);

/**
 * @typedef {{state: "ok" | "weak" | "audio_only", reason: "bandwidth" | "data_saver" | null,
 *            estimate: number | null, paused: string[]}} Downlink
 */

/** The downlink before the server said anything: nothing held back. */
export const DOWNLINK_OK = Object.freeze({
  state: "ok",
  reason: null,
  estimate: null,
  paused: Object.freeze([]),
});

/**
 * A `downlink` event's data as the page uses it; anything malformed reads as the safe default
 * (an unknown state is `ok`, so the page never hides video on a message it does not understand).
 * @param {any} data
 * @returns {Downlink}
 */
export function parseDownlink(data) {
  if (!data || typeof data !== "object") return { ...DOWNLINK_OK, paused: [] };
  const state = DOWNLINK_STATES.includes(data.state) ? data.state : "ok";
  const reason = state !== "ok" && DOWNLINK_REASONS.includes(data.reason) ? data.reason : null;
  const estimate =
    typeof data.estimate === "number" && Number.isFinite(data.estimate) && data.estimate >= 0
      ? Math.round(data.estimate)
      : null;
  const paused = Array.isArray(data.paused)
    ? [...new Set(data.paused.filter((id) => typeof id === "string" && id))]
    : [];
  return { state, reason, estimate, paused };
}

/**
 * A participant's `link` (participant descriptions): `ok`, `weak` or `audio_only`.
 * @param {unknown} link
 * @param {string} [fallback] what to keep when the description carries no `link`
 * @returns {"ok" | "weak" | "audio_only"}
 */
export function parseLink(link, fallback = "ok") {
  if (DOWNLINK_STATES.includes(/** @type {string} */ (link))) return /** @type {any} */ (link);
  return DOWNLINK_STATES.includes(fallback) ? /** @type {any} */ (fallback) : "ok";
}

/**
 * The badge shown next to a participant for their link, or null for a good one.
 * @param {string} link
 * @returns {{label: string, title: string} | null} catalogue keys
 */
export function linkBadge(link) {
  if (link === "weak") return { label: "link.weak", title: "link.weak_title" };
  if (link === "audio_only") return { label: "link.audio_only", title: "link.audio_only_title" };
  return null;
}

/**
 * Why video is not shown, as far as the student's notice goes: the student's own choice wins
 * (the page stops rendering video at once, before the server confirms), then the server's word.
 * @param {Downlink} downlink the latest `downlink` event
 * @param {boolean} dataSaver the student asked for audio only
 * @returns {"data_saver" | "audio_only" | "weak" | null}
 */
export function noticeKind(downlink, dataSaver) {
  if (dataSaver || downlink.reason === "data_saver") return "data_saver";
  if (downlink.state === "audio_only") return "audio_only";
  if (downlink.state === "weak") return "weak";
  return null;
}

/** The notice's text for each kind. */
export const NOTICE_KEYS = Object.freeze({
  data_saver: "downlink.notice_data_saver",
  audio_only: "downlink.notice_audio_only",
  weak: "downlink.notice_weak",
});

/**
 * What the student's stage shows over (or instead of) the teacher's video.
 *
 * - `placeholder`: there is no teacher video to expect (no teacher yet, the teacher is
 *   reconnecting, the video is still being connected): a catalogue key, else null.
 * - `cover`: the teacher is there but her video is not to be shown as live — her camera is off
 *   (`camera_off`), the student saves data (`data_saver`), the server holds it back
 *   (`bandwidth`) or its frames stopped coming (`frozen`) — else null. The page then shows the
 *   teacher's initial and name instead of the last frame.
 * - `render`: whether the page puts the teacher's video track in the `<video>` at all; only
 *   data saver takes it out (her sound always plays). Otherwise the track stays, under the
 *   cover, so that it shows again the moment its frames come back.
 *
 * @param {object} input
 * @param {{id: string, state: string, video: {producer: string, paused: boolean} | null}
 *         | undefined} input.teacher
 * @param {boolean} input.received whether the teacher's video track is received
 * @param {Downlink} input.downlink
 * @param {boolean} input.dataSaver
 * @param {boolean} input.frozen the freeze detector's verdict on the teacher's video
 * @returns {{placeholder: string | null,
 *            cover: "camera_off" | "data_saver" | "bandwidth" | "frozen" | null,
 *            render: boolean}}
 */
export function stageView({ teacher, received, downlink, dataSaver, frozen }) {
  if (!teacher) return { placeholder: "student.waiting_teacher", cover: null, render: true };
  if (teacher.state === "reconnecting") {
    return { placeholder: "student.teacher_reconnecting", cover: null, render: true };
  }
  const video = teacher.video;
  if (!video || video.paused) return { placeholder: null, cover: "camera_off", render: true };
  if (dataSaver || downlink.reason === "data_saver") {
    return { placeholder: null, cover: "data_saver", render: false };
  }
  const heldBack = downlink.state === "audio_only" || downlink.paused.includes(video.producer);
  if (heldBack) return { placeholder: null, cover: "bandwidth", render: true };
  if (!received) return { placeholder: "student.connecting_video", cover: null, render: true };
  return { placeholder: null, cover: frozen ? "frozen" : null, render: true };
}

/** The cover's text for each reason. */
export const COVER_KEYS = Object.freeze({
  camera_off: "student.teacher_camera_off",
  data_saver: "downlink.cover_data_saver",
  bandwidth: "downlink.cover_bandwidth",
  frozen: "video.frozen",
});

export { initialOf } from "./names.js";

/**
 * A bit rate for people: "850 kbit/s", "1,2 Mbit/s" (in the page's language), or null.
 * @param {unknown} bps bits per second
 * @param {string} lang
 * @returns {string | null}
 */
export function formatBitrate(bps, lang) {
  if (typeof bps !== "number" || !Number.isFinite(bps) || bps < 0) return null;
  if (bps >= 1_000_000) {
    const value = (bps / 1_000_000).toLocaleString(lang, { maximumFractionDigits: 1 });
    return `${value} Mbit/s`;
  }
  return `${Math.round(bps / 1_000).toLocaleString(lang)} kbit/s`;
}

/**
 * The rows of the console's "Connection details" for a `stats` answer (docs/protocol.md):
 * a catalogue key for the label and the value as text ("—" for what the server did not say).
 * `rtt` is in milliseconds, `loss` a fraction, the bit rates in bits per second.
 * @param {any} data the `ok.data` of `stats`
 * @param {string} lang
 * @returns {{label: string, value: string, valueKey: string | null, name: string}[]}
 */
export function statsRows(data, lang) {
  const none = "—";
  const stats = data && typeof data === "object" ? data : {};
  const number = (value) => typeof value === "number" && Number.isFinite(value);
  const rows = [];
  const state = parseLink(stats.state ?? stats.link, "ok");
  rows.push({ name: "state", label: "stats.state", value: "", valueKey: `link.${state}` });
  const estimate = formatBitrate(stats.estimate, lang);
  const source = typeof stats.source === "string" && stats.source ? ` (${stats.source})` : "";
  rows.push({
    name: "estimate",
    label: "stats.estimate",
    value: estimate ? estimate + source : none,
    valueKey: null,
  });
  rows.push({
    name: "sent_bitrate",
    label: "stats.sent_bitrate",
    value: formatBitrate(stats.sent_bitrate, lang) ?? none,
    valueKey: null,
  });
  rows.push({
    name: "rtt",
    label: "stats.rtt",
    value: number(stats.rtt) && stats.rtt >= 0 ? `${Math.round(stats.rtt)} ms` : none,
    valueKey: null,
  });
  const loss = number(stats.loss) && stats.loss >= 0 && stats.loss <= 1 ? stats.loss : null;
  rows.push({
    name: "loss",
    label: "stats.loss",
    value:
      loss === null
        ? none
        : `${(loss * 100).toLocaleString(lang, { maximumFractionDigits: 1 })} %`,
    valueKey: null,
  });
  const tracks = Array.isArray(stats.tracks) ? stats.tracks : [];
  const video = tracks.filter((track) => track?.kind === "video");
  const held = video.filter((track) => track.paused === true).length;
  rows.push({
    name: "paused",
    label: "stats.paused",
    value: video.length ? `${held} / ${video.length}` : none,
    valueKey: null,
  });
  return rows;
}
