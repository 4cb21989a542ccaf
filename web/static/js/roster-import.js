/**
 * A class's student list (`/classes/<class id>/roster`): choose the school's file (Excel
 * .xlsx or CSV), see what the import would do — every row added, updated or unchanged, every
 * problem with its line, column and value, who is not in the file — and only then confirm.
 *
 * The check is `PUT /api/classes/<id>/roster?dry_run=true` with the file as the body: the
 * server reads it exactly as the import will and writes nothing. Confirming sends the same
 * file again without `dry_run`; a file with problems cannot be confirmed (and the server would
 * refuse it anyway). Problems are explained in the server's own words, in both languages
 * (`messages.vi` / `messages.en`), so the page and the command line say the same thing.
 */

import { byTestId, create, need, show } from "./dom.js";
import { getLanguage, initI18n, onLanguageChange, setText, t } from "./i18n.js";
import {
  ApiError,
  api,
  bindAccountBar,
  hideApiError,
  requireUser,
  showApiError,
} from "./account.js";

/** The server's limit (classroom/roster_files.py MAX_ROSTER_BYTES): checked before sending. */
const MAX_FILE_BYTES = 1024 * 1024;

const page = {
  title: need("roster-title"),
  count: need("roster-count"),
  error: need("roster-page-error"),
  notice: need("roster-notice"),
  form: /** @type {HTMLFormElement} */ (need("roster-form")),
  file: /** @type {HTMLInputElement} */ (need("roster-file")),
  withdraw: /** @type {HTMLInputElement} */ (need("roster-withdraw")),
  check: /** @type {HTMLButtonElement} */ (need("roster-check")),
  exportLink: /** @type {HTMLAnchorElement} */ (need("roster-export")),
  preview: need("roster-preview"),
  readAs: need("roster-read-as"),
  summary: need("roster-summary"),
  errors: need("roster-errors"),
  errorsLead: need("roster-errors-lead"),
  errorList: need("roster-error-list"),
  confirmText: need("roster-confirm-text"),
  confirm: /** @type {HTMLButtonElement} */ (need("roster-confirm")),
  table: need("roster-table"),
  rows: need("roster-rows"),
  noRows: need("roster-no-rows"),
  missing: need("roster-missing"),
  missingTitle: need("roster-missing-title"),
  missingList: need("roster-missing-list"),
};

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

const match = location.pathname.match(/^\/classes\/([^/]+)\/roster\/?$/);
const classId = match ? decodeURIComponent(match[1]) : "";
const base = `/api/classes/${encodeURIComponent(classId)}`;
page.exportLink.href = `${base}/roster.csv`;

/** @type {{id: string, name: string} | null} */
let schoolClass = null;
/** @type {number | null} */
let studentCount = null;
/** The bytes the shown preview is of, and that preview. */
/** @type {Blob | null} */
let checkedFile = null;
/** @type {any} */
let preview = null;
/** The counts of the last import, shown in the notice. @type {any} */
let imported = null;

// -- drawing ------------------------------------------------------------------------------

/** The server's explanation of one problem in the page's language. */
function explain(error) {
  const messages = error.messages ?? {};
  return messages[getLanguage()] ?? messages.en ?? t("roster.problem_unknown", { code: error.reason });
}

/** "Dòng 5 · Cột “Họ và tên” · Ô C5" for one problem. */
function where(error) {
  const parts = [];
  if (error.sheet) parts.push(t("roster.where_sheet", { sheet: error.sheet }));
  parts.push(error.line == null ? t("roster.where_file") : t("roster.where_line", { line: error.line }));
  if (error.column) parts.push(t("roster.where_column", { column: error.column }));
  if (error.cell) parts.push(t("roster.where_cell", { cell: error.cell }));
  return parts.join(" · ");
}

function renderHead() {
  if (schoolClass) {
    setText(page.title, "roster.heading_for", { name: schoolClass.name });
    document.title = `${schoolClass.name} · lophoc`;
  }
  if (studentCount !== null) setText(page.count, "roster.count", { count: studentCount });
  if (imported) {
    setText(page.notice, "roster.imported", imported);
    show(page.notice);
  }
}

function readAs(file) {
  const parts = [];
  if (file.format === "xlsx") {
    parts.push(t("roster.read_xlsx"));
    if (file.sheet) parts.push(t("roster.read_sheet", { sheet: file.sheet }));
  } else if (file.format === "csv") {
    parts.push(t("roster.read_csv"));
    if (file.encoding) parts.push(file.encoding);
    if (file.delimiter) parts.push(t(`roster.delimiter_${{ ",": "comma", ";": "semicolon", "\t": "tab" }[file.delimiter] ?? "comma"}`));
  }
  if (file.header_line) parts.push(t("roster.read_header", { line: file.header_line }));
  const columns = Object.values(file.columns ?? {});
  if (columns.length) parts.push(t("roster.read_columns", { columns: columns.join(", ") }));
  if (file.ignored_columns?.length) {
    parts.push(t("roster.read_ignored", { columns: file.ignored_columns.join(", ") }));
  }
  return parts.join(" · ");
}

function summaryItem(status, count) {
  const item = create("li", { className: "roster-chip", testId: `summary-${status}`, attrs: { "data-status": status } });
  item.append(
    create("span", { className: "roster-chip-count", text: String(count) }),
    create("span", { className: "roster-chip-label", text: t(`roster.summary_${status}`) }),
  );
  return item;
}

function cell(labelKey, text, className = "") {
  return create("td", { className, attrs: { "data-label": t(labelKey) } }, [
    create("span", { className: "roster-value", text }),
  ]);
}

function statusCell(row, problems) {
  const badge = create("span", { className: "roster-badge", testId: "row-status", attrs: { "data-state": row.status } });
  setText(badge, `roster.status_${row.status}`);
  const td = create("td", { className: "roster-status", attrs: { "data-label": t("roster.col_status") } }, [badge]);
  const notes = create("div", { className: "roster-notes" });
  for (const change of row.changes ?? []) {
    const previous = row.previous ?? {};
    const params = {
      name: previous.full_name ?? "",
      contact: previous.parent_contact ?? t("roster.nothing"),
    };
    notes.append(create("span", { className: "roster-change", text: t(`roster.change_${change}`, params) }));
  }
  for (const error of problems) {
    const line = create("span", { className: "roster-row-error", testId: "row-error", attrs: { "data-reason": error.reason } });
    line.textContent = error.column ? `${error.column}: ${explain(error)}` : explain(error);
    notes.append(line);
  }
  if (notes.childElementCount) td.append(notes);
  return td;
}

function renderPreview() {
  if (!preview) {
    show(page.preview, false);
    return;
  }
  show(page.preview);
  page.readAs.textContent = readAs(preview.file);
  const summary = preview.summary;
  page.summary.replaceChildren(
    summaryItem("added", summary.added),
    summaryItem("updated", summary.updated),
    summaryItem("unchanged", summary.unchanged),
    ...(preview.withdraw_missing ? [summaryItem("withdrawn", summary.withdrawn)] : [summaryItem("kept", summary.kept)]),
    ...(summary.errors ? [summaryItem("error", summary.errors)] : []),
  );

  // Problems: listed at the top (each links to its row), and shown on their rows.
  const byLine = new Map();
  page.errorList.replaceChildren();
  for (const error of preview.errors) {
    if (error.line != null) byLine.set(error.line, [...(byLine.get(error.line) ?? []), error]);
    const item = create("li", { className: "roster-error", testId: "roster-error", attrs: { "data-reason": error.reason } });
    const place = create("strong", { className: "roster-error-where", text: where(error) });
    const rowLink = error.line != null && preview.rows.some((row) => row.line === error.line);
    const head = rowLink
      ? create("a", { attrs: { href: `#roster-line-${error.line}` } }, [place])
      : place;
    item.append(head);
    if (error.value) item.append(create("span", { className: "roster-error-value", testId: "roster-error-value", text: `“${error.value}”` }));
    item.append(create("span", { className: "roster-error-message", text: explain(error) }));
    page.errorList.append(item);
  }
  show(page.errors, preview.errors.length > 0);
  if (preview.errors.length) setText(page.errorsLead, "roster.errors_lead", { count: preview.errors.length });

  page.rows.replaceChildren();
  for (const row of preview.rows) {
    const problems = byLine.get(row.line) ?? [];
    const bad = new Set(problems.map((error) => error.field));
    const codeCell = cell("roster.col_code", row.student_code || "—", "code-cell");
    const nameCell = cell("roster.col_name", row.full_name || "—", "name-cell");
    const contactCell = cell("roster.col_contact", row.parent_contact || "—", "contact-cell");
    if (bad.has("student_code")) codeCell.dataset.bad = "true";
    if (bad.has("full_name")) nameCell.dataset.bad = "true";
    if (bad.has("parent_contact")) contactCell.dataset.bad = "true";
    page.rows.append(
      create(
        "tr",
        {
          testId: "roster-row",
          attrs: {
            id: `roster-line-${row.line}`,
            "data-line": String(row.line),
            "data-code": row.student_code ?? "",
            "data-status": row.status,
          },
        },
        [cell("roster.col_line", String(row.line), "line-cell"), codeCell, nameCell, contactCell, statusCell(row, problems)],
      ),
    );
  }
  // A file that could not be read at all has no rows to show, and "who is not in the file"
  // would only alarm: both wait for a file that can be read.
  const unread = preview.rows.length === 0 && preview.errors.length > 0;
  show(page.noRows, preview.rows.length === 0 && !unread);
  show(page.table, !unread);

  page.missingList.replaceChildren();
  show(page.missing, preview.missing.length > 0 && !unread);
  if (preview.missing.length && !unread) {
    setText(page.missingTitle, preview.withdraw_missing ? "roster.missing_withdraw" : "roster.missing_keep", { count: preview.missing.length });
    for (const student of preview.missing) {
      page.missingList.append(
        create("li", { testId: "roster-missing-student", attrs: { "data-code": student.student_code } }, [
          create("span", { className: "code-cell", text: student.student_code }),
          create("span", { text: ` ${student.full_name}` }),
        ]),
      );
    }
  }

  page.confirm.disabled = !preview.ok || preview.rows.length === 0;
  if (!preview.ok) setText(page.confirmText, "roster.confirm_blocked");
  else if (preview.rows.length === 0) setText(page.confirmText, "roster.confirm_empty");
  else setText(page.confirmText, "roster.confirm_ready", { ...summary });
}

function render() {
  renderHead();
  renderPreview();
}

// -- loading, checking, importing --------------------------------------------------------------

async function loadClass() {
  const [classes, roster] = await Promise.all([api("/api/classes"), api(`${base}/roster`)]);
  schoolClass = classes.classes.find((item) => item.id === classId) ?? null;
  studentCount = roster.students.length;
  renderHead();
}

/** The file is over the limit: said in the page's words (the API's `too_big` is generic). */
function showTooBig() {
  page.error.dataset.code = "too_big";
  setText(page.error, "roster.file_too_big");
  show(page.error);
}

function query(dryRun) {
  const params = new URLSearchParams();
  if (dryRun) params.set("dry_run", "true");
  if (page.withdraw.checked) params.set("withdraw_missing", "true");
  const text = params.toString();
  return text ? `?${text}` : "";
}

async function check() {
  hideApiError(page.error);
  const file = page.file.files?.[0] ?? null;
  preview = null;
  checkedFile = null;
  renderPreview();
  if (!file) {
    showApiError(page.error, new ApiError(400, "roster_no_file"));
    page.file.focus();
    return;
  }
  if (file.size > MAX_FILE_BYTES) {
    showTooBig();
    return;
  }
  page.check.disabled = true;
  try {
    // The bytes checked are the bytes imported, even if the file changes on disk meanwhile.
    const bytes = new Blob([await file.arrayBuffer()]);
    const data = await api(`${base}/roster${query(true)}`, { method: "PUT", file: bytes });
    preview = data.preview;
    checkedFile = bytes;
    show(page.notice, false);
    imported = null;
    renderPreview();
    const target = preview.ok ? page.preview : page.errors;
    target.scrollIntoView({ block: "start" });
  } catch (error) {
    if (error instanceof ApiError && error.code === "too_big") showTooBig();
    else showApiError(page.error, error);
  } finally {
    page.check.disabled = false;
  }
}

async function confirmImport() {
  if (!preview?.ok || !checkedFile) return;
  hideApiError(page.error);
  page.confirm.disabled = true;
  try {
    const data = await api(`${base}/roster${query(false)}`, { method: "PUT", file: checkedFile });
    imported = data.imported;
    preview = null;
    checkedFile = null;
    page.form.reset();
    await loadClass();
    renderPreview();
    page.notice.scrollIntoView({ block: "center" });
  } catch (error) {
    showApiError(page.error, error);
    page.confirm.disabled = false;
  }
}

// -- wiring ---------------------------------------------------------------------------------

page.form.addEventListener("submit", (event) => {
  event.preventDefault();
  check();
});
page.file.addEventListener("change", () => {
  if (page.file.files?.length) check();
});
page.withdraw.addEventListener("change", () => {
  if (preview) check();
});
page.confirm.addEventListener("click", confirmImport);
onLanguageChange(render);

requireUser().then(
  async (me) => {
    bindAccountBar(me);
    document.body.dataset.role = me.role;
    try {
      await loadClass();
    } catch (error) {
      showApiError(page.error, error);
    }
  },
  (error) => showApiError(page.error, error),
);
