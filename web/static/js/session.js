/**
 * One participant in one lesson: the signaling client, the roster of the others, the peer
 * connections and the local camera and microphone, kept together across resumes.
 *
 * Each (re)join rebuilds the media from scratch, as protocol.md asks: the old peer connections
 * are closed, the same local tracks are published on a new publish connection and a new
 * subscribe connection receives the others. The page draws; this module never touches the DOM.
 *
 * It also keeps what the lesson's moderation tells everyone (docs/protocol.md, "Moderation"):
 * one's own role (`selfRole`: a student may be made moderator), the lesson's `controls`, the
 * raised `hands` and, for staff, the `knocks` at the waiting room (the join answer's `knocking`).
 *
 * Events: `state` (detail.state), `waiting` (detail.data: the join answer of someone who must
 * wait), `session` (detail: {data, resumed}), `remote` (received streams changed: read
 * `remote(id)`), `quality` (detail.level), `closed` (detail: {reason, code, data}), `error`
 * (detail.code: a refused media request worth telling the participant), `muted` (detail:
 * {kind, reason}: the server turned one of our tracks off — `muted` by the teacher,
 * `not_allowed` by the lesson's permissions — and the button now shows it off),
 * `unmute_requested` (the teacher asks us to turn the microphone on), `controls`, `hands`,
 * `knocks` (detail.added: a new knock, or null), `role` (detail: {role, previous}), `chat`
 * (detail.message), `message_deleted` (detail.id), `incident` (detail.incident), `downlink`
 * (what the server holds back of our downlink changed, or our data-saver choice did: read
 * `downlink` and `dataSaver`). The roster dispatches its own `change`.
 *
 * Data saver (a page that offers it passes `dataSaver: true`): the participant's choice to
 * receive no video at all, kept in localStorage and sent with `data_saver` after every join
 * and resume.
 */

import { BITRATES, MediaSession } from "./media.js";
import { Roster } from "./roster.js";
import { SignalingClient, resumeKey, signalingUrl } from "./signaling.js";
import { monitorQuality } from "./quality.js";
import { DOWNLINK_OK, parseDownlink } from "./downlink.js";
import { local as localStore } from "./storage.js";

/** Where the data-saver choice is remembered (this browser, every lesson). */
export const DATA_SAVER_KEY = "lophoc.data_saver";

/** The roles that moderate a lesson. */
export const STAFF_ROLES = Object.freeze(["teacher", "moderator"]);

/** What a lesson allows before the server says otherwise (the protocol's defaults). */
const DEFAULT_CONTROLS = Object.freeze({
  waiting_room: "guests",
  locked: false,
  chat: true,
  permissions: Object.freeze(["chat", "private_chat", "unmute", "video"]),
});

/** Errors of optional requests that an older server may not know: not worth a message. */
const QUIET_ERRORS = new Set(["connection_lost", "unknown_type", "timeout"]);

/**
 * @typedef {{audio: MediaStreamTrack | null, video: MediaStreamTrack | null,
 *            stream: MediaStream, audioOnly: MediaStream | null}} RemoteMedia
 */

/** One participant's lesson: signaling, roster, peer connections and local media together. */
export class LessonSession extends EventTarget {
  /** @type {MediaSession | null} */
  media = null;
  /** @type {string | null} */
  participantId = null;
  /** @type {{id: string, code: string, title: string} | null} */
  lesson = null;
  /** @type {Map<string, RemoteMedia>} */
  #remote = new Map();
  #stopQuality = null;
  #quality = "unknown";
  /** Own role in the lesson: teacher, moderator, student or guest. @type {string | null} */
  selfRole = null;
  /** @type {{waiting_room: string, locked: boolean, chat: boolean, permissions: string[]}} */
  controls = { ...DEFAULT_CONTROLS, permissions: [...DEFAULT_CONTROLS.permissions] };
  /** Raised hands, first raised first. @type {string[]} */
  hands = [];
  /** Who knocks at the waiting room (staff only). @type {Map<string, any>} */
  knocks = new Map();
  /** The teacher asked us to turn the microphone on: allowed once, whatever the permissions. */
  unmuteInvited = false;
  /** What the server last said of our downlink. @type {import("./downlink.js").Downlink} */
  downlink = { ...DOWNLINK_OK, paused: [] };
  /** We asked to receive no video (data saver). */
  dataSaver = false;
  /** Whether the server knows `data_saver` (null: not asked yet). @type {boolean | null} */
  #offersDataSaver = false;

  /**
   * @param {object} options
   * @param {string} options.code the lesson code
   * @param {"teacher" | "student"} options.role the page's role
   * @param {import("./devices.js").LocalMedia} options.local own camera and microphone
   * @param {(() => object) | null} [options.fallbackJoin] join fields when a resume is refused
   * @param {boolean} [options.dataSaver] the page offers data saver (remembered choice)
   */
  constructor({ code, role, local, fallbackJoin = null, dataSaver = false }) {
    super();
    this.code = code;
    this.role = role;
    this.local = local;
    this.#offersDataSaver = dataSaver;
    this.dataSaver = dataSaver && localStore.get(DATA_SAVER_KEY) === "on";
    this.roster = new Roster();
    this.signaling = new SignalingClient({
      url: signalingUrl(),
      storageKey: resumeKey(role, code),
      fallbackJoin,
    });
    this.signaling.addEventListener("state", (event) => this.#onState(event.detail.state));
    this.signaling.addEventListener("session", (event) =>
      this.#onSession(event.detail.data, event.detail.resumed),
    );
    this.signaling.addEventListener("waiting", (event) => this.#onWaiting(event.detail.data));
    this.signaling.addEventListener("event", (event) =>
      this.#onEvent(event.detail.event, event.detail.data),
    );
    this.signaling.addEventListener("closed", (event) => this.#onClosed(event.detail));
  }

  /** @returns {string} idle | connecting | connected | reconnecting | closed */
  get state() {
    return this.signaling.state;
  }

  /** @returns {string} good | fair | poor | unknown */
  get quality() {
    return this.#quality;
  }

  /** @returns {boolean} whether one is the teacher or a moderator */
  get isStaff() {
    return STAFF_ROLES.includes(this.selfRole ?? "");
  }

  /**
   * Whether one may use a permission on one's own now (staff always may).
   * @param {"unmute" | "video" | "screen" | "chat" | "private_chat"} permission
   * @returns {boolean}
   */
  may(permission) {
    if (this.isStaff) return true;
    if ((permission === "chat" || permission === "private_chat") && !this.controls.chat) {
      return false;
    }
    if (permission === "unmute" && this.unmuteInvited) return true;
    return this.controls.permissions.includes(permission);
  }

  /**
   * Send a request of the lesson (moderation, chat, hands, reports).
   * @param {string} type
   * @param {object} [fields]
   * @param {number} [timeoutMs]
   * @returns {Promise<any>} the `ok` data
   * @throws {import("./signaling.js").SignalingError}
   */
  request(type, fields = {}, timeoutMs = 15_000) {
    return this.signaling.request(type, fields, timeoutMs);
  }

  /**
   * Join the lesson (see `SignalingClient.join`).
   * @param {object} fields
   * @returns {Promise<object>} the join response data
   */
  join(fields) {
    return this.signaling.join(fields);
  }

  /** @returns {boolean} whether a stored resume token is being tried (a page reload) */
  resumeStored() {
    return this.signaling.resumeStored();
  }

  /** @returns {{publish: RTCPeerConnection | null, subscribe: RTCPeerConnection | null}} */
  pcs() {
    return this.media ? this.media.pcs : { publish: null, subscribe: null };
  }

  /**
   * What is received of one participant.
   * @param {string} participantId
   * @returns {RemoteMedia | undefined}
   */
  remote(participantId) {
    return this.#remote.get(participantId);
  }

  /**
   * Publish the local tracks that are not published yet (after a join, or after the camera or
   * microphone became available), and re-send the pause state of tracks that are off.
   * @returns {Promise<void>}
   */
  async publishLocal() {
    const media = this.media;
    if (!media || this.signaling.state !== "connected" || !this.local.hasTracks) return;
    try {
      await media.publish(this.local.stream);
    } catch (error) {
      if (media === this.media) this.#error(error?.code);
      return;
    }
    for (const kind of /** @type {const} */ (["audio", "video"])) {
      if (media !== this.media) return;
      if (media.pausedByServer(kind) && this.local.stateOf(kind) === "on") {
        this.#followServer(kind, "not_allowed");
      } else if (this.local.stateOf(kind) === "off") {
        await this.#pause(media, kind, true);
      }
    }
  }

  /**
   * Turn one's own microphone or camera on or off: `track.enabled`, and `pause` so the server
   * stops forwarding it (and tells the others).
   * @param {"audio" | "video"} kind
   * @param {boolean} on
   * @returns {Promise<boolean>} false when there is no such track
   */
  async setTrackEnabled(kind, on) {
    if (!this.local.setEnabled(kind, on)) return false;
    if (!this.media) return true;
    const refused = await this.#pause(this.media, kind, !on);
    if (refused === "forbidden" && on) this.#followServer(kind, "not_allowed");
    if (kind === "audio" && on && !refused) this.#setInvited(false); // the invitation is used up
    return true;
  }

  /**
   * Receive only these participants' video (`view`); null receives every video.
   * @param {string[] | null} ids
   * @returns {Promise<void>}
   */
  async setView(ids) {
    try {
      await this.signaling.request("view", { video: ids });
    } catch (error) {
      if (!QUIET_ERRORS.has(error?.code)) console.warn("lophoc: view refused:", error?.code);
    }
  }

  /**
   * Receive no video at all (`on`), or every video again. The page follows at once; the choice
   * is remembered and sent to the server now (if connected) and after every join and resume.
   * @param {boolean} on
   * @returns {Promise<void>}
   */
  async setDataSaver(on) {
    this.dataSaver = on;
    localStore.set(DATA_SAVER_KEY, on ? "on" : "off");
    this.#downlinkChanged();
    if (this.signaling.state === "connected" && this.media) await this.#sendDataSaver();
  }

  /**
   * End the lesson for everyone (teacher only).
   * @returns {Promise<void>}
   * @throws {import("./signaling.js").SignalingError} e.g. `forbidden`
   */
  async endLesson() {
    await this.signaling.request("end_lesson", {}, 10_000);
  }

  /** Leave the lesson. */
  async leave() {
    await this.signaling.leave();
  }

  // -- internals -------------------------------------------------------------------------

  #onState(state) {
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
    if (state !== "connected") {
      // The old peer connections are going away: their statistics say nothing any more.
      this.#stopQuality?.();
      this.#stopQuality = null;
      this.#setQuality("unknown");
    } else if (!this.#stopQuality) {
      this.#stopQuality = monitorQuality(
        () => {
          const { publish, subscribe } = this.pcs();
          return [publish, subscribe];
        },
        (level) => this.#setQuality(level),
      );
    }
  }

  #setQuality(level) {
    if (this.#quality === level) return;
    this.#quality = level;
    this.dispatchEvent(new CustomEvent("quality", { detail: { level } }));
  }

  #onWaiting(data) {
    this.participantId = data.participant?.id ?? null;
    this.selfRole = data.participant?.role ?? null;
    this.lesson = data.lesson ?? this.lesson;
    this.dispatchEvent(new CustomEvent("waiting", { detail: { data } }));
  }

  #onSession(data, resumed) {
    this.participantId = data.participant?.id ?? null;
    this.selfRole = data.participant?.role ?? null;
    this.lesson = data.lesson ?? this.lesson;
    this.#setControls(data.controls);
    this.hands = Array.isArray(data.hands) ? data.hands.map(String) : [];
    this.knocks = new Map();
    for (const knock of Array.isArray(data.knocking) ? data.knocking : []) {
      if (typeof knock?.id === "string") this.knocks.set(knock.id, knock);
    }
    this.media?.close();
    const media = new MediaSession({
      request: (type, fields) => this.signaling.request(type, fields),
      bitrates: BITRATES[this.role],
      iceServers: data.ice_servers,
    });
    this.media = media;
    media.addEventListener("tracks", () => this.#onTracks(media));
    media.addEventListener("problem", (event) => {
      const { pc, state } = event.detail;
      if (media === this.media) this.signaling.reconnect(`${pc} peer connection ${state}`);
    });
    media.addEventListener("error", (event) => {
      if (media === this.media) this.#error(event.detail.code);
    });
    this.#setRemote(new Map());
    this.downlink = { ...DOWNLINK_OK, paused: [] }; // a new connection: nothing held back yet
    this.dispatchEvent(new CustomEvent("session", { detail: { data, resumed } }));
    this.roster.reset(data); // after "session": pages redraw from the new roster once
    this.#downlinkChanged();
    if (this.#offersDataSaver) this.#sendDataSaver();
    media.subscribe().catch((error) => {
      if (media === this.media) this.#error(error?.code);
    });
    this.publishLocal();
  }

  #onEvent(name, data) {
    if (name === "offer") {
      this.media?.handleOffer(data);
      return;
    }
    if (name === "muted" && (data?.kind === "audio" || data?.kind === "video")) {
      if (data.kind === "audio") this.#setInvited(false);
      this.#followServer(data.kind, "muted");
      return;
    }
    if (name === "unmute_requested") {
      this.#setInvited(true);
      this.dispatchEvent(new Event("unmute_requested"));
      return;
    }
    switch (name) {
      case "settings":
        this.#setControls(data);
        return;
      case "hands":
        this.hands = Array.isArray(data?.queue) ? data.queue.map(String) : [];
        this.dispatchEvent(new Event("hands"));
        return;
      case "knocking":
        if (typeof data?.id !== "string") return;
        this.knocks.set(data.id, data);
        this.dispatchEvent(new CustomEvent("knocks", { detail: { added: data } }));
        return;
      case "knock_ended":
        if (this.knocks.delete(data?.id)) {
          this.dispatchEvent(new CustomEvent("knocks", { detail: { added: null } }));
        }
        return;
      case "chat":
        this.dispatchEvent(new CustomEvent("chat", { detail: { message: data } }));
        return;
      case "message_deleted":
        this.dispatchEvent(new CustomEvent("message_deleted", { detail: { id: data?.id } }));
        return;
      case "incident":
        this.dispatchEvent(new CustomEvent("incident", { detail: { incident: data } }));
        return;
      case "downlink":
        this.downlink = parseDownlink(data);
        this.#downlinkChanged();
        return;
      case "participant_updated":
        if (data?.id === this.participantId && typeof data.role === "string") {
          this.#setRole(data.role);
          return;
        }
        break;
    }
    this.roster.apply(name, data);
  }

  #downlinkChanged() {
    this.dispatchEvent(new Event("downlink"));
  }

  /** Tell the server the data-saver choice (it holds the video back, and says so). */
  async #sendDataSaver() {
    try {
      await this.signaling.request("data_saver", { on: this.dataSaver });
    } catch (error) {
      const code = error?.code;
      if (!QUIET_ERRORS.has(code)) console.warn("lophoc: data_saver refused:", code);
    }
  }

  #setControls(controls) {
    if (!controls || typeof controls !== "object") return;
    this.controls = {
      waiting_room: String(controls.waiting_room ?? this.controls.waiting_room),
      locked: controls.locked === true,
      chat: controls.chat !== false,
      permissions: Array.isArray(controls.permissions)
        ? controls.permissions.map(String)
        : this.controls.permissions,
    };
    this.dispatchEvent(new Event("controls"));
  }

  #setRole(role) {
    const previous = this.selfRole;
    if (previous === role) return;
    this.selfRole = role;
    if (!this.isStaff && this.knocks.size) {
      this.knocks = new Map();
      this.dispatchEvent(new CustomEvent("knocks", { detail: { added: null } }));
    }
    this.dispatchEvent(new CustomEvent("role", { detail: { role, previous } }));
  }

  #setInvited(invited) {
    if (this.unmuteInvited === invited) return;
    this.unmuteInvited = invited;
    this.dispatchEvent(new Event("controls")); // what one may do changed
  }

  /** The server stopped forwarding one of our tracks: show it off here too. */
  #followServer(kind, reason) {
    this.local.setEnabled(kind, false);
    this.dispatchEvent(new CustomEvent("muted", { detail: { kind, reason } }));
  }

  #onClosed(detail) {
    this.media?.close();
    this.media = null;
    this.#setRemote(new Map());
    this.dispatchEvent(new CustomEvent("closed", { detail }));
  }

  #onTracks(media) {
    if (media !== this.media) return;
    const next = new Map();
    for (const [id, { audio, video }] of media.remoteTracks()) {
      const known = this.#remote.get(id);
      if (known && known.audio === audio && known.video === video) {
        next.set(id, known);
        continue;
      }
      next.set(id, {
        audio,
        video,
        stream: new MediaStream([audio, video].filter(Boolean)),
        audioOnly: audio ? new MediaStream([audio]) : null,
      });
    }
    this.#setRemote(next);
  }

  #setRemote(next) {
    this.#remote = next;
    this.dispatchEvent(new Event("remote"));
  }

  /** @returns {Promise<string | null>} the error code if the server refused */
  async #pause(media, kind, paused) {
    const producer = media.producerId(kind);
    if (!producer) return null; // not published yet: publishLocal sends it afterwards
    try {
      await this.signaling.request("pause", { producer, paused });
      return null;
    } catch (error) {
      const code = error?.code ?? "internal";
      if (code !== "forbidden" && !QUIET_ERRORS.has(code)) this.#error(code);
      return code;
    }
  }

  #error(code) {
    if (!code || QUIET_ERRORS.has(code)) return;
    this.dispatchEvent(new CustomEvent("error", { detail: { code } }));
  }
}

/**
 * Install the read-only debug handle `window.lophoc` for tests and support staff.
 * @param {() => LessonSession | null} current the page's session, if any
 * @param {{role: string, lessonCode: () => string | null}} page what the page knows without one
 */
export function exposeDebugHandle(current, page) {
  const handle = {};
  const get = (read) => ({ enumerable: true, get: read });
  Object.defineProperties(handle, {
    state: get(() => current()?.state ?? "idle"),
    participantId: get(() => current()?.participantId ?? null),
    role: get(() => current()?.role ?? page.role),
    lessonCode: get(() => current()?.lesson?.code ?? current()?.code ?? page.lessonCode()),
    participants: get(() => current()?.roster.snapshot() ?? new Map()),
    selfRole: get(() => current()?.selfRole ?? null),
    controls: get(() => structuredClone(current()?.controls ?? null)),
    hands: get(() => [...(current()?.hands ?? [])]),
    knocks: get(() => [...(current()?.knocks.keys() ?? [])]),
    quality: get(() => current()?.quality ?? "unknown"),
    downlink: get(() => structuredClone(current()?.downlink ?? null)),
    dataSaver: get(() => current()?.dataSaver ?? false),
    pcs: {
      enumerable: true,
      value: () => ({ ...(current()?.pcs() ?? { publish: null, subscribe: null }) }),
    },
    socket: { enumerable: true, value: () => current()?.signaling.socket ?? null },
  });
  Object.freeze(handle);
  Object.defineProperty(window, "lophoc", { value: handle, enumerable: true });
}
