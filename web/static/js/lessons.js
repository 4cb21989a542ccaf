/**
 * The teacher's classes and lessons (`/lessons`): each class with its lessons (title, time,
 * state), a link to its student list (`/classes/<id>/roster`), a form to schedule a class
 * lesson, every student's personal link for a lesson (copy, revoke, issue a new one), "start
 * teaching" and the lesson's report.
 *
 * "Start teaching" asks the API for a fresh teacher token and hands the lesson to the `/teach`
 * console the way that page remembers its own lessons (sessionStorage `lophoc.teacher.<code>`
 * and `lophoc.teacher.last`), so the console offers to continue it.
 */

import { byTestId, create, formatCode, need, show } from "./dom.js";
import { initI18n, onLanguageChange, setText, t } from "./i18n.js";
import { session as sessionStore } from "./storage.js";
import {
  api,
  bindAccountBar,
  formatDate,
  formatTime,
  hideApiError,
  isoDay,
  parseTime,
  requireUser,
  showApiError,
  ApiError,
  timeZoneName,
} from "./account.js";
import { lessonState, linkStatus, linksByStudent, scheduleFrom, slotWhen } from "./records.js";

const MAX_TITLE_CHARS = 200;
const PASSWORD_CHARS = { min: 8, max: 256 };
const DEFAULT_LENGTH_MINUTES = 45;
const DEFAULT_DAYS_BACK = 30;

const page = {
  error: need("page-error"),
  notice: need("page-notice"),
  loading: need("classes-loading"),
  empty: need("classes-empty"),
  list: need("class-list"),
  filter: /** @type {HTMLFormElement} */ (need("lessons-filter")),
  from: /** @type {HTMLInputElement} */ (need("lessons-from")),
  lessonDialog: /** @type {HTMLDialogElement} */ (need("lesson-dialog")),
  lessonForm: /** @type {HTMLFormElement} */ (need("lesson-form")),
  lessonClass: need("lesson-form-class"),
  lessonError: need("lesson-form-error"),
  lessonTitle: /** @type {HTMLInputElement} */ (need("lesson-form-title")),
  lessonDate: /** @type {HTMLInputElement} */ (need("lesson-form-date")),
  lessonStart: /** @type {HTMLInputElement} */ (need("lesson-form-start")),
  lessonEnd: /** @type {HTMLInputElement} */ (need("lesson-form-end")),
  lessonZone: need("lesson-form-zone"),
  lessonWhen: need("lesson-form-when"),
  lessonNow: /** @type {HTMLButtonElement} */ (need("lesson-form-now")),
  lessonPassword: /** @type {HTMLInputElement} */ (need("lesson-form-password")),
  lessonSubmit: /** @type {HTMLButtonElement} */ (need("lesson-form-submit")),
  lessonCancel: /** @type {HTMLButtonElement} */ (need("lesson-form-cancel")),
  linksDialog: /** @type {HTMLDialogElement} */ (need("links-dialog")),
  linksLesson: need("links-lesson"),
  linksError: need("links-error"),
  linksLoading: need("links-loading"),
  linksList: need("links-list"),
  linksClose: /** @type {HTMLButtonElement} */ (need("links-close")),
};

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

/** @type {{id: string, full_name: string, role: string} | null} */
let user = null;
/** @type {Array<{id: string, name: string}>} */
let classes = [];
/** @type {Array<any>} */
let lessons = [];
/** The class the lesson form is for. @type {{id: string, name: string} | null} */
let formClass = null;
/** The lesson whose links are shown. @type {any} */
let linksLesson = null;
/** @type {Array<any>} */
let shownLinks = [];

const isTeacher = () => user?.role === "teacher";

// -- drawing helpers ---------------------------------------------------------------------

function lessonWhen(lesson) {
  const start = parseTime(lesson.scheduled_start);
  const end = parseTime(lesson.scheduled_end);
  if (!start) return "";
  return `${formatDate(start)} · ${formatTime(start)}–${formatTime(end)}`;
}

// -- loading and drawing ----------------------------------------------------------------------

async function load() {
  hideApiError(page.error);
  show(page.loading);
  try {
    const query = page.from.value ? `?from=${encodeURIComponent(page.from.value)}` : "";
    const [classData, lessonData] = await Promise.all([
      api("/api/classes"),
      api(`/api/lessons${query}`),
    ]);
    classes = classData.classes;
    lessons = lessonData.lessons;
    render();
  } catch (error) {
    showApiError(page.error, error);
  } finally {
    show(page.loading, false);
  }
}

function render() {
  const now = new Date();
  page.list.replaceChildren();
  show(page.empty, classes.length === 0);
  for (const schoolClass of classes) {
    const own = lessons
      .filter((lesson) => lesson.class_id === schoolClass.id)
      .sort((a, b) => String(b.scheduled_start).localeCompare(String(a.scheduled_start)));
    page.list.append(classCard(schoolClass, own, now));
  }
}

function classCard(schoolClass, own, now) {
  const name = create("h2", { className: "class-name", testId: "class-name", text: schoolClass.name });
  const report = create("a", {
    className: "btn btn-ghost btn-small",
    testId: "class-report-link",
    attrs: { href: `/classes/${encodeURIComponent(schoolClass.id)}/report` },
  });
  setText(report, "lessons.class_report");
  const roster = create("a", {
    className: "btn btn-ghost btn-small",
    testId: "class-roster-link",
    attrs: { href: `/classes/${encodeURIComponent(schoolClass.id)}/roster` },
  });
  setText(roster, "lessons.roster");
  const actions = create("div", { className: "class-actions" }, [roster, report]);
  if (isTeacher()) {
    const add = create("button", {
      className: "btn btn-primary btn-small",
      testId: "class-new-lesson",
      attrs: { type: "button" },
    });
    setText(add, "lessons.new_lesson");
    add.addEventListener("click", () => openLessonForm(schoolClass));
    actions.append(add);
  }
  const list = create("ul", { className: "lesson-list", testId: "lesson-list" });
  for (const lesson of own) list.append(lessonRow(lesson, now));
  const card = create(
    "section",
    { className: "class-card", testId: "class-card", attrs: { "data-class-id": schoolClass.id } },
    [create("div", { className: "class-head" }, [name, actions]), list],
  );
  if (own.length === 0) {
    const empty = create("p", { className: "list-empty", testId: "lessons-empty" });
    setText(empty, "lessons.no_lessons");
    card.append(empty);
  }
  return card;
}

function lessonRow(lesson, now) {
  const state = lessonState(lesson, now);
  const title = create("strong", { className: "lesson-title", testId: "lesson-title", text: lesson.title });
  const when = create("span", { className: "lesson-when", testId: "lesson-when", text: lessonWhen(lesson) });
  const code = create("span", { className: "lesson-code" });
  setText(code, "lessons.code", { code: formatCode(lesson.code) });
  const badge = create("span", {
    className: "state-badge",
    testId: "lesson-state",
    attrs: { "data-state": state },
  });
  setText(badge, `lesson_state.${state}`);
  const main = create("div", { className: "lesson-main" }, [
    create("div", { className: "lesson-line" }, [title, badge]),
    create("div", { className: "lesson-meta" }, [when, code]),
  ]);

  const actions = create("div", { className: "lesson-actions" });
  if (isTeacher()) {
    const links = create("button", {
      className: "btn btn-ghost btn-small",
      testId: "lesson-links",
      attrs: { type: "button" },
    });
    setText(links, "lessons.links");
    links.addEventListener("click", () => openLinks(lesson));
    const start = /** @type {HTMLButtonElement} */ (
      create("button", {
        className: "btn btn-primary btn-small",
        testId: "lesson-start",
        attrs: { type: "button" },
      })
    );
    // Before its scheduled start, starting is a choice the teacher makes knowingly: the
    // button says "start early" and asks first (attendance then counts from the start).
    const early = state === "upcoming";
    setText(start, early ? "lessons.start_early" : "lessons.start");
    if (early) {
      // Not the usual way in: a secondary button, and a question first.
      start.classList.replace("btn-primary", "btn-secondary");
      start.dataset.early = "true";
      start.title = t("lessons.start_early_title", { time: formatTime(lesson.scheduled_start) });
    }
    start.disabled = state === "ended";
    start.addEventListener("click", () => {
      if (lessonState(lesson, new Date()) === "upcoming" && !confirmEarlyStart(lesson)) return;
      startTeaching(lesson, start);
    });
    actions.append(links, start);
  }
  const report = create("a", {
    className: "btn btn-secondary btn-small",
    testId: "lesson-report",
    attrs: { href: `/lessons/${encodeURIComponent(lesson.id)}/report` },
  });
  setText(report, "lessons.report");
  actions.append(report);
  return create(
    "li",
    {
      className: "lesson-row",
      testId: "lesson-row",
      attrs: { "data-lesson-id": lesson.id, "data-state": state },
    },
    [main, actions],
  );
}

function notify(key, params = {}) {
  setText(page.notice, key, params);
  show(page.notice);
}

// -- starting to teach ----------------------------------------------------------------------

/** "12 phút", "2 giờ 5 phút": how long until something, in whole minutes. */
function waitText(minutes) {
  if (minutes < 60) return t("lessons.wait_minutes", { minutes });
  return t("lessons.wait_hours", { hours: Math.floor(minutes / 60), minutes: minutes % 60 });
}

/** Ask before starting a lesson ahead of its schedule; true to go ahead. */
function confirmEarlyStart(lesson) {
  const start = parseTime(lesson.scheduled_start);
  if (!start) return true;
  const minutes = Math.max(1, Math.ceil((start.getTime() - Date.now()) / 60_000));
  return window.confirm(
    t("lessons.start_early_confirm", {
      title: lesson.title,
      time: formatTime(start),
      date: formatDate(start),
      wait: waitText(minutes),
    }),
  );
}

/**
 * Hand the lesson to `/teach` in the shape teach.js remembers its own (`POST /api/lessons`'s
 * answer): `{lesson: {id, code, title}, teacher_token, join_url}`.
 */
async function startTeaching(lesson, button) {
  hideApiError(page.error);
  button.disabled = true;
  try {
    const { teacher_token: token } = await api(
      `/api/lessons/${encodeURIComponent(lesson.id)}/teacher-token`,
      { method: "POST" },
    );
    sessionStore.setJson(`lophoc.teacher.${lesson.code}`, {
      lesson: { id: lesson.id, code: lesson.code, title: lesson.title },
      teacher_token: token,
      join_url: lesson.join_url,
    });
    sessionStore.set("lophoc.teacher.last", lesson.code);
    location.assign("/teach");
  } catch (error) {
    showApiError(page.error, error);
    button.disabled = false;
  }
}

// -- scheduling a lesson ------------------------------------------------------------------------

function timeOfDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * The next quarter hour from now, and the default length after it. The form says how far
 * off that is, and "start now" moves it to this minute: no lesson is scheduled for later
 * without the teacher seeing so.
 */
function defaultSlot() {
  const start = new Date();
  start.setSeconds(0, 0);
  start.setMinutes(Math.ceil((start.getMinutes() + 1) / 15) * 15);
  const end = new Date(start.getTime() + DEFAULT_LENGTH_MINUTES * 60_000);
  return { start, end };
}

function openLessonForm(schoolClass) {
  formClass = schoolClass;
  hideApiError(page.lessonError);
  setText(page.lessonClass, "lesson_form.for_class", { name: schoolClass.name });
  const { start, end } = defaultSlot();
  page.lessonTitle.value = "";
  page.lessonPassword.value = "";
  setSlot(start, end);
  const zone = timeZoneName();
  if (zone) setText(page.lessonZone, "lesson_form.zone", { zone });
  else show(page.lessonZone, false);
  page.lessonDialog.showModal();
  page.lessonTitle.focus();
}

function setSlot(start, end) {
  page.lessonDate.value = isoDay(start);
  page.lessonStart.value = timeOfDay(start);
  page.lessonEnd.value = timeOfDay(end);
  describeSlot();
}

/** "Starts in 12 minutes, at 18:15" under the times, kept up to date as they change. */
function describeSlot() {
  const schedule = formSchedule();
  show(page.lessonWhen, Boolean(schedule));
  if (!schedule) return;
  const { when, minutes } = slotWhen(schedule.start, new Date());
  page.lessonWhen.dataset.when = when;
  setText(page.lessonWhen, `lesson_form.when_${when}`, {
    minutes,
    wait: waitText(minutes),
    time: formatTime(schedule.start),
    date: formatDate(schedule.start),
  });
}

function startNow() {
  const start = new Date();
  start.setSeconds(0, 0);
  setSlot(start, new Date(start.getTime() + DEFAULT_LENGTH_MINUTES * 60_000));
}

function formSchedule() {
  return scheduleFrom(page.lessonDate.value, page.lessonStart.value, page.lessonEnd.value);
}

async function submitLesson(event) {
  event.preventDefault();
  if (!formClass) return;
  hideApiError(page.lessonError);
  const title = page.lessonTitle.value.trim();
  const password = page.lessonPassword.value;
  if (!title || [...title].length > MAX_TITLE_CHARS) {
    showApiError(page.lessonError, new ApiError(400, "invalid_title"));
    page.lessonTitle.focus();
    return;
  }
  const schedule = formSchedule();
  if (!schedule) {
    showApiError(page.lessonError, new ApiError(400, "invalid_schedule"));
    page.lessonStart.focus();
    return;
  }
  const length = [...password].length;
  if (password && (length < PASSWORD_CHARS.min || length > PASSWORD_CHARS.max)) {
    showApiError(page.lessonError, new ApiError(400, "weak_password"));
    page.lessonPassword.focus();
    return;
  }
  page.lessonSubmit.disabled = true;
  try {
    const body = {
      title,
      scheduled_start: schedule.start.toISOString(),
      scheduled_end: schedule.end.toISOString(),
    };
    if (password) body.password = password;
    const created = await api(`/api/classes/${encodeURIComponent(formClass.id)}/lessons`, {
      method: "POST",
      body,
    });
    page.lessonPassword.value = "";
    page.lessonDialog.close();
    await load();
    notify("lessons.created", { title: created.lesson.title });
  } catch (error) {
    showApiError(page.lessonError, error);
  } finally {
    page.lessonSubmit.disabled = false;
  }
}

// -- personal links --------------------------------------------------------------------------

async function openLinks(lesson) {
  linksLesson = lesson;
  shownLinks = [];
  page.linksLesson.textContent = `${lesson.title} · ${lessonWhen(lesson)}`;
  page.linksList.replaceChildren();
  if (!page.linksDialog.open) page.linksDialog.showModal();
  await loadLinks();
}

async function loadLinks() {
  if (!linksLesson) return;
  hideApiError(page.linksError);
  show(page.linksLoading);
  try {
    const data = await api(`/api/lessons/${encodeURIComponent(linksLesson.id)}/links`);
    shownLinks = data.links;
    renderLinks();
  } catch (error) {
    showApiError(page.linksError, error);
  } finally {
    show(page.linksLoading, false);
  }
}

function renderLinks() {
  if (!linksLesson) return;
  const now = new Date();
  page.linksList.replaceChildren();
  const lines = linksByStudent(shownLinks);
  if (lines.length === 0) {
    const empty = create("li", { className: "list-empty", testId: "links-empty" });
    setText(empty, "links.none");
    page.linksList.append(empty);
  }
  for (const link of lines) page.linksList.append(linkRow(link, linksLesson, now));
}

function linkRow(link, lesson, now) {
  const status = linkStatus(link, lesson, now);
  const name = create("strong", { className: "link-name", testId: "link-name", text: link.full_name });
  const code = create("span", { className: "link-code", text: link.student_code });
  const badge = create("span", { className: "state-badge", testId: "link-status", attrs: { "data-state": status } });
  setText(badge, `link_state.${status}`);
  const head = create("div", { className: "link-head" }, [name, code, badge]);
  const row = create(
    "li",
    {
      className: "link-item",
      testId: "link-row",
      attrs: { "data-code": link.student_code, "data-state": status },
    },
    [head],
  );
  const buttons = create("div", { className: "link-actions" });
  if (status === "active" && link.url) {
    const input = /** @type {HTMLInputElement} */ (
      create("input", {
        className: "link-input",
        testId: "link-url",
        attrs: { readonly: "", "aria-label": t("links.url_label", { name: link.full_name }) },
      })
    );
    input.value = link.url;
    const copy = create("button", { className: "btn btn-secondary btn-small", testId: "link-copy", attrs: { type: "button" } });
    setText(copy, "ready.copy");
    copy.addEventListener("click", () => copyLink(input, copy));
    const revoke = create("button", { className: "btn btn-ghost btn-small btn-danger-text", testId: "link-revoke", attrs: { type: "button" } });
    setText(revoke, "links.revoke");
    revoke.addEventListener("click", () => changeLink(link, "revoke"));
    const reissue = create("button", { className: "btn btn-ghost btn-small", testId: "link-reissue", attrs: { type: "button" } });
    setText(reissue, "links.reissue");
    reissue.addEventListener("click", () => changeLink(link, "reissue"));
    row.append(create("div", { className: "link-row" }, [input, copy]));
    buttons.append(reissue, revoke);
  } else if (status === "revoked") {
    const reissue = create("button", { className: "btn btn-secondary btn-small", testId: "link-reissue", attrs: { type: "button" } });
    setText(reissue, "links.issue_new");
    reissue.addEventListener("click", () => changeLink(link, "reissue"));
    buttons.append(reissue);
  }
  if (buttons.childElementCount) row.append(buttons);
  return row;
}

async function copyLink(input, button) {
  let copied = false;
  try {
    await navigator.clipboard.writeText(input.value);
    copied = true;
  } catch {
    input.focus();
    input.select();
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
  }
  setText(button, copied ? "ready.copied" : "ready.copy_select");
  button.dataset.copied = copied ? "true" : "false";
  setTimeout(() => {
    setText(button, "ready.copy");
    delete button.dataset.copied;
  }, 2_500);
}

/**
 * Revoke a link, or revoke it and issue the same student a new one (after a confirmation).
 * @param {any} link
 * @param {"revoke" | "reissue"} action
 */
async function changeLink(link, action) {
  if (!linksLesson) return;
  const question = action === "revoke" ? "links.revoke_confirm" : "links.reissue_confirm";
  if (!window.confirm(t(question, { name: link.full_name }))) return;
  hideApiError(page.linksError);
  try {
    await api(
      `/api/lessons/${encodeURIComponent(linksLesson.id)}/links/${encodeURIComponent(link.id)}/${action}`,
      { method: "POST" },
    );
  } catch (error) {
    showApiError(page.linksError, error);
  }
  await loadLinks();
}

// -- wiring ---------------------------------------------------------------------------------

page.lessonForm.addEventListener("submit", submitLesson);
page.lessonCancel.addEventListener("click", () => page.lessonDialog.close());
page.lessonNow.addEventListener("click", startNow);
for (const input of [page.lessonDate, page.lessonStart, page.lessonEnd]) {
  input.addEventListener("input", describeSlot);
}
page.linksClose.addEventListener("click", () => page.linksDialog.close());
page.filter.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
onLanguageChange(() => {
  render();
  renderLinks();
  if (page.lessonDialog.open) describeSlot();
});

const since = new Date();
since.setDate(since.getDate() - DEFAULT_DAYS_BACK);
page.from.value = isoDay(since);

requireUser().then(
  (me) => {
    user = me;
    bindAccountBar(me);
    document.body.dataset.role = me.role;
    return load();
  },
  (error) => {
    show(page.loading, false);
    showApiError(page.error, error);
  },
);
