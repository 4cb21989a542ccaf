/**
 * A class's attendance over a date range (`/classes/<class id>/report`): for each student,
 * the lessons they were expected at, attended (present, late or left early), each status and
 * their minutes; frozen and live lesson reports count alike. With the Excel and CSV files of
 * the same range, in the page's language.
 */

import { byTestId, create, need, show } from "./dom.js";
import { getLanguage, initI18n, onLanguageChange, setText, t } from "./i18n.js";
import {
  ApiError,
  api,
  bindAccountBar,
  formatNumber,
  hideApiError,
  requireUser,
  showApiError,
} from "./account.js";
import { defaultRange } from "./records.js";

const page = {
  title: need("class-report-title"),
  form: /** @type {HTMLFormElement} */ (need("class-report-form")),
  from: /** @type {HTMLInputElement} */ (need("class-report-from")),
  to: /** @type {HTMLInputElement} */ (need("class-report-to")),
  submit: /** @type {HTMLButtonElement} */ (need("class-report-submit")),
  error: need("class-report-error"),
  lessons: need("class-report-lessons"),
  xlsx: /** @type {HTMLAnchorElement} */ (need("class-report-xlsx")),
  csv: /** @type {HTMLAnchorElement} */ (need("class-report-csv")),
  view: need("class-report-view"),
  body: need("class-report-body"),
  empty: need("class-report-empty"),
};

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

const match = location.pathname.match(/^\/classes\/([^/]+)\/report\/?$/);
const classId = match ? decodeURIComponent(match[1]) : "";
const base = `/api/classes/${encodeURIComponent(classId)}`;

/** @type {any} */
let report = null;
/** The range of the report shown, as a query (empty: none shown, no downloads). */
let shownQuery = "";

/** Excel and CSV of the range shown, with headers and values in the page's language. */
function setDownloads() {
  const query = `${shownQuery}&lang=${encodeURIComponent(getLanguage())}`;
  page.xlsx.href = `${base}/report.xlsx?${query}`;
  page.csv.href = `${base}/report.csv?${query}`;
  show(page.xlsx, Boolean(shownQuery));
  show(page.csv, Boolean(shownQuery));
}

function cell(labelKey, text, className = "") {
  return create("td", { className, text, attrs: { "data-label": t(labelKey) } });
}

function render() {
  if (!report) return;
  setText(page.title, "class_report.heading_for", { name: report.class.name });
  document.title = `${report.class.name} · lophoc`;
  delete document.querySelector("title")?.dataset.i18n;
  const frozen = report.lessons.filter((lesson) => lesson.frozen).length;
  setText(page.lessons, "class_report.lessons", { count: report.lessons.length, frozen });
  page.body.replaceChildren();
  show(page.empty, report.students.length === 0);
  for (const row of report.students) {
    const rate = row.attendance_rate === null ? "—" : `${formatNumber(row.attendance_rate)} %`;
    page.body.append(
      create(
        "tr",
        {
          testId: "class-student-row",
          attrs: { "data-code": row.student_code, "data-attended": String(row.attended) },
        },
        [
          cell("report.col_code", row.student_code || "—", "code-cell"),
          cell("report.col_name", row.full_name, "name-cell"),
          cell("class_report.col_lessons", String(row.lessons), "num"),
          cell("class_report.col_attended", String(row.attended), "num"),
          cell("status.present", String(row.present), "num"),
          cell("status.late", String(row.late), "num"),
          cell("status.left_early", String(row.left_early), "num"),
          cell("status.absent", String(row.absent), "num"),
          cell("report.col_minutes", formatNumber(row.minutes_present), "num"),
          cell("class_report.col_rate", rate, "num"),
        ],
      ),
    );
  }
  show(page.view);
}

async function load() {
  hideApiError(page.error);
  const query = `from=${encodeURIComponent(page.from.value)}&to=${encodeURIComponent(page.to.value)}`;
  page.submit.disabled = true;
  try {
    const data = await api(`${base}/report?${query}`);
    report = data.report;
    shownQuery = query;
    setDownloads();
    render();
  } catch (error) {
    showApiError(page.error, error);
    shownQuery = "";
    setDownloads();
  } finally {
    page.submit.disabled = false;
  }
}

const range = defaultRange(new Date());
page.from.value = range.from;
page.to.value = range.to;
page.form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
onLanguageChange(() => {
  render();
  setDownloads();
});

requireUser().then(
  (me) => {
    bindAccountBar(me);
    if (!classId) {
      showApiError(page.error, new ApiError(404, "not_found"));
      return;
    }
    return load();
  },
  (error) => showApiError(page.error, error),
);
