/**
 * What the teacher's account pages share (`/login`, `/lessons`, the report pages): calls to
 * the records API (`web/api.py`), the session check, the logout button, error boxes and dates.
 *
 * The session is the HttpOnly `lophoc_session` cookie set by `POST /api/login`: this script
 * never sees or stores the token, the browser sends the cookie by itself (same origin only).
 */

import { byTestId, show } from "./dom.js";
import { clearText, errorMessage, getLanguage, hasKey, setText } from "./i18n.js";
import { isoDay, parseTime } from "./records.js";

export { isoDay, parseTime } from "./records.js";

/** A refusal from the records API (or no answer at all: `connection_lost`). */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: no answer)
   * @param {string} code the error code, e.g. `bad_login`
   * @param {Record<string, any>} [extra] the error's other fields, e.g. `retry_after`
   */
  constructor(status, code, extra = {}) {
    super(code);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

/**
 * Call the records API with JSON in and out (or a file as the body: `file`).
 * @param {string} path e.g. `/api/lessons`
 * @param {{method?: string, body?: any, file?: Blob}} [options]
 * @returns {Promise<any>} the parsed JSON answer (null for 204)
 * @throws {ApiError}
 */
export async function api(path, { method = "GET", body, file } = {}) {
  /** @type {RequestInit} */
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (file !== undefined) {
    init.headers = { ...init.headers, "Content-Type": "application/octet-stream" };
    init.body = file;
  } else if (body !== undefined) {
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "connection_lost");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const { code = response.status >= 500 ? "internal" : "unknown", message, ...extra } =
      data?.error ?? {};
    throw new ApiError(response.status, String(code), extra);
  }
  return data;
}

/**
 * A same-origin path to come back to after logging in, or null for anything else.
 * @param {string | null} next
 * @returns {string | null}
 */
export function safeNext(next) {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return null;
  try {
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : null;
  } catch {
    return null;
  }
}

/** Go to the login page, asking it to come back here afterwards. */
export function goToLogin() {
  const here = location.pathname + location.search;
  location.replace(`/login?next=${encodeURIComponent(here)}`);
}

/**
 * The logged-in user, or a trip to the login page (the returned promise then never settles).
 * @returns {Promise<{id: string, username: string, full_name: string, role: string}>}
 */
export async function requireUser() {
  try {
    const data = await api("/api/me");
    return data.user;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      goToLogin();
      return new Promise(() => {});
    }
    throw error;
  }
}

/**
 * Wire the top bar of a logged-in page: the user's name and the logout button.
 * @param {{full_name: string}} user
 */
export function bindAccountBar(user) {
  const name = byTestId("user-name");
  if (name) name.textContent = user.full_name;
  const bar = byTestId("account-bar");
  if (bar) show(bar);
  const logout = /** @type {HTMLButtonElement | null} */ (byTestId("logout"));
  logout?.addEventListener("click", async () => {
    logout.disabled = true;
    try {
      await api("/api/logout", { method: "POST" });
    } catch {
      /* the session ends by itself; go to the login page anyway */
    }
    location.assign("/login");
  });
}

/**
 * The catalogue key for an API error code. Codes the lesson pages also use with another
 * meaning (`not_found` there is a missing track) have their own `api_error.*` message here.
 * @param {string} code
 * @param {Record<string, any>} [extra]
 * @returns {{key: string, params: Record<string, string | number>}}
 */
export function apiErrorMessage(code, extra = {}) {
  const own = `api_error.${code}`;
  if (hasKey(own)) return { key: own, params: errorMessage(code, extra).params };
  return errorMessage(code, extra);
}

/**
 * Show an API error in an error box (`data-code` set for tests).
 * @param {HTMLElement} element
 * @param {unknown} error an ApiError, or anything else (shown as `internal`)
 */
export function showApiError(element, error) {
  const code = error instanceof ApiError ? error.code : "internal";
  const extra = error instanceof ApiError ? error.extra : {};
  const { key, params } = apiErrorMessage(code, extra);
  element.dataset.code = code;
  setText(element, key, params);
  show(element);
}

/**
 * Hide an error box.
 * @param {HTMLElement} element
 */
export function hideApiError(element) {
  delete element.dataset.code;
  clearText(element);
  show(element, false);
}

// -- dates and times -------------------------------------------------------------------------

const LOCALES = { vi: "vi-VN", en: "en-GB" };

function locale() {
  return LOCALES[getLanguage()] ?? "vi-VN";
}

/**
 * "Thứ Hai, 08/09/2025" style date, in the browser's time zone.
 * @param {string | Date | null | undefined} value
 */
export function formatDate(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  return new Intl.DateTimeFormat(locale(), {
    weekday: "short",
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
  }).format(date);
}

/**
 * "07:30" in the browser's time zone.
 * @param {string | Date | null | undefined} value
 */
export function formatTime(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  return new Intl.DateTimeFormat(locale(), { hour: "2-digit", minute: "2-digit" }).format(date);
}

/**
 * "07:31:05": when someone came or went.
 * @param {string | Date | null | undefined} value
 */
export function formatClock(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  return new Intl.DateTimeFormat(locale(), {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(date);
}

/**
 * "08/09/2025 07:30:15": a moment people compare (joins, leaves, closing).
 * @param {string | Date | null | undefined} value
 */
export function formatDateTime(value) {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return "—";
  return new Intl.DateTimeFormat(locale(), {
    day: "2-digit",
    month: "2-digit",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(date);
}

/** The browser's time zone name (e.g. `Asia/Ho_Chi_Minh`), shown next to times. */
export function timeZoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

/**
 * A number for people in the current language ("12,5" in Vietnamese).
 * @param {number} value
 */
export function formatNumber(value) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(value);
}
