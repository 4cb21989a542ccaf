/**
 * Pure rules of the teacher's account pages, with no DOM and no imports, so they can be
 * checked on their own (tests/web/test_account_pages.py runs them under Node.js).
 */

/**
 * @param {string | null | undefined} iso
 * @returns {Date | null}
 */
export function parseTime(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * Where a class lesson stands: ended by the teacher (or by closing its report), not started
 * yet, within its scheduled time, or past it without having been ended.
 * @param {{ended_at?: string | null, scheduled_start?: string | null,
 *          scheduled_end?: string | null}} lesson
 * @param {Date} now
 * @returns {"ended" | "upcoming" | "live" | "over"}
 */
export function lessonState(lesson, now) {
  if (lesson.ended_at) return "ended";
  const start = parseTime(lesson.scheduled_start);
  const end = parseTime(lesson.scheduled_end);
  if (start && now < start) return "upcoming";
  if (end && now >= end) return "over";
  return "live";
}

/**
 * One line per student from a lesson's links (`GET /api/lessons/{id}/links` keeps revoked
 * ones): the newest usable link if there is one, else the newest link. Sorted by student code.
 * @template {{roster_entry_id: string, url?: string | null, issued_at?: string | null,
 *             student_code?: string, full_name?: string}} L
 * @param {L[]} links
 * @returns {L[]}
 */
export function linksByStudent(links) {
  /** @type {Map<string, L>} */
  const chosen = new Map();
  for (const link of links) {
    const current = chosen.get(link.roster_entry_id);
    const better =
      !current ||
      (Boolean(link.url) && !current.url) ||
      (Boolean(link.url) === Boolean(current.url) &&
        String(link.issued_at ?? "") > String(current.issued_at ?? ""));
    if (better) chosen.set(link.roster_entry_id, link);
  }
  return [...chosen.values()].sort(
    (a, b) =>
      String(a.student_code ?? "").localeCompare(String(b.student_code ?? "")) ||
      String(a.full_name ?? "").localeCompare(String(b.full_name ?? "")),
  );
}

/**
 * @param {{student_withdrawn?: boolean, revoked_at?: string | null,
 *          expires_at?: string | null}} link
 * @param {{ended_at?: string | null}} lesson
 * @param {Date} now
 * @returns {"withdrawn" | "revoked" | "expired" | "active"}
 */
export function linkStatus(link, lesson, now) {
  if (link.student_withdrawn) return "withdrawn";
  if (link.revoked_at) return "revoked";
  const expires = parseTime(link.expires_at);
  if (lesson.ended_at || (expires && now >= expires)) return "expired";
  return "active";
}

/**
 * A lesson's start and end from the form's day and times, read in the browser's time zone.
 * Null unless both are well formed and the end is after the start.
 * @param {string} day `YYYY-MM-DD`
 * @param {string} from `HH:MM`
 * @param {string} to `HH:MM`
 * @returns {{start: Date, end: Date} | null}
 */
export function scheduleFrom(day, from, to) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || !/^\d{2}:\d{2}(:\d{2})?$/.test(from) || !/^\d{2}:\d{2}(:\d{2})?$/.test(to)) {
    return null;
  }
  const start = new Date(`${day}T${from}`);
  const end = new Date(`${day}T${to}`);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start) return null;
  return { start, end };
}

/**
 * How a lesson's start stands against now, to the minute (the form's times have no seconds):
 * "now", in `minutes` ("future", today), `minutes` ago ("past"), or on another day ("later").
 * @param {Date} start
 * @param {Date} now
 * @returns {{when: "now" | "future" | "past" | "later", minutes: number}}
 */
export function slotWhen(start, now) {
  const thisMinute = new Date(now.getTime());
  thisMinute.setSeconds(0, 0);
  const minutes = Math.round((start.getTime() - thisMinute.getTime()) / 60_000);
  if (isoDay(start) !== isoDay(now)) return { when: "later", minutes: Math.abs(minutes) };
  if (minutes > 0) return { when: "future", minutes };
  if (minutes < 0) return { when: "past", minutes: -minutes };
  return { when: "now", minutes: 0 };
}

/**
 * Whole minutes from seconds, for thresholds ("late after 5 minutes").
 * @param {number} seconds
 */
export function minutesOf(seconds) {
  return Math.round((Number(seconds) || 0) / 60);
}

/** Report statuses in the order the page lists their counts. */
export const STATUSES = Object.freeze(["present", "late", "left_early", "absent"]);

/**
 * The class report's default range: the last `days` days up to today, as `YYYY-MM-DD`.
 * @param {Date} today
 * @param {number} [days]
 * @returns {{from: string, to: string}}
 */
export function defaultRange(today, days = 30) {
  const start = new Date(today.getFullYear(), today.getMonth(), today.getDate() - days);
  return { from: isoDay(start), to: isoDay(today) };
}

/**
 * `YYYY-MM-DD` of a date in the browser's time zone (for `<input type="date">` and the API).
 * @param {Date} date
 */
export function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
