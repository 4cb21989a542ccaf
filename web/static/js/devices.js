/**
 * The participant's own camera and microphone.
 *
 * Asking for them must never stop anyone from joining: a refused permission or a missing device
 * leaves the participant listening and watching, with a message, and the mic/camera buttons try
 * again. One `MediaStream` object lives as long as the page; tracks come and go inside it, so the
 * self-preview and every new publish peer connection use the same tracks.
 */

/** Capture settings per role: a student's phone sends a small picture on mobile data. */
export const CONSTRAINTS = Object.freeze({
  teacher: {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: {
      width: { ideal: 960 },
      height: { ideal: 540 },
      frameRate: { ideal: 20, max: 24 },
      facingMode: "user",
    },
  },
  student: {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: {
      width: { ideal: 480 },
      height: { ideal: 360 },
      frameRate: { ideal: 15, max: 15 },
      facingMode: "user",
    },
  },
});

/**
 * The problem code for a `getUserMedia` failure (the page shows `error.<code>`).
 * @param {unknown} error
 * @returns {"permission_denied" | "no_device" | "device_busy"}
 */
export function mediaErrorCode(error) {
  const name = /** @type {any} */ (error)?.name ?? "";
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "permission_denied";
  }
  const missing = ["NotFoundError", "OverconstrainedError", "DevicesNotFoundError"];
  if (missing.includes(name)) return "no_device";
  return "device_busy"; // NotReadableError, AbortError, TrackStartError: another app has it
}

/**
 * The browser's remembered permission for a device kind ("granted", "denied", "prompt"), or
 * "unknown" where the Permissions API cannot tell (Firefox, older Safari).
 * @param {"audio" | "video"} kind
 * @returns {Promise<string>}
 */
async function permissionState(kind) {
  try {
    const name = kind === "audio" ? "microphone" : "camera";
    const status = await navigator.permissions.query({ name: /** @type {any} */ (name) });
    return status.state;
  } catch {
    return "unknown";
  }
}

/** The local camera and microphone of this page. */
export class LocalMedia extends EventTarget {
  #constraints;
  /** One stream for the page's lifetime; tracks are added as they are obtained. */
  stream = new MediaStream();

  /** @param {"teacher" | "student"} role */
  constructor(role) {
    super();
    this.#constraints = CONSTRAINTS[role];
  }

  /**
   * The live track of `kind`, or null.
   * @param {"audio" | "video"} kind
   * @returns {MediaStreamTrack | null}
   */
  track(kind) {
    return this.stream.getTracks().find((t) => t.kind === kind && t.readyState === "live") ?? null;
  }

  /** @returns {boolean} whether any track is live */
  get hasTracks() {
    return Boolean(this.track("audio") || this.track("video"));
  }

  /**
   * Ask for the kinds not obtained yet. If both are asked and the camera is missing or busy,
   * the microphone alone is tried (and the other way round), so a phone with a broken camera
   * still speaks.
   * @param {{audio?: boolean, video?: boolean}} wanted
   * @returns {Promise<{code: string, kinds: string[]} | null>} the problem, or null if all came
   */
  async acquire(wanted) {
    const kinds = ["audio", "video"].filter((kind) => wanted[kind] && !this.track(kind));
    if (!kinds.length) return null;
    let firstError = null;
    try {
      await this.#get(kinds);
      return null;
    } catch (error) {
      firstError = error;
    }
    const code = mediaErrorCode(firstError);
    if (kinds.length === 1) return { code, kinds };
    const obtained = [];
    let lastError = firstError;
    for (const kind of kinds) {
      // After a refusal, only retry a kind the visitor did allow (e.g. mic yes, camera no):
      // asking again for a refused one would just prompt again.
      if (code === "permission_denied" && (await permissionState(kind)) !== "granted") continue;
      try {
        await this.#get([kind]);
        obtained.push(kind);
      } catch (error) {
        lastError = error;
      }
    }
    const missing = kinds.filter((kind) => !obtained.includes(kind));
    return missing.length ? { code: mediaErrorCode(lastError), kinds: missing } : null;
  }

  /**
   * Turn a track on or off without stopping the device (`track.enabled`).
   * @param {"audio" | "video"} kind
   * @param {boolean} on
   * @returns {boolean} whether there was a track to change
   */
  setEnabled(kind, on) {
    const track = this.track(kind);
    if (!track) return false;
    track.enabled = on;
    this.dispatchEvent(new Event("change"));
    return true;
  }

  /**
   * "on", "off" (track disabled) or "none" (no track).
   * @param {"audio" | "video"} kind
   */
  stateOf(kind) {
    const track = this.track(kind);
    if (!track) return "none";
    return track.enabled ? "on" : "off";
  }

  /** Stop every device (the lesson is over). */
  stop() {
    for (const track of this.stream.getTracks()) {
      track.stop();
      this.stream.removeTrack(track);
    }
    this.dispatchEvent(new Event("change"));
  }

  async #get(kinds) {
    const request = {};
    for (const kind of kinds) request[kind] = this.#constraints[kind];
    const captured = await navigator.mediaDevices.getUserMedia(request);
    for (const track of captured.getTracks()) {
      track.addEventListener("ended", () => {
        this.stream.removeTrack(track);
        this.dispatchEvent(new Event("change"));
      });
      this.stream.addTrack(track);
    }
    this.dispatchEvent(new Event("change"));
  }
}
