/**
 * The other participants of the lesson and the state of their tracks, kept from the join
 * response (`participants`, `producers`) and the server's events (protocol.md, "Events").
 *
 * Dispatches `change` after anything changed.
 */

/**
 * @typedef {{producer: string, paused: boolean}} TrackInfo
 * @typedef {{id: string, name: string, role: string, state: string,
 *            link: "ok" | "weak" | "audio_only",
 *            audio: TrackInfo | null, video: TrackInfo | null}} Participant
 *
 * `link` is what the server says of the participant's downlink (`ok`, `weak`, `audio_only`;
 * docs/protocol.md, "Downlink"); a description without it keeps the last one known.
 */

import { parseLink } from "./downlink.js";

/** Events this roster understands. */
export const ROSTER_EVENTS = Object.freeze([
  "participant_joined",
  "participant_left",
  "participant_updated",
  "track_published",
  "track_state",
  "track_unpublished",
]);

/**
 * "on", "off" (paused) or "none" (not published) for one kind of a participant's tracks.
 * @param {Participant} participant
 * @param {"audio" | "video"} kind
 * @returns {"on" | "off" | "none"}
 */
export function trackState(participant, kind) {
  const track = participant[kind];
  if (!track) return "none";
  return track.paused ? "off" : "on";
}

/** The participants other than oneself, in the order they joined. */
export class Roster extends EventTarget {
  /** @type {Map<string, Participant>} */
  #people = new Map();
  #selfId = null;

  /**
   * Start over from a join (or resume) response.
   * @param {object} data the join response data
   */
  reset(data) {
    this.#selfId = data.participant?.id ?? null;
    this.#people.clear();
    for (const person of data.participants ?? []) this.#upsert(person);
    for (const producer of data.producers ?? []) this.#setTrack(producer);
    this.#changed();
  }

  /**
   * Apply one server event.
   * @param {string} name the event name
   * @param {any} data the event data
   * @returns {boolean} whether the event was a roster event
   */
  apply(name, data) {
    if (!ROSTER_EVENTS.includes(name) || !data || typeof data !== "object") return false;
    switch (name) {
      case "participant_joined":
      case "participant_updated":
        this.#upsert(data);
        break;
      case "participant_left":
        this.#people.delete(data.id);
        break;
      case "track_published":
      case "track_state":
        this.#setTrack(data);
        break;
      case "track_unpublished": {
        const person = this.#people.get(data.participant);
        const kind = kindOf(data.kind);
        if (person && person[kind]?.producer === data.id) person[kind] = null;
        break;
      }
    }
    this.#changed();
    return true;
  }

  /**
   * @param {string} id
   * @returns {Participant | undefined}
   */
  get(id) {
    return this.#people.get(id);
  }

  /** @returns {Participant[]} everyone else, in join order */
  list() {
    return [...this.#people.values()];
  }

  /**
   * The teacher the class should watch: a connected one first (a teacher who rejoined with the
   * token while the old connection is still in its grace period appears twice), else the first.
   * @returns {Participant | undefined}
   */
  teacher() {
    const teachers = this.list().filter((person) => person.role === "teacher");
    return teachers.find((person) => person.state === "connected") ?? teachers[0];
  }

  /** @returns {Map<string, Participant>} a copy, safe to hand to tests and support */
  snapshot() {
    return new Map(
      this.list().map((person) => [
        person.id,
        {
          ...person,
          audio: person.audio && { ...person.audio },
          video: person.video && { ...person.video },
        },
      ]),
    );
  }

  #upsert(data) {
    if (typeof data.id !== "string" || data.id === this.#selfId) return;
    const known = this.#people.get(data.id);
    this.#people.set(data.id, {
      id: data.id,
      name: typeof data.name === "string" ? data.name : (known?.name ?? ""),
      role: typeof data.role === "string" ? data.role : (known?.role ?? "student"),
      state:
        data.state === "reconnecting" || data.state === "connected"
          ? data.state
          : (known?.state ?? "connected"),
      link: parseLink(data.link, known?.link ?? "ok"),
      audio: known?.audio ?? null,
      video: known?.video ?? null,
    });
  }

  #setTrack(data) {
    const person = this.#people.get(data.participant);
    if (!person || typeof data.id !== "string") return;
    person[kindOf(data.kind)] = { producer: data.id, paused: data.paused === true };
  }

  #changed() {
    this.dispatchEvent(new Event("change"));
  }
}

function kindOf(kind) {
  return kind === "video" ? "video" : "audio";
}
