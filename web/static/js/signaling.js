/**
 * The signaling WebSocket (docs/protocol.md, version 1): requests with ids, events, heartbeat
 * and automatic resume.
 *
 * Life of a client: `join()` opens a socket and joins; from then on the client keeps the
 * participant alive by itself. A ping goes out every 10 s; a ping unanswered for 5 s, a close
 * the client did not ask for (except 4002, 4003, 1008 and 1009, see "Close codes" in the
 * protocol) or `reconnect()` (a failed peer connection) start a resume loop: a new socket sends
 * `join` with the resume token, with backoff 0.5 s, 1 s, 2 s … capped at 8 s. The resume token is
 * kept in sessionStorage, so a page reload resumes too (`resumeStored()`).
 *
 * Every successful join or resume dispatches `session` (detail: the join response data and
 * whether it was a resume); the page rebuilds its media from it.
 *
 * A join may instead be told to wait (`{"waiting": true, …}`, docs/protocol.md "Waiting room"):
 * the client dispatches `waiting` (detail.data), keeps the socket alive with pings, and turns
 * the `admitted` event into `session` exactly as a join answer. There is no resume token while
 * waiting, so a socket that drops meanwhile joins again with the same fields (kept in memory).
 *
 * Other events: `state` (detail.state: connecting | waiting | connected | reconnecting |
 * closed | idle), `event` (detail: {event, data} as pushed by the server), `closed` (detail:
 * {reason, code, data}; reason is left | ended | replaced | removed | denied | refused | policy
 * | resume_failed | bad_token; `data` is the `removed` / `denied` event's data, or for
 * `refused` the join error's `{code}`).
 */

import { session as sessionStore } from "./storage.js";

const PING_INTERVAL_MS = 10_000;
const PING_TIMEOUT_MS = 5_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8_000;
const OPEN_TIMEOUT_MS = 10_000;
const JOIN_TIMEOUT_MS = 15_000;
const LEAVE_TIMEOUT_MS = 3_000;

/** Close codes after which the client stays closed, and the reason it reports. */
export const STAY_CLOSED = Object.freeze({
  1008: "policy",
  1009: "policy",
  4002: "replaced",
  4003: "ended",
  4005: "removed",
  4006: "denied",
});

/** Errors to a join again from the waiting room that mean it will never work: stop. */
const JOIN_REFUSED = new Set([
  "banned",
  "bad_password",
  "bad_link",
  "bad_token",
  "invalid_name",
  "lesson_locked",
  "link_revoked",
  "link_expired",
  "wrong_lesson",
]);

/** Errors to a resume `join` that mean "this token will never work": join afresh instead. */
const RESUME_REFUSED = new Set(["resume_failed", "bad_token", "malformed", "not_authenticated"]);

/** The client closes its own socket with this code when it gives up on it (ping, media). */
const CLOSE_CLIENT_GAVE_UP = 4000;

/** A request the server refused, or a connection that broke before the answer. */
export class SignalingError extends Error {
  /**
   * @param {string} code stable error code (the server's, or `connection_lost` / `timeout`)
   * @param {string} [message] for logs only; people see the catalogue's message for `code`
   * @param {Record<string, any>} [extra] extra fields of the error (e.g. `retry_after`)
   */
  constructor(code, message = code, extra = {}) {
    super(message);
    this.name = "SignalingError";
    this.code = code;
    this.extra = extra;
  }
}

/**
 * Delay before resume attempt number `attempt` (0-based): 0.5 s doubling, capped at 8 s.
 * @param {number} attempt
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt) {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, attempt));
}

/**
 * The signaling URL of the server that served this page.
 * @param {Location} [where]
 * @returns {string}
 */
export function signalingUrl(where = location) {
  return `${where.protocol === "https:" ? "wss:" : "ws:"}//${where.host}/ws`;
}

/**
 * The sessionStorage key of the resume token of one lesson for one page role.
 * @param {"student" | "teacher"} role
 * @param {string} code
 */
export function resumeKey(role, code) {
  return `lophoc.resume.${role}.${code}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One participant's signaling connection, kept alive across dropped sockets. */
export class SignalingClient extends EventTarget {
  #url;
  #storageKey;
  #fallbackJoin;
  /** @type {WebSocket | null} */
  #ws = null;
  #state = "idle";
  /** idle → joining → (waiting →) admitted ⇄ reconnecting → closed */
  #phase = "idle";
  /** The join fields while waiting: a dropped socket joins again with them. */
  #waitFields = null;
  #endData = null;
  #nextId = 1;
  /** @type {Map<number, {resolve: Function, reject: Function, ws: WebSocket, timer: any}>} */
  #pending = new Map();
  #heartbeat = 0;
  #pingInFlight = false;
  #endReason = null;
  #leaving = false;
  #wake = null;
  #onOnline = () => this.#wake?.();

  /**
   * @param {object} options
   * @param {string} options.url the WebSocket URL (see `signalingUrl`)
   * @param {string} options.storageKey sessionStorage key for the resume token (`resumeKey`)
   * @param {(() => object) | null} [options.fallbackJoin] join fields to use when a resume is
   *   refused (the teacher's token); without it a refused resume closes with `resume_failed`
   */
  constructor({ url, storageKey, fallbackJoin = null }) {
    super();
    this.#url = url;
    this.#storageKey = storageKey;
    this.#fallbackJoin = fallbackJoin;
    window.addEventListener("online", this.#onOnline);
  }

  /** @returns {string} connecting | connected | reconnecting | closed | idle */
  get state() {
    return this.#state;
  }

  /** @returns {WebSocket | null} the current socket */
  get socket() {
    return this.#ws;
  }

  /** @returns {boolean} whether a resume token is stored for this lesson */
  get canResume() {
    return Boolean(sessionStore.get(this.#storageKey));
  }

  /**
   * Open a socket and join. Dispatches `session` on success.
   * @param {object} fields the join fields: `{code, password, name}` or `{token}`
   * @returns {Promise<object>} the join response data
   * @throws {SignalingError} the join error (`bad_password`, …) or `connection_lost`
   */
  async join(fields) {
    this.#reset();
    this.#phase = "joining";
    this.#setState("connecting");
    try {
      await this.#open();
      const data = await this.#sendJoin(fields);
      this.#joined(data, fields, false);
      return data;
    } catch (error) {
      this.#discardSocket(1000);
      this.#phase = "idle";
      this.#setState("idle");
      const failure = asSignalingError(error);
      throw failure.code === "timeout" ? new SignalingError("connection_lost") : failure;
    }
  }

  /**
   * Resume with the token stored by an earlier page of this tab (a reload).
   * @returns {boolean} false when there is no token to resume with
   */
  resumeStored() {
    if (!this.canResume) return false;
    this.#reset();
    this.#startReconnect(true);
    return true;
  }

  /**
   * Send a request on the current socket.
   * @param {string} type
   * @param {object} [fields]
   * @param {number} [timeoutMs] reject with `timeout` after this long (0: wait for the socket)
   * @returns {Promise<any>} the `ok` data
   * @throws {SignalingError}
   */
  request(type, fields = {}, timeoutMs = 0) {
    const ws = this.#ws;
    if (this.#phase === "waiting") return Promise.reject(new SignalingError("waiting"));
    if (this.#phase !== "admitted" || !ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new SignalingError("connection_lost"));
    }
    return this.#send(ws, type, fields, timeoutMs);
  }

  /**
   * Drop the current socket and resume on a new one (a peer connection failed). Does nothing
   * unless the participant is admitted.
   * @param {string} [why] for the console
   */
  reconnect(why = "") {
    if (this.#phase !== "admitted" && this.#phase !== "waiting") return;
    if (why) console.info("lophoc: reconnecting:", why);
    this.#discardSocket(CLOSE_CLIENT_GAVE_UP);
    this.#startReconnect(false);
  }

  /** Leave the lesson (a `leave` request, then close). Dispatches `closed` with `left`. */
  async leave() {
    this.#leaving = true;
    const ws = this.#ws;
    if ((this.#phase === "admitted" || this.#phase === "waiting") && ws) {
      try {
        await this.#send(ws, "leave", {}, LEAVE_TIMEOUT_MS);
      } catch {
        /* closing anyway */
      }
    }
    this.#finish("left", 1000);
  }

  /** Stop without a `leave` (the page is going away for good). */
  close() {
    this.#finish("left", 1000, false);
  }

  // -- internals -------------------------------------------------------------------------

  #reset() {
    this.#endReason = null;
    this.#endData = null;
    this.#leaving = false;
    this.#waitFields = null;
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
  }

  #open() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.#url);
      } catch {
        reject(new SignalingError("connection_lost"));
        return;
      }
      this.#ws = ws;
      const timer = setTimeout(() => {
        reject(new SignalingError("connection_lost", "open timed out"));
        if (this.#ws === ws) this.#discardSocket(1000);
      }, OPEN_TIMEOUT_MS);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        resolve(ws);
      });
      ws.addEventListener("message", (event) => this.#onMessage(ws, event));
      ws.addEventListener("close", (event) => {
        clearTimeout(timer);
        reject(new SignalingError("connection_lost", "closed", { closeCode: event.code }));
        this.#onClose(ws, event);
      });
    });
  }

  #sendJoin(fields) {
    const ws = this.#ws;
    if (!ws) return Promise.reject(new SignalingError("connection_lost"));
    return this.#send(ws, "join", fields, JOIN_TIMEOUT_MS);
  }

  #send(ws, type, fields, timeoutMs) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, ws, timer: 0 };
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.#pending.delete(id);
          reject(new SignalingError("timeout", `${type} timed out`));
        }, timeoutMs);
      }
      this.#pending.set(id, entry);
      try {
        ws.send(JSON.stringify({ ...fields, type, id }));
      } catch {
        this.#pending.delete(id);
        clearTimeout(entry.timer);
        reject(new SignalingError("connection_lost"));
      }
    });
  }

  #onMessage(ws, event) {
    if (ws !== this.#ws) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!message || typeof message !== "object") return;
    if (message.type === "event") {
      this.#onEvent(String(message.event), message.data ?? {});
      return;
    }
    if (message.type !== "ok" && message.type !== "error") return;
    const entry = this.#pending.get(message.id);
    if (!entry) return; // e.g. an error with id null (auth_timeout): the close follows
    this.#pending.delete(message.id);
    clearTimeout(entry.timer);
    if (message.type === "ok") {
      entry.resolve(message.data ?? {});
    } else {
      const { type: _type, id: _id, code, message: text, ...extra } = message;
      entry.reject(new SignalingError(String(code), text, extra));
    }
  }

  #onEvent(name, data) {
    if (name === "admitted") {
      if (this.#phase === "waiting") {
        this.#waitFields = null;
        this.#admitted(data, false);
      }
      return;
    }
    if (name === "lesson_ended") this.#endReason = "ended";
    if (name === "session_replaced") this.#endReason = "replaced";
    if (name === "removed" || name === "denied") {
      this.#endReason = name;
      this.#endData = data;
    }
    this.dispatchEvent(new CustomEvent("event", { detail: { event: name, data } }));
  }

  #onClose(ws, event) {
    if (ws !== this.#ws) return;
    this.#ws = null;
    this.#stopHeartbeat();
    this.#rejectPending(ws, event.code);
    // A join or resume attempt handles its own failure.
    if (this.#phase !== "admitted" && this.#phase !== "waiting") return;
    const reason =
      this.#endReason ?? (this.#leaving ? "left" : STAY_CLOSED[/** @type {any} */ (event.code)]);
    if (reason) {
      this.#finish(reason, event.code);
      return;
    }
    this.#startReconnect(false);
  }

  #rejectPending(ws, closeCode) {
    for (const [id, entry] of this.#pending) {
      if (entry.ws !== ws) continue;
      this.#pending.delete(id);
      clearTimeout(entry.timer);
      entry.reject(new SignalingError("connection_lost", "closed", { closeCode }));
    }
  }

  /** Forget the current socket without waiting for its close handshake (it may be dead). */
  #discardSocket(code) {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    this.#stopHeartbeat();
    this.#rejectPending(ws, code);
    try {
      ws.close(code);
    } catch {
      /* already closed */
    }
  }

  /** A join answer: in the lesson, or in the waiting room. */
  #joined(data, fields, resumed) {
    if (data?.waiting === true) this.#wait(data, fields);
    else {
      this.#waitFields = null;
      this.#admitted(data, resumed);
    }
  }

  #wait(data, fields) {
    this.#waitFields = fields;
    sessionStore.remove(this.#storageKey);
    this.#phase = "waiting";
    this.#setState("waiting");
    this.#startHeartbeat();
    this.dispatchEvent(new CustomEvent("waiting", { detail: { data } }));
  }

  #admitted(data, resumed) {
    if (typeof data.resume_token === "string" && data.resume_token) {
      sessionStore.set(this.#storageKey, data.resume_token);
    } else {
      sessionStore.remove(this.#storageKey);
    }
    this.#phase = "admitted";
    this.#setState("connected");
    this.#startHeartbeat();
    this.dispatchEvent(new CustomEvent("session", { detail: { data, resumed } }));
  }

  #startHeartbeat() {
    this.#stopHeartbeat();
    this.#heartbeat = setInterval(() => this.#ping(), PING_INTERVAL_MS);
  }

  #stopHeartbeat() {
    clearInterval(this.#heartbeat);
    this.#heartbeat = 0;
    this.#pingInFlight = false;
  }

  #ping() {
    const ws = this.#ws;
    const alive = this.#phase === "admitted" || this.#phase === "waiting";
    if (this.#pingInFlight || !alive || !ws) return;
    this.#pingInFlight = true;
    const timer = setTimeout(() => {
      if (ws === this.#ws) this.reconnect("ping unanswered");
    }, PING_TIMEOUT_MS);
    this.#send(ws, "ping", {}, 0)
      .catch(() => {}) // an error response is an answer too
      .finally(() => {
        clearTimeout(timer);
        if (ws === this.#ws) this.#pingInFlight = false;
      });
  }

  #resumeFields() {
    const token = sessionStore.get(this.#storageKey);
    if (token) return { resume: token };
    return this.#fallbackJoin ? this.#fallbackJoin() : null;
  }

  #startReconnect(immediately) {
    if (this.#phase === "reconnecting" || this.#phase === "closed") return;
    this.#phase = "reconnecting";
    this.#setState("reconnecting");
    this.#reconnectLoop(immediately);
  }

  async #reconnectLoop(immediately) {
    let attempt = 0;
    let delay = immediately ? 0 : backoffDelay(attempt++);
    while (this.#phase === "reconnecting") {
      if (delay > 0) {
        await Promise.race([sleep(delay), new Promise((wake) => (this.#wake = wake))]);
        this.#wake = null;
        if (this.#phase !== "reconnecting") return;
      }
      const fields = this.#waitFields ?? this.#resumeFields();
      if (!fields) {
        this.#finish("resume_failed", 0);
        return;
      }
      try {
        await this.#open();
        const data = await this.#sendJoin(fields);
        if (this.#phase !== "reconnecting") return;
        this.#joined(data, fields, Boolean(fields.resume));
        return;
      } catch (error) {
        this.#discardSocket(1000);
        if (this.#phase !== "reconnecting") return;
        const failure = asSignalingError(error);
        const closeCode = failure.extra.closeCode;
        if (fields.resume && RESUME_REFUSED.has(failure.code)) {
          sessionStore.remove(this.#storageKey);
          delay = 0; // join afresh with the fallback (teacher) or give up (student)
          continue;
        }
        if (failure.code === "lesson_ended" || closeCode === 4003) {
          this.#finish("ended", closeCode ?? 0);
          return;
        }
        if (closeCode === 4002 || closeCode === 4005 || closeCode === 4006) {
          this.#finish(this.#endReason ?? STAY_CLOSED[closeCode], closeCode);
          return;
        }
        if (this.#waitFields && JOIN_REFUSED.has(failure.code)) {
          this.#endData = { code: failure.code };
          this.#finish("refused", 0);
          return;
        }
        if (failure.code === "bad_token") {
          this.#finish("bad_token", 0);
          return;
        }
        delay =
          failure.code === "rate_limited"
            ? Math.max(1, Number(failure.extra.retry_after) || 1) * 1000
            : backoffDelay(attempt++);
      }
    }
  }

  #finish(reason, code, notify = true) {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#wake?.();
    this.#discardSocket(1000);
    if (reason !== "policy") sessionStore.remove(this.#storageKey);
    this.#setState("closed");
    const data = this.#endData;
    if (notify) this.dispatchEvent(new CustomEvent("closed", { detail: { reason, code, data } }));
  }
}

/**
 * @param {unknown} error
 * @returns {SignalingError}
 */
function asSignalingError(error) {
  if (error instanceof SignalingError) return error;
  return new SignalingError("internal", String(error));
}
