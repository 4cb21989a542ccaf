/**
 * The student page (`/l/<code>`): the join form, then the lesson as a phone shows it — the
 * teacher's video large, one's own preview small in a corner, a control bar at the bottom.
 */

import { byTestId, create, need, show } from "./dom.js";
import { LocalMedia } from "./devices.js";
import { initI18n, setText } from "./i18n.js";
import { hasWebRTC } from "./media.js";
import { Playback } from "./playback.js";
import { trackState } from "./roster.js";
import { LessonSession, exposeDebugHandle } from "./session.js";
import { local as localStore, session as sessionStore } from "./storage.js";
import {
  bindMediaControls,
  bindSoundButton,
  hideError,
  renderCode,
  renderConnectionState,
  renderQuality,
  showError,
  showErrorNotice,
  showMediaProblem,
  showNotice,
} from "./ui.js";

const NAME_KEY = "lophoc.name";
const MAX_NAME_CHARS = 64;

const code = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() ?? "");

const page = {
  joinView: need("join-view"),
  form: /** @type {HTMLFormElement} */ (need("join-form")),
  name: /** @type {HTMLInputElement} */ (need("join-name")),
  password: /** @type {HTMLInputElement} */ (need("join-password")),
  submit: /** @type {HTMLButtonElement} */ (need("join-submit")),
  joinError: need("join-error"),
  studentView: need("student-view"),
  title: need("lesson-title"),
  teacherVideo: /** @type {HTMLVideoElement} */ (need("teacher-video")),
  teacherName: need("teacher-name"),
  placeholder: need("stage-placeholder"),
  selfBox: need("self-preview-box"),
  selfPreview: /** @type {HTMLVideoElement} */ (need("self-preview")),
  connection: need("connection-state"),
  quality: need("quality"),
  notice: need("notice"),
  enableSound: /** @type {HTMLButtonElement} */ (need("enable-sound")),
  mediaError: need("media-error"),
  peerAudio: need("peer-audio"),
  mic: /** @type {HTMLButtonElement} */ (need("toggle-mic")),
  camera: /** @type {HTMLButtonElement} */ (need("toggle-camera")),
  leave: /** @type {HTMLButtonElement} */ (need("leave")),
  closedView: need("closed-view"),
  closedTitle: need("closed-title"),
  closedReason: need("closed-reason"),
  rejoin: /** @type {HTMLButtonElement} */ (need("rejoin")),
};

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));
renderCode(need("join-code"), code);

/**
 * A personal join link carries its token in the fragment (`#k=…`), which the browser never
 * sends to the server, so it stays out of every log. It is kept for this tab (a rejoin needs
 * it) and wiped from the address bar, so a screenshot of the page does not leak it.
 */
const LINK_KEY = `lophoc.link.${code}`;
const linkToken = (() => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("k");
  if (fromHash) {
    sessionStore.set(LINK_KEY, fromHash);
    history.replaceState(null, "", location.pathname + location.search);
    return fromHash;
  }
  return sessionStore.get(LINK_KEY);
})();

const local = new LocalMedia("student");
const playback = new Playback();
const session = new LessonSession({ code, role: "student", local });
let mediaAsked = false;

exposeDebugHandle(() => session, { role: "student", lessonCode: () => code });

// -- views ------------------------------------------------------------------------------

/** @param {"join" | "student" | "closed"} name */
function showView(name) {
  show(page.joinView, name === "join");
  // The closing screen covers the lesson rather than replacing it, so the last notice stays.
  show(page.studentView, name === "student" || (name === "closed" && !page.studentView.hidden));
  show(page.closedView, name === "closed");
  document.body.dataset.view = name;
}

function setBusy(busy) {
  page.submit.disabled = busy;
  page.form.setAttribute("aria-busy", busy ? "true" : "false");
  const label = /** @type {HTMLElement} */ (page.submit.querySelector(".btn-label"));
  setText(label, busy ? "join.joining" : "join.submit");
}

// -- joining ------------------------------------------------------------------------------

/** A display name as the server will store it: whitespace runs collapsed. */
function cleanName(raw) {
  return raw.trim().replace(/\s+/g, " ");
}

async function join(event) {
  event.preventDefault();
  playback.prime(page.teacherVideo); // inside the tap: lets iOS play the teacher's sound later
  hideError(page.joinError);
  if (linkToken) {
    setBusy(true);
    try {
      await session.join({ code, link: linkToken }); // the roster names the student
    } catch (error) {
      showError(page.joinError, error.code ?? "internal", error.extra);
    } finally {
      setBusy(false);
    }
    return;
  }
  const name = cleanName(page.name.value);
  if (!name || [...name].length > MAX_NAME_CHARS) {
    showError(page.joinError, "invalid_name");
    page.name.focus();
    return;
  }
  localStore.set(NAME_KEY, name);
  setBusy(true);
  try {
    await session.join({ code, password: page.password.value, name });
    page.password.value = "";
  } catch (error) {
    showError(page.joinError, error.code ?? "internal", error.extra);
    (error.code === "invalid_name" ? page.name : page.password).focus();
  } finally {
    setBusy(false);
  }
}

async function acquireMedia() {
  mediaAsked = true;
  const problem = await local.acquire({ audio: true, video: true });
  showMediaProblem(page.mediaError, problem);
  await session.publishLocal();
}

// -- drawing the lesson -------------------------------------------------------------------

function renderStage() {
  const teacher = session.roster.teacher();
  const received = teacher ? session.remote(teacher.id) : undefined;
  playback.attach(page.teacherVideo, received?.stream ?? null);
  page.teacherName.textContent = teacher?.name ?? "";
  let waiting = null;
  if (!teacher) waiting = "student.waiting_teacher";
  else if (teacher.state === "reconnecting") waiting = "student.teacher_reconnecting";
  else if (trackState(teacher, "video") !== "on") waiting = "student.teacher_camera_off";
  else if (!received?.video) waiting = "student.connecting_video";
  page.studentView.classList.toggle("teacher-reconnecting", teacher?.state === "reconnecting");
  show(page.placeholder, Boolean(waiting));
  const text = /** @type {HTMLElement} */ (page.placeholder.querySelector(".placeholder-text"));
  if (waiting) setText(text, waiting);
}

/** Other students are heard (never seen, unless the lesson allows it) through audio elements. */
function renderPeers() {
  const teacher = session.roster.teacher();
  const wanted = new Map();
  for (const person of session.roster.list()) {
    const received = session.remote(person.id);
    if (person.id !== teacher?.id && received?.audioOnly) wanted.set(person.id, received.audioOnly);
  }
  for (const element of [...page.peerAudio.querySelectorAll("audio")]) {
    const id = element.dataset.participant ?? "";
    if (!wanted.has(id)) {
      playback.attach(element, null);
      element.remove();
    }
  }
  for (const [id, stream] of wanted) {
    let element = /** @type {HTMLAudioElement | null} */ (
      page.peerAudio.querySelector(`audio[data-participant="${CSS.escape(id)}"]`)
    );
    if (!element) {
      element = /** @type {HTMLAudioElement} */ (create("audio", { attrs: { autoplay: "" } }));
      element.dataset.participant = id;
      page.peerAudio.append(element);
    }
    playback.attach(element, stream);
  }
}

let previewTrack = null;
function renderSelfPreview() {
  const video = local.track("video");
  if (video !== previewTrack) {
    previewTrack = video;
    page.selfPreview.srcObject = null; // Safari draws a track added later only after a reset
    if (video) page.selfPreview.srcObject = local.stream;
  }
  show(page.selfBox, local.stateOf("video") === "on");
}

function renderAll() {
  renderStage();
  renderPeers();
}

// -- the end ------------------------------------------------------------------------------

const CLOSED = {
  left: { title: "closed.left_title", reason: "closed.left", rejoin: true },
  ended: { title: "closed.ended_title", reason: "notice.lesson_ended", rejoin: false },
  replaced: { title: "closed.replaced_title", reason: "error.replaced", rejoin: true },
  removed: { title: "closed.removed_title", reason: "closed.removed", rejoin: false },
  policy: { title: "closed.error_title", reason: "error.policy", rejoin: true },
};

function onClosed({ reason }) {
  playback.clear();
  if (reason === "resume_failed" || reason === "bad_token") {
    // The server no longer knows this participant: join again, name already filled in.
    showView("join");
    showError(page.joinError, "resume_failed");
    page.password.focus();
    return;
  }
  local.stop();
  const screen = CLOSED[reason] ?? CLOSED.policy;
  if (reason === "ended") showNotice(page.notice, "notice.lesson_ended");
  page.closedView.dataset.reason = reason;
  setText(page.closedTitle, screen.title);
  setText(page.closedReason, screen.reason);
  show(page.rejoin, screen.rejoin);
  showView("closed");
}

// -- wiring -------------------------------------------------------------------------------

session.addEventListener("state", (event) => {
  renderConnectionState(page.connection, event.detail.state);
  if (event.detail.state === "reconnecting") showNotice(page.notice, "notice.reconnecting");
  if (event.detail.state === "connected" && page.notice.dataset.i18n === "notice.reconnecting") {
    showNotice(page.notice, null);
  }
});
session.addEventListener("quality", (event) => renderQuality(page.quality, event.detail.level));
session.addEventListener("session", (event) => {
  const title = event.detail.data.lesson?.title ?? "";
  page.title.textContent = title;
  document.title = title ? `${title} · lophoc` : document.title;
  delete document.querySelector("title")?.dataset.i18n;
  hideError(page.joinError);
  showView("student");
  if (!mediaAsked) acquireMedia();
});
session.addEventListener("closed", (event) => onClosed(event.detail));
session.addEventListener("unmute_requested", () => {
  showNotice(page.notice, "notice.unmute_requested", {}, 10_000);
});
session.addEventListener("muted", (event) => {
  const { kind, reason } = event.detail;
  showNotice(page.notice, `notice.${reason}_${kind}`, {}, 8_000);
});
session.addEventListener("error", (event) => showErrorNotice(page.notice, event.detail.code));
session.addEventListener("remote", renderAll);
session.roster.addEventListener("change", renderAll);

local.addEventListener("change", renderSelfPreview);
bindMediaControls({
  session: () => session,
  local,
  mic: page.mic,
  camera: page.camera,
  onProblem: (problem) => showMediaProblem(page.mediaError, problem),
});
bindSoundButton(page.enableSound, playback);
need("media-error-close").addEventListener("click", () => showMediaProblem(page.mediaError, null));

page.form.addEventListener("submit", join);
page.leave.addEventListener("click", () => {
  page.leave.disabled = true;
  session.leave().finally(() => (page.leave.disabled = false));
});
page.rejoin.addEventListener("click", () => {
  hideError(page.joinError);
  showNotice(page.notice, null);
  show(page.studentView, false);
  showView("join");
  mediaAsked = false;
  (page.name.value ? page.password : page.name).focus();
});

// -- start --------------------------------------------------------------------------------

page.name.value = localStore.get(NAME_KEY) ?? "";
if (linkToken) {
  // Nothing to type: the link says who this is.
  for (const input of [page.name, page.password]) {
    const field = /** @type {HTMLElement} */ (input.closest(".field"));
    field.hidden = true;
  }
  show(need("join-link-hint"), true);
}
renderConnectionState(page.connection, "connecting");
renderQuality(page.quality, "unknown");
renderSelfPreview();

if (!hasWebRTC()) {
  showView("join");
  showError(page.joinError, "no_webrtc");
  page.submit.disabled = true;
} else if (session.resumeStored()) {
  showView("student"); // a reload: resume the same participant
} else {
  showView("join");
  (page.name.value ? page.password : page.name).focus();
}
