/**
 * The student page (`/l/<code>`): the join form, the waiting room if the lesson has one, then
 * the lesson as a phone shows it — the teacher's video large, one's own preview small in a
 * corner, a control bar at the bottom (microphone, camera, raise hand, chat, leave), the chat in
 * a drawer and "report a problem" in the top bar.
 *
 * A student the teacher makes moderator stays on this page: the drawer then gets a second tab
 * with the waiting room, the participants and their actions, the raised hands and the settings.
 *
 * On a weak downlink the server holds video back to keep the sound (docs/protocol.md,
 * "Downlink"); the page says so in a notice above the controls, mirrors the state in
 * `data-downlink` on the student view, and never shows a frozen frame as live: when the
 * teacher's video is held back or stops delivering frames, her initial and name cover it.
 * "Audio only" in the control bar (data saver) asks for no video at all.
 */

import { byTestId, create, need, show } from "./dom.js";
import { COVER_KEYS, NOTICE_KEYS, initialOf, noticeKind, stageView } from "./downlink.js";
import { watchFrames } from "./freeze.js";
import { LocalMedia } from "./devices.js";
import { initI18n, onLanguageChange, setAriaLabel, setText, setTitle, t } from "./i18n.js";
import { hasWebRTC } from "./media.js";
import { UNNAMED_TEACHER, personName, showNameEnd } from "./names.js";
import { Playback } from "./playback.js";
import { LessonSession, exposeDebugHandle } from "./session.js";
import { local as localStore, session as sessionStore } from "./storage.js";
import { ChatPanel } from "./chat.js";
import { confirmAction } from "./dialogs.js";
import { openReportDialog } from "./incident.js";
import {
  HandsPanel,
  SettingsForm,
  WaitingPanel,
  bindClassActions,
  showIncident,
} from "./moderation.js";
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

const NAME_KEY = "lophoc.name";
const DEVICE_KEY = "lophoc.device";
const MAX_NAME_CHARS = 64;
const DEVICE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const code = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() ?? "");

const page = {
  joinView: need("join-view"),
  form: /** @type {HTMLFormElement} */ (need("join-form")),
  name: /** @type {HTMLInputElement} */ (need("join-name")),
  password: /** @type {HTMLInputElement} */ (need("join-password")),
  submit: /** @type {HTMLButtonElement} */ (need("join-submit")),
  joinError: need("join-error"),
  studentView: need("student-view"),
  waitingView: need("waiting-view"),
  waitingTitle: need("waiting-lesson-title"),
  waitingState: need("waiting-state"),
  waitingLeave: /** @type {HTMLButtonElement} */ (need("waiting-leave")),
  report: /** @type {HTMLButtonElement} */ (need("report-problem")),
  hand: /** @type {HTMLButtonElement} */ (need("raise-hand")),
  chatToggle: /** @type {HTMLButtonElement} */ (need("toggle-chat")),
  chatUnread: need("chat-unread"),
  knockBadge: need("knock-badge"),
  sidePanel: need("side-panel"),
  sideClose: /** @type {HTMLButtonElement} */ (need("side-panel-close")),
  tabChat: /** @type {HTMLButtonElement} */ (need("tab-chat")),
  tabModeration: /** @type {HTMLButtonElement} */ (need("tab-moderation")),
  tabModerationBadge: need("tab-moderation-badge"),
  chatPanel: need("chat-panel"),
  moderationPanel: need("moderation-panel"),
  incidents: need("incidents"),
  unmutePrompt: need("unmute-prompt"),
  unmuteAccept: /** @type {HTMLButtonElement} */ (need("unmute-accept")),
  unmuteDismiss: /** @type {HTMLButtonElement} */ (need("unmute-dismiss")),
  permissionHint: need("permission-hint"),
  title: need("lesson-title"),
  teacherVideo: /** @type {HTMLVideoElement} */ (need("teacher-video")),
  teacherName: need("teacher-name"),
  cover: need("video-paused"),
  coverInitial: need("video-paused-initial"),
  coverName: need("video-paused-name"),
  coverText: need("video-paused-text"),
  downlinkNotice: need("downlink-notice"),
  dataSaver: /** @type {HTMLButtonElement} */ (need("toggle-data-saver")),
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

/**
 * This browser's device key: random, made once and kept in localStorage, sent with every join
 * so that a ban holds for this browser even under another name (docs/protocol.md, `join`).
 */
const device = (() => {
  const stored = localStore.get(DEVICE_KEY);
  if (stored && /^[A-Za-z0-9_-]{22,64}$/.test(stored)) return stored;
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const key = Array.from(bytes, (byte) => DEVICE_ALPHABET[byte & 63]).join("");
  localStore.set(DEVICE_KEY, key);
  return key;
})();

const local = new LocalMedia("student");
const playback = new Playback();
const session = new LessonSession({ code, role: "student", local, dataSaver: true });
let mediaAsked = false;

exposeDebugHandle(() => session, { role: "student", lessonCode: () => code });

const current = () => session;
/** A refused request, told in the notice. */
const notify = (code, extra = {}) => showErrorNotice(page.notice, code, extra);
const chat = new ChatPanel(page.chatPanel, { session: current, confirm: confirmAction });
chat.setVisible(false); // a drawer, closed until the student opens it
// Shown only to a moderator (a student the teacher trusted with the lesson).
const waitingPanel = new WaitingPanel(need("waiting-panel"), { session: current, notify });
const handsPanel = new HandsPanel(need("hands-panel"), { session: current, notify });
const settingsForm = new SettingsForm(need("settings-form"), { session: current, notify });
const participants = new ParticipantList(need("participant-list"), need("participant-count"), {
  session: current,
  notify,
});
bindClassActions(
  /** @type {HTMLButtonElement} */ (need("mute-all")),
  /** @type {HTMLButtonElement} */ (need("stop-all-video")),
  { session: current, notify },
);

// -- views ------------------------------------------------------------------------------

/** @param {"join" | "waiting" | "student" | "closed"} name */
function showView(name) {
  show(page.joinView, name === "join");
  show(page.waitingView, name === "waiting");
  show(page.report, name === "student");
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
      await session.join({ code, link: linkToken, device }); // the roster names the student
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
    await session.join({ code, password: page.password.value, name, device });
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

/** What the freeze detector says of the teacher's video (freeze.js). */
let teacherFrames = "idle";
/** Whether the teacher's video is meant to be playing now (the detector watches only then). */
let teacherVideoWanted = false;

// The stage's names are computed, some in the page's language (an ad-hoc lesson's teacher is
// "Giáo viên" / "Teacher"): a language switch draws it again.
onLanguageChange(() => {
  if (session) renderStage();
});

function renderStage() {
  const teacher = session.roster.teacher();
  const received = teacher ? session.remote(teacher.id) : undefined;
  const view = stageView({
    teacher,
    received: Boolean(received?.video),
    downlink: session.downlink,
    dataSaver: session.dataSaver,
    frozen: teacherFrames === "frozen",
  });
  const stream = view.render ? received?.stream : received?.audioOnly;
  playback.attach(page.teacherVideo, stream ?? null);
  teacherVideoWanted = view.render && (view.cover === null || view.cover === "frozen");
  // An ad-hoc lesson's teacher has no account: her chip says "Giáo viên" / "Teacher", in the
  // page's language (and follows a switch of it).
  const unnamed = teacher?.role === "teacher" && teacher.name === UNNAMED_TEACHER;
  if (unnamed) {
    setText(page.teacherName, "participant.role_teacher");
  } else {
    delete page.teacherName.dataset.i18n;
    page.teacherName.textContent = teacher?.name ?? "";
  }
  const shownName = personName(teacher, t("participant.role_teacher"));
  page.studentView.classList.toggle("teacher-reconnecting", teacher?.state === "reconnecting");
  show(page.placeholder, Boolean(view.placeholder));
  const text = /** @type {HTMLElement} */ (page.placeholder.querySelector(".placeholder-text"));
  if (view.placeholder) setText(text, view.placeholder);
  // Held back, stopped or off: her initial and name instead of the last frame.
  page.cover.dataset.reason = view.cover ?? "";
  show(page.cover, Boolean(view.cover));
  if (view.cover) {
    // A name's initial is its given name's; the word "Giáo viên" stands as a whole.
    page.coverInitial.textContent = unnamed
      ? ([...shownName][0] ?? "?").toLocaleUpperCase()
      : initialOf(shownName);
    showNameEnd(page.coverName, shownName);
    setText(page.coverText, COVER_KEYS[view.cover]);
  }
}

/** The downlink as the server last told it, and the data-saver choice. */
function renderDownlink() {
  const { downlink, dataSaver } = session;
  page.studentView.dataset.downlink = downlink.state;
  page.studentView.dataset.downlinkReason = downlink.reason ?? "";
  page.studentView.dataset.dataSaver = dataSaver ? "on" : "off";
  const kind = noticeKind(downlink, dataSaver);
  page.downlinkNotice.dataset.kind = kind ?? "";
  const text = /** @type {HTMLElement} */ (page.downlinkNotice.querySelector(".downlink-text"));
  if (kind) setText(text, NOTICE_KEYS[kind]);
  show(page.downlinkNotice, Boolean(kind));
  page.dataSaver.setAttribute("aria-pressed", dataSaver ? "true" : "false");
  page.dataSaver.dataset.state = dataSaver ? "on" : "off";
  const title = dataSaver ? "controls.data_saver_turn_off" : "controls.data_saver_turn_on";
  setTitle(page.dataSaver, title);
  renderStage();
}

watchFrames(page.teacherVideo, {
  wanted: () => teacherVideoWanted,
  receiver: (track) =>
    session
      .pcs()
      .subscribe?.getReceivers()
      .find((receiver) => receiver.track === track) ?? null,
  onChange: (state) => {
    teacherFrames = state;
    page.teacherVideo.dataset.frames = state;
    renderStage();
  },
});

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

const preview = selfPreview(page.selfPreview, local);
function renderSelfPreview() {
  show(page.selfBox, preview());
}

function renderAll() {
  renderStage();
  renderPeers();
  renderModeration();
}

// -- hands, chat drawer, moderation -----------------------------------------------------

function renderHand() {
  const raised = Boolean(session.participantId) && session.hands.includes(session.participantId);
  page.hand.setAttribute("aria-pressed", raised ? "true" : "false");
  page.hand.dataset.state = raised ? "raised" : "lowered";
  setText(
    /** @type {HTMLElement} */ (page.hand.querySelector(".control-label")),
    raised ? "controls.hand_lower" : "controls.hand",
  );
  setTitle(page.hand, raised ? "controls.hand_lower_title" : "controls.hand_raise_title");
}

async function toggleHand() {
  const raised = session.hands.includes(session.participantId ?? "");
  page.hand.disabled = true;
  try {
    await session.request("raise_hand", { raised: !raised });
  } catch (error) {
    notify(error?.code ?? "internal", error?.extra);
  } finally {
    page.hand.disabled = false;
  }
}

let activeTab = "chat";

function openPanel(open, tab = activeTab) {
  activeTab = tab === "moderation" && session.isStaff ? "moderation" : "chat";
  show(page.sidePanel, open);
  page.chatToggle.setAttribute("aria-pressed", open ? "true" : "false");
  page.tabChat.setAttribute("aria-selected", activeTab === "chat" ? "true" : "false");
  page.tabModeration.setAttribute("aria-selected", activeTab === "moderation" ? "true" : "false");
  show(page.chatPanel, activeTab === "chat");
  show(page.moderationPanel, activeTab === "moderation");
  chat.setVisible(open && activeTab === "chat");
  page.studentView.classList.toggle("panel-open", open);
  renderBadges();
}

function renderBadges() {
  const unread = chat.unread;
  page.chatUnread.textContent = unread > 9 ? "9+" : String(unread);
  show(page.chatUnread, unread > 0);
  const knocks = session.isStaff ? session.knocks.size : 0;
  const moderationOpen = !page.sidePanel.hidden && activeTab === "moderation";
  page.knockBadge.textContent = String(knocks);
  show(page.knockBadge, knocks > 0 && !moderationOpen && unread === 0);
  page.tabModerationBadge.textContent = String(knocks);
  show(page.tabModerationBadge, knocks > 0);
  if (unread > 0) setAriaLabel(page.chatToggle, "controls.chat_unread", { count: unread });
  else {
    page.chatToggle.removeAttribute("aria-label");
    delete page.chatToggle.dataset.i18nAriaLabel;
  }
}

function renderModeration() {
  const staff = session.isStaff;
  show(page.tabModeration, staff);
  if (!staff && activeTab === "moderation") openPanel(!page.sidePanel.hidden, "chat");
  if (!staff) return;
  waitingPanel.render();
  handsPanel.render();
  participants.render(session.roster.list(), session.hands);
}

// -- the end ------------------------------------------------------------------------------

const CLOSED = {
  left: { title: "closed.left_title", reason: "closed.left", rejoin: true },
  ended: { title: "closed.ended_title", reason: "notice.lesson_ended", rejoin: false },
  replaced: { title: "closed.replaced_title", reason: "error.replaced", rejoin: true },
  removed: { title: "closed.removed_title", reason: "closed.removed", rejoin: false },
  removed_banned: { title: "closed.removed_title", reason: "closed.removed_banned", rejoin: false },
  denied: { title: "closed.denied_title", reason: "closed.denied", rejoin: true },
  denied_banned: { title: "closed.denied_title", reason: "closed.denied_banned", rejoin: false },
  policy: { title: "closed.error_title", reason: "error.policy", rejoin: true },
};

function onClosed({ reason, data }) {
  playback.clear();
  hideSessionUi();
  if (reason === "resume_failed" || reason === "bad_token" || reason === "refused") {
    // The server no longer knows this participant (or will not take it back from the waiting
    // room): join again, name already filled in, with the reason.
    local.stop();
    mediaAsked = false;
    show(page.studentView, false);
    showView("join");
    showError(page.joinError, reason === "refused" ? (data?.code ?? "internal") : "resume_failed");
    page.password.focus();
    return;
  }
  local.stop();
  const banned = data?.banned === true;
  const key = (reason === "removed" || reason === "denied") && banned ? `${reason}_banned` : reason;
  const screen = CLOSED[/** @type {keyof CLOSED} */ (key)] ?? CLOSED.policy;
  if (reason === "ended") showNotice(page.notice, "notice.lesson_ended");
  page.closedView.dataset.reason = reason;
  page.closedView.dataset.banned = banned ? "true" : "false";
  setText(page.closedTitle, screen.title);
  setText(page.closedReason, screen.reason);
  show(page.rejoin, screen.rejoin);
  showView("closed");
}

/** Hide what belongs to a live session (prompts, drawer) once it is over. */
function hideSessionUi() {
  show(page.unmutePrompt, false);
  openPanel(false, "chat");
  for (const dialog of document.querySelectorAll("dialog[open]")) {
    /** @type {HTMLDialogElement} */ (dialog).close();
  }
}

// -- wiring -------------------------------------------------------------------------------

session.addEventListener("state", (event) => {
  renderConnectionState(page.connection, event.detail.state);
  const lost = event.detail.state === "reconnecting" && !page.waitingView.hidden;
  if (lost) setText(page.waitingState, "waiting.reconnecting");
  show(page.waitingState, lost);
  if (event.detail.state === "reconnecting") showNotice(page.notice, "notice.reconnecting");
  if (event.detail.state === "connected" && page.notice.dataset.i18n === "notice.reconnecting") {
    showNotice(page.notice, null);
  }
});
session.addEventListener("quality", (event) => renderQuality(page.quality, event.detail.level));
function showTitle(title) {
  page.title.textContent = title;
  document.title = title ? `${title} · lophoc` : document.title;
  delete document.querySelector("title")?.dataset.i18n;
}

session.addEventListener("waiting", (event) => {
  // Nothing of the lesson yet: no camera, no microphone, nobody else — until `admitted`.
  const title = event.detail.data.lesson?.title ?? "";
  showTitle(title);
  page.waitingTitle.textContent = title;
  hideError(page.joinError);
  show(page.waitingState, false);
  showView("waiting");
  page.waitingLeave.focus();
});
session.addEventListener("session", (event) => {
  const { data } = event.detail;
  showTitle(data.lesson?.title ?? "");
  hideError(page.joinError);
  showView("student");
  chat.reset(data.chat ?? []);
  renderHand();
  renderControls();
  settingsForm.render();
  renderBadges();
  if (!mediaAsked) acquireMedia();
});
session.addEventListener("closed", (event) => onClosed(event.detail));
session.addEventListener("unmute_requested", () => {
  show(page.unmutePrompt, true);
  page.unmuteAccept.focus();
});
session.addEventListener("muted", (event) => {
  const { kind, reason } = event.detail;
  if (kind === "audio") show(page.unmutePrompt, false);
  showNotice(page.notice, `notice.${reason}_${kind}`, {}, 8_000);
  renderControls();
});
session.addEventListener("controls", () => {
  renderControls();
  chat.refresh();
  settingsForm.render();
});
session.addEventListener("hands", () => {
  renderHand();
  renderModeration();
});
session.addEventListener("knocks", (event) => {
  renderModeration();
  renderBadges();
  const added = event.detail.added;
  if (added && session.isStaff) {
    waitingPanel.alert();
    showNotice(page.notice, "notice.knocking", { name: added.name }, 8_000);
  }
});
session.addEventListener("role", (event) => {
  const { role, previous } = event.detail;
  if (role === "moderator") showNotice(page.notice, "notice.moderator_now", {}, 10_000);
  else if (previous === "moderator") {
    showNotice(page.notice, "notice.moderator_revoked", {}, 10_000);
  }
  renderControls();
  renderModeration();
  renderBadges();
  chat.refresh();
  settingsForm.render();
});
session.addEventListener("chat", (event) => chat.add(event.detail.message));
session.addEventListener("message_deleted", (event) => chat.remove(event.detail.id));
session.addEventListener("incident", (event) => {
  showIncident(page.incidents, event.detail.incident);
  showNotice(page.notice, "notice.incident", {}, 10_000);
});
chat.addEventListener("unread", renderBadges);
session.addEventListener("error", (event) => showErrorNotice(page.notice, event.detail.code));
session.addEventListener("remote", renderAll);
session.addEventListener("downlink", renderDownlink);
session.roster.addEventListener("change", () => {
  renderAll();
  chat.refresh();
});

local.addEventListener("change", renderSelfPreview);
const renderControls = bindMediaControls({
  session: current,
  local,
  mic: page.mic,
  camera: page.camera,
  onProblem: (problem) => showMediaProblem(page.mediaError, problem),
  hint: page.permissionHint,
});

page.unmuteAccept.addEventListener("click", async () => {
  show(page.unmutePrompt, false);
  if (local.stateOf("audio") === "none") {
    const problem = await local.acquire({ audio: true });
    showMediaProblem(page.mediaError, problem);
    if (problem) return;
    await session.publishLocal();
  }
  await session.setTrackEnabled("audio", true);
  renderControls();
});
page.unmuteDismiss.addEventListener("click", () => show(page.unmutePrompt, false));
page.hand.addEventListener("click", toggleHand);
page.dataSaver.addEventListener("click", () => session.setDataSaver(!session.dataSaver));
page.chatToggle.addEventListener("click", () => openPanel(page.sidePanel.hidden));
page.sideClose.addEventListener("click", () => {
  openPanel(false);
  page.chatToggle.focus();
});
page.tabChat.addEventListener("click", () => openPanel(true, "chat"));
page.tabModeration.addEventListener("click", () => openPanel(true, "moderation"));
page.report.addEventListener("click", () =>
  openReportDialog(current, (key) => showNotice(page.notice, key, {}, 8_000)),
);
page.waitingLeave.addEventListener("click", () => {
  page.waitingLeave.disabled = true;
  session.leave().finally(() => (page.waitingLeave.disabled = false));
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
renderDownlink();

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
