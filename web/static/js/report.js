/**
 * A lesson's attendance report (`/lessons/<lesson id>/report`): every rostered student's
 * status (present, late, left early, absent) with first join, last leave, minutes and
 * percentage of the lesson; guests apart; the window counted and why (as taught, or as
 * scheduled); the thresholds; the Excel and CSV downloads in the page's language; closing the
 * report (which freezes it with its SHA-256) and checking a frozen report against the events.
 */

import { byTestId, create, need, show } from "./dom.js";
import { clearText, getLanguage, initI18n, onLanguageChange, setText, t } from "./i18n.js";
import {
  ApiError,
  api,
  bindAccountBar,
  formatClock,
  formatDate,
  formatDateTime,
  formatNumber,
  formatTime,
  hideApiError,
  parseTime,
  requireUser,
  showApiError,
} from "./account.js";
import { STATUSES, minutesOf } from "./records.js";

const page = {
  error: need("report-error"),
  loading: need("report-loading"),
  view: need("report-view"),
  title: need("report-title"),
  state: need("report-state"),
  className: need("report-class"),
  schedule: need("report-schedule"),
  window: need("report-window"),
  basis: need("report-window-basis"),
  asOf: need("report-as-of"),
  threshold: need("report-threshold"),
  summary: need("report-summary"),
  xlsx: /** @type {HTMLAnchorElement} */ (need("report-xlsx")),
  csv: /** @type {HTMLAnchorElement} */ (need("report-csv")),
  refresh: /** @type {HTMLButtonElement} */ (need("report-refresh")),
  close: /** @type {HTMLButtonElement} */ (need("report-close")),
  verify: /** @type {HTMLButtonElement} */ (need("report-verify")),
  actionError: need("report-action-error"),
  liveHint: need("report-live-hint"),
  frozen: need("report-frozen"),
  closedAt: need("report-closed-at"),
  hash: need("report-hash"),
  verifyResult: need("verify-result"),
  studentsBody: need("students-body"),
  studentsEmpty: need("students-empty"),
  guestsWrap: need("guests-wrap"),
  guestsBody: need("guests-body"),
  guestsEmpty: need("guests-empty"),
};

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

const match = location.pathname.match(/^\/lessons\/([^/]+)\/report\/?$/);
const lessonId = match ? decodeURIComponent(match[1]) : "";
const base = `/api/lessons/${encodeURIComponent(lessonId)}`;

/** @type {{role: string} | null} */
let user = null;
/** @type {any} */
let report = null;
let className = "";

// -- drawing --------------------------------------------------------------------------------

function render() {
  if (!report) return;
  const lesson = report.lesson;
  const frozen = report.frozen;
  page.title.textContent = lesson.title;
  document.title = `${lesson.title} · lophoc`;
  delete document.querySelector("title")?.dataset.i18n;
  page.state.dataset.state = frozen ? "frozen" : "live";
  setText(page.state, frozen ? "report.state_frozen" : "report.state_live");
  page.className.textContent = className || "—";
  const start = parseTime(lesson.scheduled_start);
  page.schedule.textContent = start
    ? `${formatDate(start)} · ${formatTime(start)}–${formatTime(lesson.scheduled_end)}`
    : "—";
  page.window.textContent = `${formatTime(report.window.start)}–${formatTime(report.window.end)}`;
  // Reports frozen before the window followed the teaching (version 1) have no basis: they
  // were counted over the schedule.
  const basis = report.window.basis === "taught" ? "taught" : "scheduled";
  page.basis.dataset.basis = basis;
  setText(page.basis, `report.basis_${basis}`);
  setDownloads();
  page.asOf.textContent = formatDateTime(report.as_of);
  const policy = report.policy;
  setText(page.threshold, "report.thresholds", {
    late: minutesOf(policy.late_after_seconds),
    early: minutesOf(policy.left_early_before_seconds),
    grace: policy.reconnect_grace_seconds,
  });
  renderSummary();
  renderStudents();
  renderGuests();

  const teacher = user?.role === "teacher";
  show(page.refresh, !frozen);
  show(page.liveHint, !frozen);
  show(page.close, teacher && !frozen);
  show(page.verify, Boolean(frozen));
  show(page.frozen, Boolean(frozen));
  if (frozen) {
    page.closedAt.textContent = formatDateTime(frozen.closed_at);
    page.hash.textContent = frozen.content_hash;
  }
  show(page.view);
}

function renderSummary() {
  page.summary.replaceChildren();
  for (const status of [...STATUSES, "guests"]) {
    const count = create("strong", {
      className: "summary-count",
      text: String(report.summary[status] ?? 0),
    });
    const label = create("span", { className: "summary-label" });
    setText(label, status === "guests" ? "report.summary_guests" : `status.${status}`);
    page.summary.append(
      create(
        "li",
        {
          className: "summary-item",
          testId: `summary-${status}`,
          attrs: { "data-status": status },
        },
        [count, label],
      ),
    );
  }
}

/**
 * A table cell with its column's name (shown beside the value on phones, where each row
 * becomes a card).
 */
function cell(labelKey, content, className = "") {
  const td = create("td", { className, attrs: { "data-label": t(labelKey) } });
  if (typeof content === "string") td.textContent = content;
  else td.append(content);
  return td;
}

function leaveText(line) {
  if (line.still_present) return t("report.still_present");
  return line.last_leave ? formatClock(line.last_leave) : "—";
}

function notes(line) {
  const keys = [];
  if (line.status === "late" && line.left_early) keys.push("report.note_left_early");
  if (line.removed) keys.push("report.note_removed");
  if (line.closed_by_recovery) keys.push("report.note_recovery");
  if (line.devices_replaced > 0) keys.push("report.note_devices");
  return keys;
}

function renderStudents() {
  page.studentsBody.replaceChildren();
  show(page.studentsEmpty, report.students.length === 0);
  for (const line of report.students) {
    const badge = create("span", {
      className: "state-badge",
      testId: "student-status",
      attrs: { "data-state": line.status },
    });
    setText(badge, `status.${line.status}`);
    const status = create("div", { className: "status-cell" }, [badge]);
    for (const key of notes(line)) {
      const note = create("span", { className: "status-note" });
      setText(note, key);
      status.append(note);
    }
    const name = create("span", { testId: "student-name", text: line.full_name });
    page.studentsBody.append(
      create(
        "tr",
        {
          testId: "student-row",
          attrs: {
            "data-code": line.student_code,
            "data-status": line.status,
            "data-entry": line.roster_entry_id,
          },
        },
        [
          cell("report.col_code", line.student_code || "—", "code-cell"),
          cell("report.col_name", name, "name-cell"),
          cell("report.col_status", status),
          cell("report.col_first_join", line.first_join ? formatClock(line.first_join) : "—"),
          cell("report.col_last_leave", leaveText(line)),
          cell("report.col_minutes", formatNumber(line.minutes_present), "num"),
          cell("report.col_percentage", `${formatNumber(line.percentage)} %`, "num"),
        ],
      ),
    );
  }
}

function renderGuests() {
  page.guestsBody.replaceChildren();
  const none = report.guests.length === 0;
  show(page.guestsEmpty, none);
  show(page.guestsWrap, !none);
  for (const line of report.guests) {
    page.guestsBody.append(
      create("tr", { testId: "guest-row" }, [
        cell("report.col_guest_name", line.name, "name-cell"),
        cell("report.col_first_join", line.first_join ? formatClock(line.first_join) : "—"),
        cell("report.col_last_leave", leaveText(line)),
        cell("report.col_minutes", formatNumber(line.minutes_present), "num"),
        cell("report.col_percentage", `${formatNumber(line.percentage)} %`, "num"),
      ]),
    );
  }
}

// -- actions --------------------------------------------------------------------------------

async function load() {
  hideApiError(page.error);
  try {
    const data = await api(`${base}/report`);
    report = data.report;
    render();
  } catch (error) {
    showApiError(page.error, error);
  } finally {
    show(page.loading, false);
  }
}

async function loadClassName() {
  try {
    const data = await api("/api/classes");
    const found = data.classes.find((c) => c.id === report?.lesson.class_id);
    className = found ? found.name : "";
    if (report) page.className.textContent = className || "—";
  } catch {
    /* the class name is a nicety; the report stands without it */
  }
}

async function closeReport() {
  if (!window.confirm(t("report.close_confirm"))) return;
  hideApiError(page.actionError);
  page.close.disabled = true;
  try {
    const data = await api(`${base}/report/close`, { method: "POST" });
    report = data.report;
    hideVerification();
    render();
  } catch (error) {
    showApiError(page.actionError, error);
  } finally {
    page.close.disabled = false;
  }
}

function hideVerification() {
  delete page.verifyResult.dataset.ok;
  clearText(page.verifyResult);
  show(page.verifyResult, false);
}

async function verifyReport() {
  hideApiError(page.actionError);
  hideVerification();
  page.verify.disabled = true;
  try {
    const { verification } = await api(`${base}/report/verify`);
    page.verifyResult.dataset.ok = verification.ok ? "true" : "false";
    let key = "report.verify_ok";
    if (!verification.content_hash_ok) key = "report.verify_hash_bad";
    else if (!verification.events_match) key = "report.verify_events_bad";
    setText(page.verifyResult, key);
    show(page.verifyResult);
  } catch (error) {
    showApiError(page.actionError, error);
  } finally {
    page.verify.disabled = false;
  }
}

async function refresh() {
  page.refresh.disabled = true;
  hideApiError(page.actionError);
  await load();
  page.refresh.disabled = false;
}

/** The downloads, with headers and values in the page's language. */
function setDownloads() {
  const query = `?lang=${encodeURIComponent(getLanguage())}`;
  page.xlsx.href = `${base}/report.xlsx${query}`;
  page.csv.href = `${base}/report.csv${query}`;
}

setDownloads();
page.close.addEventListener("click", closeReport);
page.verify.addEventListener("click", verifyReport);
page.refresh.addEventListener("click", refresh);
onLanguageChange(() => {
  render();
  setDownloads();
});

requireUser().then(
  async (me) => {
    user = me;
    bindAccountBar(me);
    if (!lessonId) {
      show(page.loading, false);
      showApiError(page.error, new ApiError(404, "not_found"));
      return;
    }
    await load();
    if (report) await loadClassName();
  },
  (error) => {
    show(page.loading, false);
    showApiError(page.error, error);
  },
);
