/**
 * The list of everyone in the lesson, with their connection and track states, raised hands and
 * downlink (`data-state`, `data-audio`, `data-video`, `data-hand`, `data-link` on each item,
 * for people and for tests alike) and, for the teacher and moderators, a menu of actions on each
 * participant. A weak link or audio only shows as a tag under the name (`participant-link`).
 */

import { create, show } from "./dom.js";
import { linkBadge } from "./downlink.js";
import { setText, setTitle, t } from "./i18n.js";
import { initialOf, personName } from "./names.js";
import { participantMenu } from "./moderation.js";
import { trackState } from "./roster.js";

/** Notes under a name, by role (students have none). */
const ROLE_NOTES = {
  teacher: "participant.role_teacher",
  moderator: "participant.role_moderator",
  guest: "participant.role_guest",
};

/** The `participant-list` `<ul>`: one item per other participant, kept in join order. */
export class ParticipantList {
  /** @type {Map<string, HTMLLIElement>} */
  #items = new Map();
  /** @type {Map<HTMLLIElement, ReturnType<typeof participantMenu>>} */
  #menus = new Map();
  /** @type {Set<string>} */
  hands = new Set();

  /**
   * @param {HTMLElement} list the `participant-list` `<ul>`
   * @param {HTMLElement} count the `participant-count` element
   * @param {Parameters<typeof participantMenu>[0] | null} [actions] offer staff actions
   */
  constructor(list, count, actions = null) {
    this.list = list;
    this.count = count;
    this.actions = actions;
    this.empty = /** @type {HTMLLIElement} */ (create("li", { className: "list-empty" }));
    setText(this.empty, "teacher.no_students");
    list.append(this.empty);
  }

  /**
   * Draw the list.
   * @param {import("./roster.js").Participant[]} people everyone but oneself, in join order
   * @param {string[]} [hands] raised hands (participant ids)
   */
  render(people, hands = []) {
    this.hands = new Set(hands);
    const ids = new Set(people.map((person) => person.id));
    for (const [id, item] of this.#items) {
      if (!ids.has(id)) {
        item.remove();
        this.#items.delete(id);
        this.#menus.delete(item);
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
        create("span", { className: "tag tag-warn link-tag", testId: "participant-link" }, [
          create("span", { className: "icon icon-signal-weak", attrs: { "aria-hidden": "true" } }),
          create("span", { className: "link-text" }),
        ]),
      ]),
      create("span", { className: "participant-icons" }, [
        create("span", { className: "icon icon-hand status-hand", testId: "participant-hand" }),
        create("span", { className: "icon status-audio" }),
        create("span", { className: "icon status-video" }),
      ]),
    );
    if (this.actions) {
      const menu = participantMenu(this.actions);
      this.#menus.set(item, menu);
      item.append(menu.element);
    }
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
    const shown = personName(person, t("participant.role_teacher"));
    name.textContent = shown;
    name.title = shown;
    const avatar = /** @type {HTMLElement} */ (item.querySelector(".participant-avatar"));
    avatar.textContent = initialOf(shown);
    const hand = this.hands?.has(person.id) ?? false;
    item.dataset.hand = hand ? "true" : "false";
    const handIcon = /** @type {HTMLElement} */ (item.querySelector(".status-hand"));
    show(handIcon, hand);
    setTitle(handIcon, "participant.hand_raised");
    this.#menus.get(item)?.update(person, hand);
    const note = /** @type {HTMLElement} */ (item.querySelector(".participant-note"));
    const roleNote = ROLE_NOTES[/** @type {keyof ROLE_NOTES} */ (person.role)];
    if (person.state === "reconnecting") setText(note, "participant.reconnecting");
    else if (roleNote) setText(note, roleNote);
    else {
      note.textContent = "";
      delete note.dataset.i18n;
    }
    item.dataset.link = person.link ?? "ok";
    const link = /** @type {HTMLElement} */ (item.querySelector(".link-tag"));
    const badge = linkBadge(person.link);
    link.dataset.link = person.link ?? "ok";
    show(link, Boolean(badge));
    if (badge) {
      setText(/** @type {HTMLElement} */ (link.querySelector(".link-text")), badge.label);
      setTitle(link, badge.title);
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
