/**
 * The administration page (`/admin`), for the school's administrators: the teachers (create,
 * reset a password, disable and enable an account) and the classes (create, add a teacher,
 * open the student list). Everything goes through the records API (`web/api.py`); the server
 * decides, and every refusal is shown with its message in the page's language.
 *
 * A teacher who opens the page is told it is not hers and sent on to `/lessons`; someone not
 * logged in goes to `/login`, which brings her back here.
 */

import { byTestId, create, need, show } from "./dom.js";
import { initI18n, onLanguageChange, setAriaLabel, setText, t } from "./i18n.js";
import {
  ApiError,
  api,
  bindAccountBar,
  formatDate,
  formatNumber,
  hideApiError,
  requireUser,
  showApiError,
} from "./account.js";
import {
  accountState,
  addableTeachers,
  normaliseUsername,
  passwordProblem,
  sortPeople,
} from "./admin-rules.js";

/** How long a teacher reads why she is sent on before `/lessons` opens. */
const DENIED_REDIRECT_MS = 4_000;
const MAX_NAME_CHARS = 64;

const page = {
  denied: need("admin-denied"),
  error: need("page-error"),
  loading: need("admin-loading"),
  view: need("admin-view"),
  teachersCount: need("teachers-count"),
  teachersNotice: need("teachers-notice"),
  teachersError: need("teachers-error"),
  teachersTable: need("teachers-table"),
  teachersBody: need("teachers-body"),
  teachersEmpty: need("teachers-empty"),
  teacherForm: /** @type {HTMLFormElement} */ (need("teacher-form")),
  teacherError: need("teacher-form-error"),
  teacherName: /** @type {HTMLInputElement} */ (need("teacher-form-name")),
  teacherUsername: /** @type {HTMLInputElement} */ (need("teacher-form-username")),
  teacherPassword: /** @type {HTMLInputElement} */ (need("teacher-form-password")),
  teacherShow: /** @type {HTMLInputElement} */ (need("teacher-form-show-password")),
  teacherSubmit: /** @type {HTMLButtonElement} */ (need("teacher-form-submit")),
  classesCount: need("classes-count"),
  classesNotice: need("classes-notice"),
  classesError: need("classes-error"),
  classesTable: need("classes-table"),
  classesBody: need("classes-body"),
  classesEmpty: need("classes-empty"),
  classForm: /** @type {HTMLFormElement} */ (need("class-form")),
  classError: need("class-form-error"),
  className: /** @type {HTMLInputElement} */ (need("class-form-name")),
  classTeachers: need("class-form-teachers"),
  classNoTeachers: need("class-form-no-teachers"),
  classSubmit: /** @type {HTMLButtonElement} */ (need("class-form-submit")),
  passwordDialog: /** @type {HTMLDialogElement} */ (need("password-dialog")),
  passwordForm: /** @type {HTMLFormElement} */ (need("password-form")),
  passwordFor: need("password-for"),
  passwordError: need("password-error"),
  passwordNew: /** @type {HTMLInputElement} */ (need("password-new")),
  passwordAgain: /** @type {HTMLInputElement} */ (need("password-again")),
  passwordSubmit: /** @type {HTMLButtonElement} */ (need("password-submit")),
  passwordCancel: /** @type {HTMLButtonElement} */ (need("password-cancel")),
  accountDialog: /** @type {HTMLDialogElement} */ (need("account-dialog")),
  accountForm: /** @type {HTMLFormElement} */ (need("account-form")),
  accountHeading: need("account-heading"),
  accountConsequences: need("account-consequences"),
  accountError: need("account-error"),
  accountConfirm: /** @type {HTMLButtonElement} */ (need("account-confirm")),
  accountConfirmLabel: need("account-confirm-label"),
  accountCancel: /** @type {HTMLButtonElement} */ (need("account-cancel")),
  classTeacherDialog: /** @type {HTMLDialogElement} */ (need("class-teacher-dialog")),
  classTeacherForm: /** @type {HTMLFormElement} */ (need("class-teacher-form")),
  classTeacherHeading: need("class-teacher-heading"),
  classTeacherCurrent: need("class-teacher-current"),
  classTeacherError: need("class-teacher-error"),
  classTeacherField: need("class-teacher-field"),
  classTeacherSelect: /** @type {HTMLSelectElement} */ (need("class-teacher-select")),
  classTeacherNone: need("class-teacher-none"),
  classTeacherSubmit: /** @type {HTMLButtonElement} */ (need("class-teacher-submit")),
  classTeacherCancel: /** @type {HTMLButtonElement} */ (need("class-teacher-cancel")),
};

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

/**
 * @typedef {{id: string, username: string, full_name: string, role: string,
 *            created_at: string, disabled_at: string | null}} Account
 * @typedef {{id: string, name: string, teachers: Account[], student_count: number}} SchoolClass
 */

/** @type {Account[]} */
let teachers = [];
/** @type {SchoolClass[]} */
let classes = [];
/** The teacher a dialog is about. @type {Account | null} */
let dialogTeacher = null;
/** "disable" or "enable", for the account dialog. */
let accountAction = "disable";
/** The class the add-a-teacher dialog is about. @type {SchoolClass | null} */
let dialogClass = null;

/**
 * Show an API error, with this page's own words for `not_found` (a person, not a lesson).
 * @param {HTMLElement} element
 * @param {unknown} error
 * @param {string} [notFoundKey]
 */
function showError(element, error, notFoundKey) {
  if (notFoundKey && error instanceof ApiError && error.code === "not_found") {
    element.dataset.code = error.code;
    setText(element, notFoundKey);
    show(element);
    return;
  }
  showApiError(element, error);
}

/**
 * A section's "done" line, brought on screen: the forms are under the lists they add to, and
 * a reset password changes nothing else one could see.
 * @param {HTMLElement} notice
 * @param {string} key
 * @param {Record<string, string | number>} params
 */
function notify(notice, key, params) {
  setText(notice, key, params);
  show(notice);
  notice.scrollIntoView({ block: "nearest" });
}

function clearNotices() {
  for (const notice of [page.teachersNotice, page.classesNotice]) show(notice, false);
}

// -- loading --------------------------------------------------------------------------------

async function load() {
  hideApiError(page.error);
  show(page.loading);
  try {
    const [teacherData, classData] = await Promise.all([
      api("/api/teachers"),
      api("/api/classes"),
    ]);
    teachers = sortPeople(teacherData.teachers);
    classes = classData.classes;
    show(page.view);
    render();
  } catch (error) {
    showApiError(page.error, error);
  } finally {
    show(page.loading, false);
  }
}

function render() {
  renderTeachers();
  renderClasses();
  renderClassChoices();
}

// -- teachers -------------------------------------------------------------------------------

/**
 * A table cell that says its column's name on a phone, where rows are cards.
 * @param {string} labelKey
 * @param {string} className
 * @param {Node[]} children
 */
function cell(labelKey, className, children) {
  return create("td", { className, attrs: { "data-label": t(labelKey) } }, children);
}

function stateBadge(user, testId) {
  const state = accountState(user);
  const badge = create("span", { className: "state-badge", testId, attrs: { "data-state": state } });
  setText(badge, `account_state.${state}`);
  return badge;
}

function renderTeachers() {
  page.teachersBody.replaceChildren();
  const active = teachers.filter((teacher) => accountState(teacher) === "active").length;
  setText(page.teachersCount, "admin.teachers_count", {
    count: teachers.length,
    active,
    disabled: teachers.length - active,
  });
  show(page.teachersTable, teachers.length > 0);
  show(page.teachersEmpty, teachers.length === 0);
  for (const teacher of teachers) page.teachersBody.append(teacherRow(teacher));
}

function teacherRow(teacher) {
  const state = accountState(teacher);
  const name = create("strong", { className: "admin-name", testId: "teacher-name", text: teacher.full_name });
  const username = create("span", { className: "admin-username", testId: "teacher-username", text: teacher.username });
  const created = create("span", { testId: "teacher-created", text: formatDate(teacher.created_at) });

  const reset = create("button", {
    className: "btn btn-ghost btn-small",
    testId: "teacher-reset",
    attrs: { type: "button" },
  });
  setText(reset, "admin.reset");
  setAriaLabel(reset, "admin.reset_for", { name: teacher.full_name });
  reset.addEventListener("click", () => openPasswordDialog(teacher));

  const toggle = create("button", {
    className: state === "active" ? "btn btn-ghost btn-small btn-danger-text" : "btn btn-secondary btn-small",
    testId: state === "active" ? "teacher-disable" : "teacher-enable",
    attrs: { type: "button" },
  });
  const action = state === "active" ? "disable" : "enable";
  setText(toggle, `admin.${action}`);
  setAriaLabel(toggle, `admin.${action}_for`, { name: teacher.full_name });
  toggle.addEventListener("click", () => openAccountDialog(teacher, action));

  return create(
    "tr",
    {
      className: "admin-row",
      testId: "teacher-row",
      attrs: { "data-username": teacher.username, "data-state": state },
    },
    [
      cell("admin.col_name", "admin-name-cell", [name]),
      cell("admin.col_username", "", [username]),
      cell("admin.col_status", "", [stateBadge(teacher, "teacher-status")]),
      cell("admin.col_created", "", [created]),
      cell("admin.col_actions", "admin-actions-cell", [
        create("div", { className: "admin-actions" }, [reset, toggle]),
      ]),
    ],
  );
}

/**
 * Show a form's error and mark the field it is about, the cursor in it; the error box is
 * brought on screen (it is above the fields: on a phone, focusing a field alone would leave
 * it out of sight).
 * @param {HTMLElement} box
 * @param {unknown} error
 * @param {HTMLInputElement | null | undefined} field
 * @param {string} [notFoundKey]
 */
function formError(box, error, field, notFoundKey) {
  showError(box, error, notFoundKey);
  if (field) {
    field.setAttribute("aria-invalid", "true");
    field.focus({ preventScroll: true });
  }
  box.scrollIntoView({ block: "nearest" });
}

function clearBlame(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

/** Which field a server refusal of the teacher form is about. */
const TEACHER_FIELD_OF = {
  invalid_name: "teacherName",
  invalid_username: "teacherUsername",
  username_taken: "teacherUsername",
  weak_password: "teacherPassword",
};

async function submitTeacher(event) {
  event.preventDefault();
  hideApiError(page.teacherError);
  clearBlame(page.teacherForm);
  clearNotices();
  const fullName = page.teacherName.value.trim().replace(/\s+/g, " ");
  const username = normaliseUsername(page.teacherUsername.value);
  const password = page.teacherPassword.value;
  const problem =
    (!fullName || [...fullName].length > MAX_NAME_CHARS ? "invalid_name" : null) ??
    (username === null ? "invalid_username" : null) ??
    passwordProblem(password);
  if (problem) {
    formError(page.teacherError, new ApiError(400, problem), page[TEACHER_FIELD_OF[problem]]);
    return;
  }
  page.teacherSubmit.disabled = true;
  try {
    const { teacher } = await api("/api/teachers", {
      method: "POST",
      body: { username, full_name: fullName, password },
    });
    page.teacherForm.reset();
    page.teacherPassword.type = "password";
    teachers = sortPeople([...teachers, teacher]);
    render();
    notify(page.teachersNotice, "admin.teacher_created", {
      name: teacher.full_name,
      username: teacher.username,
    });
  } catch (error) {
    const field = error instanceof ApiError ? TEACHER_FIELD_OF[error.code] : undefined;
    formError(page.teacherError, error, field ? page[field] : null);
  } finally {
    page.teacherSubmit.disabled = false;
  }
}

// -- resetting a password -------------------------------------------------------------------

function openPasswordDialog(teacher) {
  dialogTeacher = teacher;
  clearNotices();
  hideApiError(page.passwordError);
  clearBlame(page.passwordForm);
  page.passwordForm.reset();
  setText(page.passwordFor, "admin.reset_for_person", {
    name: teacher.full_name,
    username: teacher.username,
  });
  page.passwordDialog.showModal();
  page.passwordNew.focus();
}

async function submitPassword(event) {
  event.preventDefault();
  if (!dialogTeacher) return;
  const teacher = dialogTeacher;
  hideApiError(page.passwordError);
  clearBlame(page.passwordForm);
  const problem = passwordProblem(page.passwordNew.value, page.passwordAgain.value);
  if (problem) {
    const field = problem === "weak_password" ? page.passwordNew : page.passwordAgain;
    formError(page.passwordError, new ApiError(400, problem), field);
    return;
  }
  page.passwordSubmit.disabled = true;
  try {
    await api(`/api/users/${encodeURIComponent(teacher.username)}/password`, {
      method: "POST",
      body: { password: page.passwordNew.value },
    });
    page.passwordForm.reset();
    page.passwordDialog.close();
    notify(page.teachersNotice, "admin.password_reset", { name: teacher.full_name });
  } catch (error) {
    const weak = error instanceof ApiError && error.code === "weak_password";
    formError(page.passwordError, error, weak ? page.passwordNew : null, "admin.user_not_found");
  } finally {
    page.passwordSubmit.disabled = false;
  }
}

// -- disabling and enabling -----------------------------------------------------------------

const CONSEQUENCES = {
  disable: ["admin.disable_no_login", "admin.disable_sessions", "admin.disable_kept", "admin.disable_undo"],
  enable: ["admin.enable_login", "admin.enable_kept"],
};

function openAccountDialog(teacher, action) {
  dialogTeacher = teacher;
  accountAction = action;
  clearNotices();
  hideApiError(page.accountError);
  setText(page.accountHeading, `admin.${action}_heading`, { name: teacher.full_name });
  page.accountConsequences.replaceChildren(
    ...CONSEQUENCES[action].map((key) => {
      const item = create("li", { testId: "account-consequence" });
      setText(item, key);
      return item;
    }),
  );
  setText(page.accountConfirmLabel, `admin.${action}_confirm`);
  page.accountConfirm.className = action === "disable" ? "btn btn-danger" : "btn btn-primary";
  page.accountDialog.dataset.action = action;
  page.accountDialog.showModal();
  page.accountCancel.focus();
}

async function submitAccount(event) {
  event.preventDefault();
  if (!dialogTeacher) return;
  const teacher = dialogTeacher;
  const action = accountAction;
  hideApiError(page.accountError);
  page.accountConfirm.disabled = true;
  try {
    const { user } = await api(`/api/users/${encodeURIComponent(teacher.username)}/${action}`, {
      method: "POST",
    });
    teachers = sortPeople(teachers.map((known) => (known.username === user.username ? user : known)));
    for (const schoolClass of classes) {
      schoolClass.teachers = schoolClass.teachers.map((known) =>
        known.username === user.username ? user : known,
      );
    }
    page.accountDialog.close();
    render();
    notify(page.teachersNotice, `admin.${action}d`, { name: user.full_name });
  } catch (error) {
    formError(page.accountError, error, null, "admin.user_not_found");
  } finally {
    page.accountConfirm.disabled = false;
  }
}

// -- classes --------------------------------------------------------------------------------

function renderClasses() {
  page.classesBody.replaceChildren();
  setText(page.classesCount, "admin.classes_count", { count: classes.length });
  show(page.classesTable, classes.length > 0);
  show(page.classesEmpty, classes.length === 0);
  for (const schoolClass of classes) page.classesBody.append(classRow(schoolClass));
}

function classRow(schoolClass) {
  const name = create("strong", { className: "admin-name", testId: "class-name", text: schoolClass.name });
  const who = create("ul", { className: "admin-class-teachers", testId: "class-teachers" });
  for (const teacher of sortPeople(schoolClass.teachers)) {
    const item = create(
      "li",
      { testId: "class-teacher", attrs: { "data-username": teacher.username } },
      [create("span", { text: teacher.full_name })],
    );
    if (accountState(teacher) === "disabled") item.append(stateBadge(teacher, "class-teacher-status"));
    who.append(item);
  }
  if (schoolClass.teachers.length === 0) {
    const none = create("li", { className: "list-empty", testId: "class-no-teacher" });
    setText(none, "admin.class_without_teacher");
    who.append(none);
  }
  const count = create("span", {
    className: "admin-count-cell",
    testId: "class-students",
    text: formatNumber(schoolClass.student_count ?? 0),
  });

  const roster = create("a", {
    className: "btn btn-ghost btn-small",
    testId: "class-roster-link",
    attrs: { href: `/classes/${encodeURIComponent(schoolClass.id)}/roster` },
  });
  setText(roster, "admin.roster");
  setAriaLabel(roster, "admin.roster_for", { name: schoolClass.name });
  const add = create("button", {
    className: "btn btn-secondary btn-small",
    testId: "class-add-teacher",
    attrs: { type: "button" },
  });
  setText(add, "admin.add_teacher");
  setAriaLabel(add, "admin.add_teacher_for", { name: schoolClass.name });
  add.addEventListener("click", () => openClassTeacherDialog(schoolClass));

  return create(
    "tr",
    { className: "admin-row", testId: "class-row", attrs: { "data-class-id": schoolClass.id, "data-name": schoolClass.name } },
    [
      cell("admin.col_class", "admin-name-cell", [name]),
      cell("admin.col_teachers", "", [who]),
      cell("admin.col_students", "", [count]),
      cell("admin.col_actions", "admin-actions-cell", [
        create("div", { className: "admin-actions" }, [roster, add]),
      ]),
    ],
  );
}

/** The new-class form's teacher check boxes: active teachers, ticks kept across redraws. */
function renderClassChoices() {
  const ticked = new Set(
    [...page.classTeachers.querySelectorAll("input:checked")].map(
      (input) => /** @type {HTMLInputElement} */ (input).value,
    ),
  );
  const active = teachers.filter((teacher) => accountState(teacher) === "active");
  page.classTeachers.replaceChildren();
  for (const teacher of active) {
    const box = /** @type {HTMLInputElement} */ (
      create("input", { testId: "class-form-teacher", attrs: { type: "checkbox", value: teacher.username } })
    );
    box.checked = ticked.has(teacher.username);
    page.classTeachers.append(
      create("label", { className: "check" }, [
        box,
        create("span", {}, [
          create("span", { text: teacher.full_name }),
          create("span", { className: "admin-username", text: ` · ${teacher.username}` }),
        ]),
      ]),
    );
  }
  show(page.classNoTeachers, active.length === 0);
}

async function submitClass(event) {
  event.preventDefault();
  hideApiError(page.classError);
  clearBlame(page.classForm);
  clearNotices();
  const name = page.className.value.trim().replace(/\s+/g, " ");
  if (!name || [...name].length > MAX_NAME_CHARS) {
    formError(page.classError, new ApiError(400, "invalid_class_name"), page.className);
    return;
  }
  const chosen = [...page.classTeachers.querySelectorAll("input:checked")].map(
    (input) => /** @type {HTMLInputElement} */ (input).value,
  );
  page.classSubmit.disabled = true;
  try {
    const created = await api("/api/classes", {
      method: "POST",
      body: { name, teachers: chosen },
    });
    page.classForm.reset();
    classes = [...classes, created.class].sort((a, b) =>
      a.name.localeCompare(b.name, "vi", { numeric: true }),
    );
    render();
    notify(page.classesNotice, "admin.class_created", { name: created.class.name });
  } catch (error) {
    const named =
      error instanceof ApiError && ["invalid_class_name", "class_exists"].includes(error.code);
    formError(page.classError, error, named ? page.className : null, "admin.teacher_not_found");
  } finally {
    page.classSubmit.disabled = false;
  }
}

function openClassTeacherDialog(schoolClass) {
  dialogClass = schoolClass;
  clearNotices();
  hideApiError(page.classTeacherError);
  setText(page.classTeacherHeading, "admin.add_teacher_heading", { name: schoolClass.name });
  const current = sortPeople(schoolClass.teachers).map((teacher) => teacher.full_name);
  if (current.length) setText(page.classTeacherCurrent, "admin.add_teacher_current", { names: current.join(", ") });
  else setText(page.classTeacherCurrent, "admin.class_without_teacher");
  const choices = addableTeachers(schoolClass, teachers);
  page.classTeacherSelect.replaceChildren(
    ...choices.map((teacher) =>
      create("option", {
        text: `${teacher.full_name} (${teacher.username})`,
        attrs: { value: teacher.username },
      }),
    ),
  );
  show(page.classTeacherField, choices.length > 0);
  show(page.classTeacherNone, choices.length === 0);
  page.classTeacherSubmit.disabled = choices.length === 0;
  page.classTeacherDialog.showModal();
  (choices.length ? page.classTeacherSelect : page.classTeacherCancel).focus();
}

async function submitClassTeacher(event) {
  event.preventDefault();
  if (!dialogClass || !page.classTeacherSelect.value) return;
  const schoolClass = dialogClass;
  const username = page.classTeacherSelect.value;
  hideApiError(page.classTeacherError);
  page.classTeacherSubmit.disabled = true;
  try {
    const updated = await api(`/api/classes/${encodeURIComponent(schoolClass.id)}/teachers`, {
      method: "POST",
      body: { username },
    });
    classes = classes.map((known) => (known.id === updated.class.id ? updated.class : known));
    page.classTeacherDialog.close();
    render();
    const teacher = teachers.find((known) => known.username === username);
    notify(page.classesNotice, "admin.teacher_added", {
      name: teacher?.full_name ?? username,
      class: updated.class.name,
    });
  } catch (error) {
    formError(page.classTeacherError, error, null, "admin.teacher_not_found");
  } finally {
    page.classTeacherSubmit.disabled = false;
  }
}

// -- wiring ---------------------------------------------------------------------------------

page.teacherForm.addEventListener("submit", submitTeacher);
page.teacherShow.addEventListener("change", () => {
  page.teacherPassword.type = page.teacherShow.checked ? "text" : "password";
});
page.classForm.addEventListener("submit", submitClass);
page.passwordForm.addEventListener("submit", submitPassword);
page.passwordCancel.addEventListener("click", () => page.passwordDialog.close());
page.passwordDialog.addEventListener("close", () => page.passwordForm.reset());
page.accountForm.addEventListener("submit", submitAccount);
page.accountCancel.addEventListener("click", () => page.accountDialog.close());
page.classTeacherForm.addEventListener("submit", submitClassTeacher);
page.classTeacherCancel.addEventListener("click", () => page.classTeacherDialog.close());
onLanguageChange(() => {
  if (!page.view.hidden) render();
});

requireUser().then(
  (me) => {
    bindAccountBar(me);
    document.body.dataset.role = me.role;
    if (me.role !== "admin") {
      show(page.loading, false);
      show(page.denied);
      setTimeout(() => location.replace("/lessons"), DENIED_REDIRECT_MS);
      return undefined;
    }
    return load();
  },
  (error) => {
    show(page.loading, false);
    showApiError(page.error, error);
  },
);
