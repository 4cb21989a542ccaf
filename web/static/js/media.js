/**
 * The two peer connections of one signaling session (docs/protocol.md: `publish`, `subscribe`,
 * `answer`, `ice`).
 *
 * - **publish**: the client offers, with one send-only transceiver per local track; the server
 *   answers and names a producer per track. Adding a track later renegotiates the same
 *   connection (a second `publish`).
 * - **subscribe**: the server always offers (in the `subscribe` response or an `offer` event) and
 *   lists its consumers; each consumer's `mid` says whose track arrives on which transceiver.
 *
 * Candidates are trickled with `ice` after the matching request has been answered, so the server
 * always has the transport they belong to. No STUN or TURN server is configured, ever: the
 * server's own host candidates are all a lesson needs, and a public STUN server would leak the
 * school's addresses to a third party.
 *
 * Events: `tracks` (remote tracks changed: read `remoteTracks()`), `problem` (a connection
 * failed, or stayed disconnected for 5 s: the caller resumes), `error` (detail.code: a request
 * the server refused, e.g. `unsupported_codec`).
 */

/** How long a peer connection may stay `disconnected` before the session resumes. */
const DISCONNECTED_GRACE_MS = 5_000;

/**
 * Whether this browser can take part in a lesson at all.
 * @returns {boolean}
 */
export function hasWebRTC() {
  return (
    typeof window.RTCPeerConnection === "function" &&
    typeof navigator.mediaDevices?.getUserMedia === "function"
  );
}

/**
 * A peer connection with the ICE servers the server named (its TURN relay, with credentials
 * minted for this participant), and never any other: no public STUN server.
 * @param {Array<RTCIceServer>} [iceServers] the join response's `ice_servers`
 * @returns {RTCPeerConnection}
 */
export function createPeerConnection(iceServers = []) {
  return new RTCPeerConnection({ iceServers: usableIceServers(iceServers) });
}

/**
 * The `ice_servers` entries a browser can take: `turn:`/`turns:` (or `stun:`) URLs with their
 * credentials; anything else is left out rather than failing the peer connection.
 * @param {unknown} servers
 * @returns {Array<RTCIceServer>}
 */
export function usableIceServers(servers) {
  if (!Array.isArray(servers)) return [];
  const usable = [];
  for (const server of servers) {
    const urls = (Array.isArray(server?.urls) ? server.urls : [server?.urls]).filter(
      (url) => typeof url === "string" && /^(turns?|stun):/.test(url),
    );
    if (urls.length === 0) continue;
    const entry = { urls };
    if (typeof server.username === "string") entry.username = server.username;
    if (typeof server.credential === "string") entry.credential = server.credential;
    usable.push(entry);
  }
  return usable;
}

/**
 * Whether a trickled candidate is worth sending: the server ignores TCP and mDNS (`.local`)
 * candidates (protocol.md, `ice`), so the client does not spend messages on them.
 * @param {string} line the `candidate:…` attribute
 * @returns {boolean}
 */
export function usefulCandidate(line) {
  const parts = line.split(/\s+/);
  const protocol = (parts[2] ?? "").toLowerCase();
  const address = (parts[4] ?? "").toLowerCase();
  return protocol === "udp" && !address.endsWith(".local");
}

/**
 * @typedef {{id?: string, producer?: string, participant: string, kind: string, mid: string}}
 *   Consumer
 */

/**
 * The consumers in force after an offer. An offer may list only the consumers it adds (the
 * server sends the new ones), so earlier consumers are kept, replaced when their `mid` is
 * reused, and dropped once their transceiver no longer receives (the m-line went inactive or
 * was rejected).
 * @param {Consumer[]} known the consumers before the offer
 * @param {unknown} offered the offer's `consumers`
 * @param {RTCRtpTransceiver[]} transceivers after the answer was applied
 * @returns {Consumer[]}
 */
export function mergeConsumers(known, offered, transceivers) {
  const byMid = new Map(known.map((consumer) => [String(consumer.mid), consumer]));
  for (const consumer of Array.isArray(offered) ? offered : []) {
    if (consumer && typeof consumer.participant === "string" && consumer.mid != null) {
      byMid.set(String(consumer.mid), consumer);
    }
  }
  const receiving = new Set(
    transceivers
      .filter((t) => {
        const direction = t.currentDirection ?? t.direction;
        return !t.stopped && (direction === "recvonly" || direction === "sendrecv");
      })
      .map((t) => t.mid),
  );
  return [...byMid.values()].filter((consumer) => receiving.has(String(consumer.mid)));
}

/** Send-side bitrate caps per role: a phone on mobile data receives the teacher's video. */
export const BITRATES = Object.freeze({
  teacher: { video: 600_000, audio: 48_000 },
  student: { video: 250_000, audio: 32_000 },
});

/** The publish and subscribe peer connections of one signaling session. */
export class MediaSession extends EventTarget {
  #request;
  #bitrates;
  #iceServers;
  /** @type {RTCPeerConnection | null} */
  #publishPc = null;
  /** @type {RTCPeerConnection | null} */
  #subscribePc = null;
  /** @type {Map<string, RTCRtpSender>} kind → sender */
  #senders = new Map();
  /** @type {Map<string, string>} kind → producer id */
  #producers = new Map();
  /** @type {Set<string>} kinds the server started paused (the lesson does not allow them) */
  #pausedByServer = new Set();
  /** @type {Consumer[]} */
  #consumers = [];
  #offers = Promise.resolve();
  #publishes = Promise.resolve();
  #held = { publish: [], subscribe: [] };
  #flowing = { publish: false, subscribe: false };
  #timers = new Set();
  #problem = false;
  #closed = false;

  /**
   * @param {object} options
   * @param {(type: string, fields?: object) => Promise<any>} options.request sends one request
   * @param {{video: number, audio: number}} [options.bitrates] send caps in bits per second
   */
  constructor({ request, bitrates = BITRATES.student, iceServers = [] }) {
    super();
    this.#request = request;
    this.#bitrates = bitrates;
    this.#iceServers = iceServers;
  }

  /** @returns {{publish: RTCPeerConnection | null, subscribe: RTCPeerConnection | null}} */
  get pcs() {
    return { publish: this.#publishPc, subscribe: this.#subscribePc };
  }

  /**
   * The server's producer id for our own `kind` track, once published.
   * @param {"audio" | "video"} kind
   * @returns {string | null}
   */
  producerId(kind) {
    return this.#producers.get(kind) ?? null;
  }

  /**
   * Whether the server started our `kind` track paused (protocol.md, "Moderation": a track the
   * lesson does not let this participant use).
   * @param {"audio" | "video"} kind
   * @returns {boolean}
   */
  pausedByServer(kind) {
    return this.#pausedByServer.has(kind);
  }

  /**
   * Publish the tracks of `stream` not published yet (the first call offers, later calls
   * renegotiate). Calls are queued.
   * @param {MediaStream} stream
   * @returns {Promise<void>}
   * @throws {import("./signaling.js").SignalingError} the server refused the offer
   */
  publish(stream) {
    const run = () => this.#publish(stream);
    const next = this.#publishes.then(run, run);
    this.#publishes = next.catch(() => {});
    return next;
  }

  /**
   * Ask for the server's offer and apply it (`subscribe`). Later offers come as events: pass
   * them to `handleOffer`.
   * @returns {Promise<void>}
   */
  async subscribe() {
    const data = await this.#request("subscribe", {});
    // A failure to apply the offer is reported once, as an `error` event, by handleOffer.
    if (data?.sdp) await this.handleOffer(data).catch(() => {});
  }

  /**
   * Apply one server offer and answer it with its `version`. Offers are applied in order.
   * @param {{sdp: string, version: number, consumers: Array<object>}} offer
   * @returns {Promise<void>}
   */
  handleOffer(offer) {
    const run = () => this.#applyOffer(offer);
    const next = this.#offers.then(run, run);
    this.#offers = next.catch((error) => this.#reportError(error));
    return next;
  }

  /**
   * The tracks received per participant, from the current consumers.
   * @returns {Map<string, {audio: MediaStreamTrack | null, video: MediaStreamTrack | null}>}
   */
  remoteTracks() {
    const result = new Map();
    const pc = this.#subscribePc;
    if (!pc) return result;
    const transceivers = pc.getTransceivers();
    for (const consumer of this.#consumers) {
      const transceiver = transceivers.find((t) => t.mid === String(consumer.mid));
      const track = transceiver?.receiver?.track;
      if (!track) continue;
      const entry = result.get(consumer.participant) ?? { audio: null, video: null };
      entry[consumer.kind === "video" ? "video" : "audio"] = track;
      result.set(consumer.participant, entry);
    }
    return result;
  }

  /** Close both peer connections (local tracks are left running for the next session). */
  close() {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#publishPc?.close();
    this.#subscribePc?.close();
  }

  // -- internals -------------------------------------------------------------------------

  async #publish(stream) {
    if (this.#closed) return;
    const first = !this.#publishPc;
    const pc = this.#publishPc ?? (this.#publishPc = this.#createPc("publish"));
    const added = [];
    for (const track of stream.getTracks()) {
      const sender = this.#senders.get(track.kind);
      if (sender) {
        if (sender.track !== track) await sender.replaceTrack(track);
        continue;
      }
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      this.#senders.set(track.kind, transceiver.sender);
      added.push(transceiver);
    }
    if (!added.length) return;
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const data = await this.#request("publish", { sdp: pc.localDescription.sdp });
      if (this.#closed) return;
      await pc.setRemoteDescription({ type: "answer", sdp: data.sdp });
      for (const producer of data.producers ?? []) {
        const kind = this.#producerKind(pc, producer);
        this.#producers.set(kind, producer.id);
        if (producer.paused === true) this.#pausedByServer.add(kind);
      }
    } catch (error) {
      if (this.#closed) return;
      await this.#undoPublish(pc, added, first);
      throw error;
    }
    this.#release("publish");
    for (const transceiver of added) await this.#capBitrate(transceiver.sender);
  }

  #producerKind(pc, producer) {
    if (producer.mid !== undefined && producer.mid !== null) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === String(producer.mid));
      const kind = transceiver?.sender?.track?.kind;
      if (kind) return kind;
    }
    return producer.kind === "video" ? "video" : "audio";
  }

  /** A refused offer: forget the new senders so a later `publish` can try again. */
  async #undoPublish(pc, added, first) {
    for (const transceiver of added) this.#senders.delete(transceiver.sender.track?.kind ?? "");
    if (first) {
      pc.close();
      this.#publishPc = null;
      this.#flowing.publish = false;
      this.#held.publish = [];
      return;
    }
    try {
      if (pc.signalingState === "have-local-offer") {
        await pc.setLocalDescription({ type: "rollback" });
      }
      for (const transceiver of added) transceiver.stop?.();
    } catch {
      /* the connection is past saving: the next failure state resumes the session */
    }
  }

  async #capBitrate(sender) {
    const kind = sender.track?.kind;
    const cap = kind ? this.#bitrates[kind] : 0;
    if (!cap || typeof sender.getParameters !== "function") return;
    try {
      const parameters = sender.getParameters();
      if (!parameters.encodings?.length) return;
      parameters.encodings[0].maxBitrate = cap;
      await sender.setParameters(parameters);
    } catch {
      /* a browser that cannot cap sends at its own rate */
    }
  }

  async #applyOffer({ sdp, version, consumers }) {
    if (this.#closed || !sdp) return;
    const pc = this.#subscribePc ?? (this.#subscribePc = this.#createPc("subscribe"));
    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    this.#consumers = mergeConsumers(this.#consumers, consumers, pc.getTransceivers());
    this.dispatchEvent(new Event("tracks"));
    try {
      await this.#request("answer", { sdp: pc.localDescription.sdp, version });
    } catch (error) {
      if (error?.code !== "bad_version") throw error; // a newer offer is on its way
    }
    this.#release("subscribe");
  }

  #createPc(name) {
    const pc = createPeerConnection(this.#iceServers);
    pc.addEventListener("icecandidate", (event) => this.#onCandidate(name, event.candidate));
    pc.addEventListener("track", () => this.dispatchEvent(new Event("tracks")));
    this.#watch(name, pc);
    return pc;
  }

  #onCandidate(name, candidate) {
    if (this.#closed) return;
    let payload = null;
    if (candidate) {
      if (!candidate.candidate) return; // a per-generation marker; the final null follows
      if (!usefulCandidate(candidate.candidate)) return;
      payload = {
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid,
        sdpMLineIndex: candidate.sdpMLineIndex,
      };
    }
    if (!this.#flowing[name]) {
      this.#held[name].push(payload);
      return;
    }
    this.#sendCandidate(name, payload);
  }

  /** The request for `name` has been answered: candidates may flow to the server. */
  #release(name) {
    if (this.#flowing[name]) return;
    this.#flowing[name] = true;
    const held = this.#held[name];
    this.#held[name] = [];
    for (const payload of held) this.#sendCandidate(name, payload);
  }

  #sendCandidate(name, candidate) {
    this.#request("ice", { pc: name, candidate }).catch(() => {
      /* an unusable candidate costs nothing: ICE goes on with the others */
    });
  }

  #watch(name, pc) {
    let timer = 0;
    const check = () => {
      if (this.#closed) return;
      const state = pc.connectionState ?? pc.iceConnectionState;
      if (state === "failed") {
        this.#reportProblem(name, state);
      } else if (state === "disconnected") {
        if (timer) return;
        timer = setTimeout(() => {
          this.#timers.delete(timer);
          timer = 0;
          const now = pc.connectionState ?? pc.iceConnectionState;
          if (now === "disconnected" || now === "failed") this.#reportProblem(name, now);
        }, DISCONNECTED_GRACE_MS);
        this.#timers.add(timer);
      } else if (timer) {
        clearTimeout(timer);
        this.#timers.delete(timer);
        timer = 0;
      }
    };
    pc.addEventListener("connectionstatechange", check);
    pc.addEventListener("iceconnectionstatechange", check);
  }

  #reportProblem(name, state) {
    if (this.#problem || this.#closed) return;
    this.#problem = true;
    this.dispatchEvent(new CustomEvent("problem", { detail: { pc: name, state } }));
  }

  #reportError(error) {
    if (this.#closed) return;
    const code = error?.code ?? "internal";
    if (code === "connection_lost") return; // the signaling client is already resuming
    console.warn("lophoc: subscribe failed:", code);
    this.dispatchEvent(new CustomEvent("error", { detail: { code } }));
  }
}
