/**
 * The teacher page (`/teach`): create a lesson, share its link, then teach from the console —
 * own preview, the students' list and a paged grid of their cameras, mic/camera controls and
 * "end the lesson"; and keep the lesson safe: the waiting room, actions on each participant
 * (mute, stop the camera, ask to unmute, make moderator, lower the hand, remove, ban), the
 * lesson's settings, the raised hands, the chat, incident alerts, the bans and the log.
 *
 * The teacher token is kept in sessionStorage per lesson, so a reload offers to continue the
 * lesson instead of losing it; a refused resume falls back to joining with the token.
 */

import { byTestId, need, show } from "./dom.js";
import { LocalMedia } from "./devices.js";
import { initI18n, setText, t } from "./i18n.js";
import { ChatPanel } from "./chat.js";
import { confirmAction, panelDialog } from "./dialogs.js";
import { openReportDialog } from "./incident.js";
import {
  HandsPanel,
  SettingsForm,
  WaitingPanel,
  bindClassActions,
  openBans,
  openLog,
  showIncident,
} from "./moderation.js";
import { hasWebRTC } from "./media.js";
import { Playback } from "./playback.js";
import { LessonSession, exposeDebugHandle } from "./session.js";
import { session as sessionStore } from "./storage.js";
import { StudentGrid, pageSizeFrom } from "./grid.js";
import { ParticipantList } from "./participants.js";
import {
  bindMediaControls,
  bindSoundButton,
  hideError,
  renderCode,
  renderConnectionState,
  renderQuality,
  selfPreview,
  showError,
  showErrorNotice,
  showMediaProblem,
  showNotice,
} from "./ui.js";

const LAST_LESSON_KEY = "lophoc.teacher.last";
const lessonKey = (code) => `lophoc.teacher.${code}`;
const MAX_TITLE_CHARS = 200;
const PASSWORD_CHARS = { min: 8, max: 256 };

const page = {
  setupView: need("setup-view"),
  resumeCard: need("resume-card"),
  resumeTitle: need("resume-title"),
  resumeCode: need("resume-code"),
  resumeError: need("resume-error"),
  resumeButton: /** @type {HTMLButtonElement} */ (need("resume-lesson")),
  createForm: /** @type {HTMLFormElement} */ (need("create-form")),
  createTitle: /** @type {HTMLInputElement} */ (need("create-title")),
  createPassword: /** @type {HTMLInputElement} */ (need("create-password")),
  createSubmit: /** @type {HTMLButtonElement} */ (need("create-submit")),
  createError: need("create-error"),
  lessonPanel: need("lesson-panel"),
  title: need("lesson-title"),
  code: need("lesson-code"),
  link: /** @type {HTMLInputElement} */ (need("lesson-link")),
  copy: /** @type {HTMLButtonElement} */ (need("copy-link")),
  start: /** @type {HTMLButtonElement} */ (need("start-teaching")),
  startError: need("start-error"),
  teacherView: need("teacher-view"),
  connection: need("connection-state"),
  quality: need("quality"),
  notice: need("notice"),
  mediaError: need("media-error"),
  selfPreview: /** @type {HTMLVideoElement} */ (need("self-preview")),
  previewOff: need("preview-off"),
  enableSound: /** @type {HTMLButtonElement} */ (need("enable-sound")),
  mic: /** @type {HTMLButtonElement} */ (need("toggle-mic")),
  camera: /** @type {HTMLButtonElement} */ (need("toggle-camera")),
  end: /** @type {HTMLButtonElement} */ (need("end-lesson")),
  closedView: need("closed-view"),
  closedTitle: need("closed-title"),
  closedReason: need("closed-reason"),
  continueHere: /** @type {HTMLButtonElement} */ (need("continue-here")),
  lockedChip: need("locked-chip"),
  chatOffChip: need("chat-off-chip"),
  incidents: need("incidents"),
};

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

const local = new LocalMedia("teacher");
const playback = new Playback();
/** @type {LessonSession | null} */
let session = null;
/**
 * The lesson being taught, as `POST /api/lessons` returned it.
 * @type {{lesson: {id: string, code: string, title: string}, teacher_token: string,
 *         join_url: string} | null}
 */
let lesson = null;
let endingByMe = false;

exposeDebugHandle(() => session, {
  role: "teacher",
  lessonCode: () => lesson?.lesson.code ?? null,
});

const grid = new StudentGrid({
  grid: need("student-grid"),
  empty: need("grid-empty"),
  prev: /** @type {HTMLButtonElement} */ (need("grid-prev")),
  next: /** @type {HTMLButtonElement} */ (need("grid-next")),
  label: need("grid-page"),
  audio: need("peer-audio"),
  playback,
  pageSize: pageSizeFrom(location.search),
});
const current = () => session;
/** A refused request, told in the notice. */
const notify = (code, extra = {}) => showErrorNotice(page.notice, code, extra);
const participants = new ParticipantList(need("participant-list"), need("participant-count"), {
  session: current,
  notify,
});
const chat = new ChatPanel(need("chat-panel"), { session: current, confirm: confirmAction });
const waitingPanel = new WaitingPanel(need("waiting-panel"), { session: current, notify });
const handsPanel = new HandsPanel(need("hands-panel"), { session: current, notify });
const settingsDialog = panelDialog("settings-dialog", "settings.heading");
const settingsForm = new SettingsForm(settingsDialog.body, { session: current, notify });
bindClassActions(
  /** @type {HTMLButtonElement} */ (need("mute-all")),
  /** @type {HTMLButtonElement} */ (need("stop-all-video")),
  { session: current, notify },
);
let baseTitle = document.title;

// -- remembered lessons ------------------------------------------------------------------

function rememberLesson(created) {
  sessionStore.setJson(lessonKey(created.lesson.code), created);
  sessionStore.set(LAST_LESSON_KEY, created.lesson.code);
}

function forgetLesson(created) {
  if (!created) return;
  sessionStore.remove(lessonKey(created.lesson.code));
  if (sessionStore.get(LAST_LESSON_KEY) === created.lesson.code) {
    sessionStore.remove(LAST_LESSON_KEY);
  }
}

function storedLesson() {
  const code = sessionStore.get(LAST_LESSON_KEY);
  const stored = code ? sessionStore.getJson(lessonKey(code)) : null;
  const valid =
    stored &&
    typeof stored.teacher_token === "string" &&
    typeof stored.lesson?.code === "string" &&
    typeof stored.join_url === "string";
  return valid ? stored : null;
}

// -- views --------------------------------------------------------------------------------

/** @param {"setup" | "ready" | "teaching" | "closed"} name */
function showView(name) {
  show(page.setupView, name === "setup");
  show(page.lessonPanel, name === "ready" || name === "teaching");
  show(page.start, name === "ready");
  show(page.teacherView, name === "teaching");
  show(page.closedView, name === "closed");
  document.body.dataset.view = name;
}

function showLesson(created) {
  lesson = created;
  page.title.textContent = created.lesson.title;
  baseTitle = `${created.lesson.title} · lophoc`;
  renderDocumentTitle();
  delete document.querySelector("title")?.dataset.i18n;
  renderCode(page.code, created.lesson.code);
  page.link.value = created.join_url;
}

function setButtonBusy(button, busy, idleKey, busyKey) {
  button.disabled = busy;
  const label = /** @type {HTMLElement | null} */ (button.querySelector(".btn-label"));
  if (label) setText(label, busy ? busyKey : idleKey);
}

// -- creating -----------------------------------------------------------------------------

async function createLesson(event) {
  event.preventDefault();
  hideError(page.createError);
  const title = page.createTitle.value.trim();
  const password = page.createPassword.value;
  if (!title || [...title].length > MAX_TITLE_CHARS) {
    showError(page.createError, "invalid_title");
    page.createTitle.focus();
    return;
  }
  const length = [...password].length;
  if (length < PASSWORD_CHARS.min || length > PASSWORD_CHARS.max) {
    showError(page.createError, "weak_password");
    page.createPassword.focus();
    return;
  }
  setButtonBusy(page.createSubmit, true, "create.submit", "create.creating");
  try {
    const response = await fetch("/api/lessons", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ title, password }),
      credentials: "same-origin",
    });
    const body = await response.json().catch(() => null);
    if (response.status !== 201 || !body?.lesson || !body.teacher_token) {
      const { code = "internal", ...extra } = body?.error ?? {};
      showError(page.createError, code, extra);
      return;
    }
    page.createPassword.value = "";
    rememberLesson(body);
    showLesson(body);
    showView("ready");
    page.start.focus();
  } catch {
    showError(page.createError, "connection_lost");
  } finally {
    setButtonBusy(page.createSubmit, false, "create.submit", "create.creating");
  }
}

async function copyLink() {
  const label = /** @type {HTMLElement} */ (page.copy.querySelector(".btn-label"));
  let copied = false;
  try {
    await navigator.clipboard.writeText(page.link.value);
    copied = true;
  } catch {
    page.link.focus();
    page.link.select();
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
  }
  setText(label, copied ? "ready.copied" : "ready.copy_select");
  page.copy.dataset.copied = copied ? "true" : "false";
  setTimeout(() => {
    setText(label, "ready.copy");
    delete page.copy.dataset.copied;
  }, 2_500);
}

// -- teaching -----------------------------------------------------------------------------

function newSession(created) {
  session?.signaling.close();
  const current = new LessonSession({
    code: created.lesson.code,
    role: "teacher",
    local,
    fallbackJoin: () => ({ token: created.teacher_token }),
  });
  current.addEventListener("state", (event) => {
    renderConnectionState(page.connection, event.detail.state);
    if (event.detail.state === "reconnecting") showNotice(page.notice, "notice.reconnecting");
    else if (page.notice.dataset.i18n === "notice.reconnecting") showNotice(page.notice, null);
  });
  current.addEventListener("quality", (event) => renderQuality(page.quality, event.detail.level));
  current.addEventListener("session", (event) => {
    showLesson({ ...created, lesson: event.detail.data.lesson ?? created.lesson });
    showView("teaching");
    grid.reset(); // the roster's change event, right after, redraws and sends `view`
    chat.reset(event.detail.data.chat ?? []);
    renderModeration();
  });
  current.addEventListener("controls", renderControls);
  current.addEventListener("hands", renderRoster);
  current.addEventListener("knocks", (event) => {
    renderModeration();
    if (event.detail.added) waitingPanel.alert();
  });
  current.addEventListener("chat", (event) => chat.add(event.detail.message));
  current.addEventListener("message_deleted", (event) => chat.remove(event.detail.id));
  current.addEventListener("incident", (event) =>
    showIncident(page.incidents, event.detail.incident),
  );
  current.addEventListener("remote", () => grid.renderMedia(current));
  current.roster.addEventListener("change", renderRoster);
  current.addEventListener("closed", (event) => onClosed(event.detail.reason));
  current.addEventListener("muted", (event) => {
    const { kind, reason } = event.detail;
    showNotice(page.notice, `notice.${reason}_${kind}`, {}, 8_000);
  });
  current.addEventListener("error", (event) => showErrorNotice(page.notice, event.detail.code));
  session = current;
  return current;
}

function renderRoster() {
  if (!session) return;
  participants.render(session.roster.list(), session.hands);
  grid.render(session);
  handsPanel.render();
  chat.refresh();
}

function renderControls() {
  const controls = session?.controls;
  settingsForm.render();
  chat.refresh();
  show(page.lockedChip, Boolean(controls?.locked));
  show(page.chatOffChip, controls?.chat === false);
}

function renderModeration() {
  waitingPanel.render();
  renderControls();
  renderDocumentTitle();
}

/** "(2) Maths 7A · lophoc" while two people knock: visible even from another tab. */
function renderDocumentTitle() {
  const knocks = session?.knocks.size ?? 0;
  document.title = knocks > 0 ? `(${knocks}) ${baseTitle}` : baseTitle;
}

/**
 * Camera and microphone first (the click is the permission prompt's gesture), then join.
 * @param {typeof lesson} created
 * @param {{resume: boolean, errorBox: HTMLElement, button: HTMLButtonElement, idleKey: string}} how
 */
async function startTeaching(created, how) {
  if (!created) return;
  hideError(how.errorBox);
  setButtonBusy(how.button, true, how.idleKey, "ready.starting");
  playback.prime(page.selfPreview);
  const problem = await local.acquire({ audio: true, video: true });
  showMediaProblem(page.mediaError, problem);
  const current = newSession(created);
  showLesson(created);
  if (how.resume && current.resumeStored()) {
    showView("teaching");
    setButtonBusy(how.button, false, how.idleKey, "ready.starting");
    return;
  }
  try {
    await current.join({ token: created.teacher_token });
  } catch (error) {
    if (error.code === "bad_token" || error.code === "lesson_ended") forgetLesson(created);
    showError(how.errorBox, error.code ?? "internal", error.extra);
  } finally {
    setButtonBusy(how.button, false, how.idleKey, "ready.starting");
  }
}

async function endLesson() {
  if (!session || !window.confirm(t("teacher.end_confirm"))) return;
  page.end.disabled = true;
  endingByMe = true;
  try {
    await session.endLesson();
  } catch (error) {
    if (session.state === "closed") return; // the lesson ended before the answer arrived
    endingByMe = false;
    page.end.disabled = false;
    showErrorNotice(page.notice, error.code ?? "internal");
  }
}

function onClosed(reason) {
  playback.clear();
  grid.clear();
  for (const dialog of document.querySelectorAll("dialog[open]")) {
    /** @type {HTMLDialogElement} */ (dialog).close();
  }
  page.end.disabled = false;
  let title = "closed.error_title";
  let text = "error.policy";
  if (reason === "ended") {
    forgetLesson(lesson);
    title = "closed.ended_title";
    text = endingByMe ? "closed.ended_by_you" : "notice.lesson_ended";
  } else if (reason === "replaced") {
    title = "closed.replaced_title";
    text = "error.replaced_teacher";
  } else if (reason === "bad_token") {
    forgetLesson(lesson);
    text = "error.bad_token";
  }
  local.stop();
  page.closedView.dataset.reason = reason;
  setText(page.closedTitle, title);
  setText(page.closedReason, text);
  show(page.continueHere, reason === "replaced" || reason === "policy");
  showView("closed");
}

const preview = selfPreview(page.selfPreview, local);
function renderSelfPreview() {
  show(page.previewOff, !preview());
}

// -- wiring -------------------------------------------------------------------------------

page.createForm.addEventListener("submit", createLesson);
page.copy.addEventListener("click", copyLink);
page.start.addEventListener("click", () =>
  startTeaching(lesson, {
    resume: false,
    errorBox: page.startError,
    button: page.start,
    idleKey: "ready.start",
  }),
);
page.resumeButton.addEventListener("click", () => {
  const stored = storedLesson();
  startTeaching(stored, {
    resume: true,
    errorBox: page.resumeError,
    button: page.resumeButton,
    idleKey: "resume.continue",
  });
});
page.end.addEventListener("click", endLesson);
need("open-settings").addEventListener("click", () => {
  settingsForm.render();
  settingsDialog.dialog.showModal();
});
need("open-bans").addEventListener("click", () => openBans({ session: current, notify }));
need("open-log").addEventListener("click", () => openLog({ session: current, notify }));
need("report-problem").addEventListener("click", () =>
  openReportDialog(current, (key) => showNotice(page.notice, key, {}, 8_000)),
);
page.continueHere.addEventListener("click", () => location.reload());
need("media-error-close").addEventListener("click", () => showMediaProblem(page.mediaError, null));
local.addEventListener("change", renderSelfPreview);
bindMediaControls({
  session: () => session,
  local,
  mic: page.mic,
  camera: page.camera,
  onProblem: (problem) => showMediaProblem(page.mediaError, problem),
});
bindSoundButton(page.enableSound, playback);

// -- start --------------------------------------------------------------------------------

renderConnectionState(page.connection, "connecting");
renderQuality(page.quality, "unknown");
renderSelfPreview();
showView("setup");

if (!hasWebRTC()) {
  showError(page.createError, "no_webrtc");
}
const stored = storedLesson();
if (stored) {
  page.resumeTitle.textContent = stored.lesson.title;
  renderCode(page.resumeCode, stored.lesson.code);
  show(page.resumeCard);
  page.resumeButton.focus();
} else {
  page.createTitle.focus();
}
