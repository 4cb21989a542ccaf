/**
 * The teacher's list of everyone in the lesson, with their connection and track states
 * (`data-state`, `data-audio`, `data-video` on each item, for people and for tests alike).
 */

import { create, show } from "./dom.js";
import { setText, setTitle } from "./i18n.js";
import { trackState } from "./roster.js";

/** The `participant-list` `<ul>`: one item per other participant, kept in join order. */
export class ParticipantList {
  /** @type {Map<string, HTMLLIElement>} */
  #items = new Map();

  /**
   * @param {HTMLElement} list the `participant-list` `<ul>`
   * @param {HTMLElement} count the `participant-count` element
   */
  constructor(list, count) {
    this.list = list;
    this.count = count;
    this.empty = /** @type {HTMLLIElement} */ (create("li", { className: "list-empty" }));
    setText(this.empty, "teacher.no_students");
    list.append(this.empty);
  }

  /**
   * Draw the list.
   * @param {import("./roster.js").Participant[]} people everyone but oneself, in join order
   */
  render(people) {
    const ids = new Set(people.map((person) => person.id));
    for (const [id, item] of this.#items) {
      if (!ids.has(id)) {
        item.remove();
        this.#items.delete(id);
      }
    }
    people.forEach((person, index) => {
      let item = this.#items.get(person.id);
      if (!item) {
        item = this.#create(person);
        this.#items.set(person.id, item);
      }
      this.#update(item, person);
      const at = this.list.children[index];
      if (at !== item) this.list.insertBefore(item, at ?? this.empty);
    });
    this.list.append(this.empty);
    show(this.empty, people.length === 0);
    this.count.textContent = String(people.length);
  }

  #create(person) {
    const item = /** @type {HTMLLIElement} */ (
      create("li", { className: "participant", testId: "participant" })
    );
    item.dataset.id = person.id;
    item.append(
      create("span", { className: "participant-avatar", attrs: { "aria-hidden": "true" } }),
      create("span", { className: "participant-text" }, [
        create("span", { className: "participant-name" }),
        create("span", { className: "participant-note" }),
      ]),
      create("span", { className: "participant-icons" }, [
        create("span", { className: "icon status-audio" }),
        create("span", { className: "icon status-video" }),
      ]),
    );
    return item;
  }

  #update(item, person) {
    const audio = trackState(person, "audio");
    const video = trackState(person, "video");
    item.dataset.role = person.role;
    item.dataset.state = person.state;
    item.dataset.audio = audio;
    item.dataset.video = video;
    const name = /** @type {HTMLElement} */ (item.querySelector(".participant-name"));
    name.textContent = person.name;
    const avatar = /** @type {HTMLElement} */ (item.querySelector(".participant-avatar"));
    avatar.textContent = ([...person.name.trim()][0] ?? "?").toLocaleUpperCase();
    const note = /** @type {HTMLElement} */ (item.querySelector(".participant-note"));
    if (person.state === "reconnecting") setText(note, "participant.reconnecting");
    else if (person.role === "teacher") setText(note, "participant.role_teacher");
    else {
      note.textContent = "";
      delete note.dataset.i18n;
    }
    const audioIcon = /** @type {HTMLElement} */ (item.querySelector(".status-audio"));
    audioIcon.className = `icon status-audio icon-${audio === "on" ? "mic" : "mic-off"}`;
    audioIcon.dataset.track = audio;
    setTitle(audioIcon, `participant.audio_${audio}`);
    const videoIcon = /** @type {HTMLElement} */ (item.querySelector(".status-video"));
    videoIcon.className = `icon status-video icon-${video === "on" ? "camera" : "camera-off"}`;
    videoIcon.dataset.track = video;
    setTitle(videoIcon, `participant.video_${video}`);
  }
}
