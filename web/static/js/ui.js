/**
 * Pieces of interface both lesson pages share: the connection and quality indicators, error
 * boxes, the media-problem banner, the microphone/camera buttons and the "tap to turn on sound"
 * button. All text comes from the catalogues.
 */

import { clearText, errorMessage, setAriaLabel, setText, setTitle } from "./i18n.js";
import { show } from "./dom.js";

/** Connection states the page shows (`data-state` of `connection-state`). */
const SHOWN_STATES = new Set(["connecting", "waiting", "connected", "reconnecting", "closed"]);

/**
 * Show the signaling state: `data-state` and a label.
 * @param {HTMLElement} element the `connection-state` element (with a `.chip-label` inside)
 * @param {string} state the session state
 */
export function renderConnectionState(element, state) {
  const shown = SHOWN_STATES.has(state) ? state : state === "idle" ? "closed" : "connecting";
  element.dataset.state = shown;
  const label = element.querySelector(".chip-label") ?? element;
  setText(/** @type {HTMLElement} */ (label), `state.${shown}`);
  document.body.classList.toggle("is-reconnecting", shown === "reconnecting");
}

/**
 * Show the connection quality: `data-quality` and an accessible label.
 * @param {HTMLElement} element the `quality` element
 * @param {string} level good | fair | poor | unknown
 */
export function renderQuality(element, level) {
  const shown = ["good", "fair", "poor"].includes(level) ? level : "unknown";
  element.dataset.quality = shown;
  setAriaLabel(element, `quality.${shown}`);
  setTitle(element, `quality.${shown}`);
  const label = element.querySelector(".quality-label");
  if (label) setText(/** @type {HTMLElement} */ (label), `quality.${shown}`);
}

/**
 * Show an error box with the catalogue message for `code` (`data-code` set for tests).
 * @param {HTMLElement} element
 * @param {string} code
 * @param {Record<string, any>} [extra] e.g. `{retry_after: 30}`
 */
export function showError(element, code, extra = {}) {
  const { key, params } = errorMessage(code, extra);
  element.dataset.code = code;
  setText(element, key, params);
  show(element);
}

/**
 * Hide an error box.
 * @param {HTMLElement} element
 */
export function hideError(element) {
  delete element.dataset.code;
  clearText(element);
  show(element, false);
}

/**
 * The message key for a camera/microphone problem from `LocalMedia.acquire`.
 * @param {{code: string, kinds: string[]}} problem
 * @returns {string}
 */
export function mediaProblemKey(problem) {
  if (problem.code === "no_device" && problem.kinds.length === 1) {
    return problem.kinds[0] === "video" ? "error.no_camera" : "error.no_microphone";
  }
  return `error.${problem.code}`;
}

/**
 * Show (or, with null, hide) a camera/microphone problem in the `media-error` banner. Never
 * blocks the lesson: the participant keeps listening and watching.
 * @param {HTMLElement} banner the `media-error` element (with a `.banner-text` inside)
 * @param {{code: string, kinds: string[]} | null} problem
 */
export function showMediaProblem(banner, problem) {
  const text = /** @type {HTMLElement} */ (banner.querySelector(".banner-text") ?? banner);
  if (!problem) {
    delete banner.dataset.code;
    clearText(text);
    show(banner, false);
    return;
  }
  banner.dataset.code = problem.code;
  setText(text, mediaProblemKey(problem));
  show(banner);
}

/** Why a button is disabled: the lesson does not let students turn it on. */
const LOCKED_KEYS = { audio: "controls.mic_locked", video: "controls.camera_locked" };

/**
 * Wire the microphone and camera toggle buttons. A button whose device is missing tries to get
 * it again (the visitor may have just allowed it); otherwise it turns the track on or off.
 * A track the lesson's permissions do not let one turn on (and that is off) shows its button
 * disabled, with the reason in `hint`.
 * @param {object} options
 * @param {() => import("./session.js").LessonSession | null} options.session
 * @param {import("./devices.js").LocalMedia} options.local
 * @param {HTMLButtonElement} options.mic the `toggle-mic` button
 * @param {HTMLButtonElement} options.camera the `toggle-camera` button
 * @param {(problem: {code: string, kinds: string[]} | null) => void} options.onProblem
 * @param {HTMLElement | null} [options.hint] the `permission-hint` element
 * @returns {() => void} re-renders the buttons
 */
export function bindMediaControls({ session, local, mic, camera, onProblem, hint = null }) {
  const buttons = /** @type {const} */ ([
    ["audio", mic, "mic"],
    ["video", camera, "camera"],
  ]);
  const busy = new Set();
  const render = () => {
    const current = session();
    const locked = [];
    for (const [kind, button, name] of buttons) {
      const state = local.stateOf(kind);
      const allowed = !current || current.may(kind === "audio" ? "unmute" : "video");
      const isLocked = !allowed && state !== "on";
      if (isLocked) locked.push(kind);
      button.setAttribute("aria-pressed", state === "on" ? "true" : "false");
      button.dataset.state = state;
      button.dataset.locked = isLocked ? "true" : "false";
      button.disabled = isLocked || busy.has(kind);
      const action = state === "on" ? "turn_off" : state === "off" ? "turn_on" : "retry";
      setTitle(button, isLocked ? LOCKED_KEYS[kind] : `controls.${name}_${action}`);
    }
    if (hint) {
      const key =
        locked.length === 2
          ? "controls.locked_both"
          : locked[0] === "audio"
            ? "controls.mic_locked"
            : "controls.camera_locked";
      if (locked.length) setText(hint, key);
      show(hint, locked.length > 0);
    }
  };
  for (const [kind, button] of buttons) {
    button.addEventListener("click", async () => {
      const state = local.stateOf(kind);
      if (state === "none") {
        busy.add(kind);
        button.disabled = true;
        const problem = await local.acquire({ [kind]: true });
        busy.delete(kind);
        onProblem(problem);
        if (!problem) await session()?.publishLocal();
      } else {
        await session()?.setTrackEnabled(kind, state !== "on");
        if (!session()) local.setEnabled(kind, state !== "on");
      }
      render();
    });
  }
  local.addEventListener("change", render);
  render();
  return render;
}

/**
 * Wire the "tap to turn on sound" button to the playback's blocked state.
 * @param {HTMLButtonElement} button the `enable-sound` button
 * @param {import("./playback.js").Playback} playback
 */
export function bindSoundButton(button, playback) {
  const render = () => show(button, playback.blocked);
  playback.addEventListener("change", render);
  button.addEventListener("click", () => playback.unlock());
  render();
}

/**
 * Show a passing message in the `notice` element; it hides itself after `ms` (0: stays).
 * @param {HTMLElement} element
 * @param {string | null} key null hides the notice
 * @param {Record<string, string | number>} [params]
 * @param {number} [ms]
 */
export function showNotice(element, key, params = {}, ms = 0) {
  clearTimeout(Number(element.dataset.timer ?? 0));
  if (!key) {
    clearText(element);
    show(element, false);
    return;
  }
  setText(element, key, params);
  show(element);
  if (ms > 0) {
    element.dataset.timer = String(setTimeout(() => showNotice(element, null), ms));
  }
}

/**
 * Show the message for an error `code` in the `notice` element for a few seconds.
 * @param {HTMLElement} element
 * @param {string} code
 * @param {Record<string, unknown>} [extra] the error's extra fields (e.g. `retry_after`)
 */
export function showErrorNotice(element, code, extra = {}) {
  const { key, params } = errorMessage(code, extra);
  showNotice(element, key, params, 8_000);
}

/**
 * A self-preview `<video>` that follows the local camera track.
 * @param {HTMLVideoElement} video
 * @param {import("./devices.js").LocalMedia} local
 * @returns {() => boolean} call on every change of `local`; says whether the camera is on
 */
export function selfPreview(video, local) {
  /** @type {MediaStreamTrack | null} */
  let shown = null;
  return () => {
    const track = local.track("video");
    if (track !== shown) {
      shown = track;
      video.srcObject = null; // Safari draws a track added later only after a reset
      if (track) video.srcObject = local.stream;
    }
    return local.stateOf("video") === "on";
  };
}

/**
 * Show a lesson code as three groups of digits while its text stays the plain 9 digits.
 * @param {HTMLElement} element
 * @param {string} code
 */
export function renderCode(element, code) {
  element.replaceChildren();
  element.dataset.code = code;
  const digits = String(code);
  const groups = /^\d{9}$/.test(digits) ? digits.match(/\d{3}/g) : [digits];
  for (const group of groups ?? []) {
    const span = document.createElement("span");
    span.className = "code-group";
    span.textContent = group;
    element.append(span);
  }
}
