/**
 * The teacher's paged grid of students.
 *
 * Forty cameras must not all play at once on the teacher's laptop (nor cost the server forty
 * forwarded videos), so the grid shows one page of students and tells the server, with `view`,
 * whose video to forward: after every page change and every change of who is on the page.
 * Everyone's audio still plays: a student who is not shown in a tile with video is heard through
 * an `<audio>` element.
 *
 * A tile never shows a frozen frame as live: each tile's video is watched for new frames
 * (freeze.js) and, when they stop while the camera is on, the student's initial covers it
 * (`data-frozen="true"` on the tile). A student on a weak downlink gets a tag on the tile.
 */

import { create, show } from "./dom.js";
import { linkBadge } from "./downlink.js";
import { watchFrames } from "./freeze.js";
import { setText, setTitle } from "./i18n.js";
import { initialOf, showNameEnd } from "./names.js";
import { trackState } from "./roster.js";

export const DEFAULT_PAGE_SIZE = 6;
const MAX_PAGE_SIZE = 100; // the protocol's limit of ids in one `view`

/**
 * The page size: `?page_size=N` (1–100, for tests and big screens), else 6.
 * @param {string} search `location.search`
 * @returns {number}
 */
export function pageSizeFrom(search) {
  const size = Number.parseInt(new URLSearchParams(search).get("page_size") ?? "", 10);
  return size >= 1 && size <= MAX_PAGE_SIZE ? size : DEFAULT_PAGE_SIZE;
}

/**
 * Split a list into pages.
 * @template T
 * @param {T[]} items
 * @param {number} size
 * @param {number} wanted the page asked for (0-based; clamped)
 * @returns {{items: T[], page: number, pages: number}}
 */
export function paginate(items, size, wanted) {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const page = Math.min(Math.max(0, wanted), pages - 1);
  return { items: items.slice(page * size, (page + 1) * size), page, pages };
}


/** One page of students' tiles, the pager, and the audio of everyone not shown with video. */
export class StudentGrid {
  #page = 0;
  /**
   * @type {Map<string, {element: HTMLElement, video: HTMLVideoElement | null, wanted: boolean,
   *                     watcher: {stop: () => void} | null}>}
   */
  #tiles = new Map();
  /** @type {Map<string, HTMLAudioElement>} */
  #audio = new Map();
  #lastView = null;
  /** @type {import("./session.js").LessonSession | null} */
  #session = null;

  /**
   * @param {object} parts
   * @param {HTMLElement} parts.grid the `student-grid` element
   * @param {HTMLElement} parts.empty shown while no student has joined
   * @param {HTMLButtonElement} parts.prev `grid-prev`
   * @param {HTMLButtonElement} parts.next `grid-next`
   * @param {HTMLElement} parts.label `grid-page` ("1 / 3")
   * @param {HTMLElement} parts.audio container of the audio elements
   * @param {import("./playback.js").Playback} parts.playback
   * @param {number} parts.pageSize
   */
  constructor(parts) {
    this.parts = parts;
    this.pageSize = parts.pageSize;
    parts.prev.addEventListener("click", () => this.#turn(-1));
    parts.next.addEventListener("click", () => this.#turn(1));
  }

  /** A new signaling session: the server forgot the last `view`, send it again. */
  reset() {
    this.#lastView = null;
  }

  /**
   * Draw the current page and send `view` if who is on it changed.
   * @param {import("./session.js").LessonSession} session
   */
  render(session) {
    this.#session = session;
    const students = session.roster.list().filter((person) => person.role !== "teacher");
    const { items, page, pages } = paginate(students, this.pageSize, this.#page);
    this.#page = page;
    this.#drawTiles(items);
    this.parts.label.textContent = `${page + 1} / ${pages}`;
    this.parts.prev.disabled = page === 0;
    this.parts.next.disabled = page >= pages - 1;
    show(this.parts.empty, students.length === 0);
    this.parts.grid.dataset.count = String(items.length);
    this.#sendView(
      session,
      items.map((person) => person.id),
    );
    this.renderMedia(session);
  }

  /**
   * Put each student's received media in their tile (audio and video together) or, when they
   * have no video tile, in an audio element.
   * @param {import("./session.js").LessonSession} session
   */
  renderMedia(session) {
    const { playback } = this.parts;
    const present = new Set();
    for (const person of session.roster.list()) {
      present.add(person.id);
      const received = session.remote(person.id);
      const tile = this.#tiles.get(person.id);
      if (tile?.video) {
        playback.attach(tile.video, received?.stream ?? null);
        tile.element.classList.toggle("has-picture", Boolean(received?.video));
        tile.wanted = Boolean(received?.video) && trackState(person, "video") === "on";
        this.#setAudio(person.id, null);
      } else {
        this.#setAudio(person.id, received?.audioOnly ?? null);
      }
    }
    for (const id of [...this.#audio.keys()]) if (!present.has(id)) this.#setAudio(id, null);
  }

  /** Drop every tile and audio element (the lesson is over). */
  clear() {
    for (const id of [...this.#audio.keys()]) this.#setAudio(id, null);
    for (const tile of this.#tiles.values()) {
      tile.watcher?.stop();
      tile.element.remove();
    }
    this.#tiles.clear();
    this.#session = null;
  }

  #turn(step) {
    this.#page += step;
    if (this.#session) this.render(this.#session);
  }

  #sendView(session, ids) {
    const key = JSON.stringify(ids);
    if (key === this.#lastView) return;
    this.#lastView = key;
    session.setView(ids);
  }

  #drawTiles(people) {
    const wanted = new Set(people.map((person) => person.id));
    for (const [id, tile] of this.#tiles) {
      const person = people.find((p) => p.id === id);
      const withVideo = person ? trackState(person, "video") !== "none" : false;
      if (!wanted.has(id) || withVideo !== Boolean(tile.video)) {
        if (tile.video) this.parts.playback.attach(tile.video, null);
        tile.watcher?.stop();
        tile.element.remove();
        this.#tiles.delete(id);
      }
    }
    people.forEach((person, index) => {
      let tile = this.#tiles.get(person.id);
      if (!tile) {
        tile = this.#createTile(person);
        this.#tiles.set(person.id, tile);
      }
      this.#updateTile(tile.element, person);
      if (this.parts.grid.children[index] !== tile.element) {
        this.parts.grid.insertBefore(tile.element, this.parts.grid.children[index] ?? null);
      }
    });
  }

  #createTile(person) {
    const withVideo = trackState(person, "video") !== "none";
    const element = create("div", {
      className: withVideo ? "tile" : "tile tile-name-only",
      testId: withVideo ? "tile" : "name-tile",
    });
    element.dataset.participant = person.id;
    element.dataset.frozen = "false";
    let video = null;
    if (withVideo) {
      video = /** @type {HTMLVideoElement} */ (
        create("video", { className: "tile-video", attrs: { playsinline: "", autoplay: "" } })
      );
      element.append(video);
    }
    element.append(
      create("span", { className: "tile-avatar", attrs: { "aria-hidden": "true" } }),
      create("span", { className: "tile-state" }),
      create("div", { className: "tile-bar" }, [
        create("span", { className: "tile-name" }),
        create("span", {
          className: "tile-mic icon icon-mic-off",
          attrs: { "aria-hidden": "true" },
        }),
      ]),
      create("span", { className: "tag tag-warn link-tag tile-link", testId: "tile-link" }, [
        create("span", { className: "icon icon-signal-weak", attrs: { "aria-hidden": "true" } }),
        create("span", { className: "link-text" }),
      ]),
    );
    const tile = { element, video, wanted: false, watcher: null };
    if (video) {
      tile.watcher = watchFrames(video, {
        wanted: () => tile.wanted,
        receiver: (track) =>
          this.#session
            ?.pcs()
            .subscribe?.getReceivers()
            .find((receiver) => receiver.track === track) ?? null,
        onChange: (state) => {
          element.dataset.frozen = state === "frozen" ? "true" : "false";
          this.#updateState(element);
        },
      });
    }
    return tile;
  }

  #updateTile(element, person) {
    element.dataset.state = person.state;
    element.dataset.audio = trackState(person, "audio");
    element.dataset.video = trackState(person, "video");
    const part = (selector) => /** @type {HTMLElement} */ (element.querySelector(selector));
    showNameEnd(part(".tile-name"), person.name);
    part(".tile-avatar").textContent = initialOf(person.name);
    element.dataset.link = person.link ?? "ok";
    const link = part(".tile-link");
    const badge = linkBadge(person.link);
    link.dataset.link = person.link ?? "ok";
    show(link, Boolean(badge));
    if (badge) {
      setText(/** @type {HTMLElement} */ (link.querySelector(".link-text")), badge.label);
      setTitle(link, badge.title);
    }
    this.#updateState(element);
  }

  /** The line at the tile's top: reconnecting, camera off, or video paused (frozen). */
  #updateState(element) {
    const state = /** @type {HTMLElement} */ (element.querySelector(".tile-state"));
    const { state: connection, video, frozen } = element.dataset;
    if (connection === "reconnecting") setText(state, "participant.reconnecting");
    else if (video === "off") setText(state, "participant.camera_off");
    else if (frozen === "true") setText(state, "video.frozen");
    else {
      state.textContent = "";
      delete state.dataset.i18n;
    }
  }

  #setAudio(id, stream) {
    const { playback, audio } = this.parts;
    let element = this.#audio.get(id);
    if (!stream) {
      if (element) {
        playback.attach(element, null);
        element.remove();
        this.#audio.delete(id);
      }
      return;
    }
    if (!element) {
      element = /** @type {HTMLAudioElement} */ (create("audio", { attrs: { autoplay: "" } }));
      element.dataset.participant = id;
      audio.append(element);
      this.#audio.set(id, element);
    }
    playback.attach(element, stream);
  }
}
