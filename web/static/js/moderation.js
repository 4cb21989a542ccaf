/**
 * What the teacher and moderators use to keep a lesson safe (docs/protocol.md, "Moderation"):
 * the waiting room, the raised hands, the lesson's settings, actions on one participant,
 * incident alerts, the bans and the moderation log.
 *
 * Each piece builds its own elements inside a container the page provides, so the teacher
 * console and the student page of a moderator share them. The server enforces every rule; these
 * only offer what it would accept and report its refusals through `notify(code, extra)`.
 */

import { openConnectionDetails } from "./connection.js";
import { create, show } from "./dom.js";
import { getLanguage, setAriaLabel, setText, t } from "./i18n.js";
import { confirmAction, panelDialog } from "./dialogs.js";
import { showNameEnd } from "./names.js";

/**
 * @typedef {import("./session.js").LessonSession} LessonSession
 * @typedef {{id: string, name: string, role: string, on_class_list: boolean,
 *            already_connected: boolean}} Knock
 * @typedef {(code: string, extra?: Record<string, any>) => void} Notify
 */

export const PERMISSIONS = Object.freeze(["unmute", "video", "screen", "chat", "private_chat"]);

const PERMISSION_KEYS = {
  unmute: "settings.perm_unmute",
  video: "settings.perm_video",
  screen: "settings.perm_screen",
  chat: "settings.perm_chat",
  private_chat: "settings.perm_private_chat",
};

const WAITING_ROOM_KEYS = {
  everyone: "settings.wr_everyone",
  guests: "settings.wr_guests",
  nobody: "settings.wr_nobody",
};

export const CATEGORY_KEYS = Object.freeze({
  intruder: "incident.cat_intruder",
  harassment: "incident.cat_harassment",
  inappropriate: "incident.cat_inappropriate",
  technical: "incident.cat_technical",
  other: "incident.cat_other",
});

const ACTION_KEYS = {
  admit: "modlog.admit",
  deny: "modlog.deny",
  remove: "modlog.remove",
  ban: "modlog.ban",
  unban: "modlog.unban",
  mute: "modlog.mute",
  stop_video: "modlog.stop_video",
  ask_unmute: "modlog.ask_unmute",
  make_moderator: "modlog.make_moderator",
  revoke_moderator: "modlog.revoke_moderator",
  lock: "modlog.lock",
  unlock: "modlog.unlock",
  set_permissions: "modlog.set_permissions",
  set_waiting_room: "modlog.set_waiting_room",
  chat_off: "modlog.chat_off",
  chat_on: "modlog.chat_on",
  delete_message: "modlog.delete_message",
  lower_hand: "modlog.lower_hand",
  end_lesson: "modlog.end_lesson",
};

/**
 * A small button with a catalogue label.
 * @param {string} testId
 * @param {string} key
 * @param {string} [className]
 * @param {Record<string, string | number>} [params]
 * @returns {HTMLButtonElement}
 */
export function button(testId, key, className = "btn btn-ghost btn-small", params) {
  const element = /** @type {HTMLButtonElement} */ (
    create("button", { className, testId, attrs: { type: "button" } })
  );
  setText(element, key, params);
  return element;
}

/**
 * Run one request from a button: the button is disabled meanwhile, a refusal is reported.
 * @param {HTMLButtonElement | null} control
 * @param {() => Promise<any>} send
 * @param {Notify} notify
 * @returns {Promise<any>} the response data, or undefined after a refusal
 */
export async function run(control, send, notify) {
  if (control) control.disabled = true;
  try {
    return await send();
  } catch (error) {
    notify(error?.code ?? "internal", error?.extra ?? {});
    return undefined;
  } finally {
    if (control) control.disabled = false;
  }
}

function timeOf(iso) {
  const at = typeof iso === "number" ? new Date(iso * 1000) : new Date(String(iso));
  if (Number.isNaN(at.getTime())) return "";
  return at.toLocaleTimeString(getLanguage(), { hour: "2-digit", minute: "2-digit" });
}

// -- the waiting room ------------------------------------------------------------------------

/** The knocks: who waits, with Admit, Deny, Deny and ban; Admit all, Deny all. */
export class WaitingPanel {
  /** @type {Map<string, HTMLElement>} */
  #items = new Map();
  #alertTimer = 0;

  /**
   * @param {HTMLElement} root an empty `<section data-testid="waiting-panel">`
   * @param {{session: () => LessonSession | null, notify: Notify}} options
   */
  constructor(root, { session, notify }) {
    this.root = root;
    this.session = session;
    this.notify = notify;
    root.classList.add("waiting-panel");
    const title = create("h2", { className: "panel-title" });
    const label = create("span");
    setText(label, "waiting_room.heading");
    this.count = create("span", { className: "count count-alert", testId: "waiting-count" });
    title.append(
      create("span", { className: "icon icon-user", attrs: { "aria-hidden": "true" } }),
      label,
      this.count,
    );
    this.admitAll = button(
      "waiting-admit-all",
      "waiting_room.admit_all",
      "btn btn-primary btn-small",
    );
    this.denyAll = button("waiting-deny-all", "waiting_room.deny_all");
    this.list = create("ul", { className: "knock-list", testId: "knock-list" });
    root.append(
      create("div", { className: "panel-head" }, [
        title,
        create("div", { className: "panel-tools" }, [this.admitAll, this.denyAll]),
      ]),
      this.list,
    );
    this.admitAll.addEventListener("click", () =>
      run(this.admitAll, () => this.#request("admit", { participant: "all" }), notify),
    );
    this.denyAll.addEventListener("click", async () => {
      const count = this.#items.size;
      if (!(await confirmAction("waiting_room.deny_all_confirm", { count }))) return;
      run(this.denyAll, () => this.#request("deny", { participant: "all" }), notify);
    });
    this.render();
  }

  /** Draw the knocks from the session. */
  render() {
    const current = this.session();
    const knocks = current && current.isStaff ? [...current.knocks.values()] : [];
    const ids = new Set(knocks.map((knock) => knock.id));
    for (const [id, item] of this.#items) {
      if (!ids.has(id)) {
        item.remove();
        this.#items.delete(id);
      }
    }
    for (const knock of knocks) {
      if (!this.#items.has(knock.id)) {
        const item = this.#create(knock);
        this.#items.set(knock.id, item);
        this.list.append(item);
      }
    }
    this.count.textContent = String(knocks.length);
    // Kept in the layout, only unseen, while one knocks: a second knock showing them must not
    // move the rows under the teacher's finger (an Admit tap landing on another row).
    for (const tool of [this.admitAll, this.denyAll]) {
      tool.disabled = knocks.length < 2;
      tool.classList.toggle("unseen", knocks.length < 2);
    }
    show(this.root, knocks.length > 0);
  }

  /** Draw attention to the panel for a few seconds (someone knocked): no sound. */
  alert() {
    this.root.dataset.alert = "true";
    clearTimeout(this.#alertTimer);
    this.#alertTimer = setTimeout(() => delete this.root.dataset.alert, 6_000);
  }

  #request(type, fields) {
    const current = this.session();
    if (!current) return Promise.reject(new Error("no session"));
    return current.request(type, fields, 15_000);
  }

  /** @param {Knock} knock */
  #create(knock) {
    const item = create("li", { className: "knock", testId: "knock" });
    item.dataset.id = knock.id;
    item.dataset.onList = knock.on_class_list ? "true" : "false";
    item.dataset.alreadyConnected = knock.already_connected ? "true" : "false";
    const name = create("span", {
      className: "knock-name",
      testId: "knock-name",
      text: knock.name,
    });
    const list = create("span", {
      className: `tag ${knock.on_class_list ? "tag-ok" : "tag-warn"}`,
      testId: "knock-list-status",
    });
    setText(list, knock.on_class_list ? "waiting_room.on_list" : "waiting_room.not_on_list");
    const tags = create("span", { className: "knock-tags" }, [list]);
    if (knock.role === "guest") {
      const guest = create("span", { className: "tag" });
      setText(guest, "participant.role_guest");
      tags.append(guest);
    }
    if (knock.already_connected) {
      const twice = create("span", { className: "tag tag-warn", testId: "knock-already" });
      setText(twice, "waiting_room.already_connected");
      tags.append(twice);
    }
    const admit = button("knock-admit", "waiting_room.admit", "btn btn-primary btn-small");
    const deny = button("knock-deny", "waiting_room.deny");
    const ban = button("knock-ban", "waiting_room.ban", "btn btn-danger-ghost btn-small");
    admit.addEventListener("click", () =>
      run(admit, () => this.#request("admit", { participant: knock.id }), this.notify),
    );
    deny.addEventListener("click", () =>
      run(deny, () => this.#request("deny", { participant: knock.id }), this.notify),
    );
    ban.addEventListener("click", async () => {
      const sure = await confirmAction(
        "waiting_room.ban_confirm",
        { name: knock.name },
        "waiting_room.ban",
      );
      if (!sure) return;
      run(ban, () => this.#request("deny", { participant: knock.id, ban: true }), this.notify);
    });
    item.append(
      create("span", { className: "knock-who" }, [name, tags]),
      create("span", { className: "knock-actions" }, [admit, deny, ban]),
    );
    return item;
  }
}

// -- raised hands ----------------------------------------------------------------------------

/** The raised hands, first raised first, with "lower" for staff. */
export class HandsPanel {
  drawn = "";

  /**
   * @param {HTMLElement} root an empty `<section data-testid="hands-panel">`
   * @param {{session: () => LessonSession | null, notify: Notify}} options
   */
  constructor(root, { session, notify }) {
    this.root = root;
    this.session = session;
    this.notify = notify;
    root.classList.add("hands-panel");
    const title = create("h2", { className: "panel-title" });
    const label = create("span");
    setText(label, "hands.heading");
    this.count = create("span", { className: "count", testId: "hands-count" });
    title.append(
      create("span", { className: "icon icon-hand", attrs: { "aria-hidden": "true" } }),
      label,
      this.count,
    );
    this.list = create("ol", { className: "hands-list", testId: "hands-list" });
    root.append(create("div", { className: "panel-head" }, [title]), this.list);
    this.render();
  }

  render() {
    const current = this.session();
    const queue = current ? current.hands : [];
    const people = queue
      .map((id) => ({ id, person: current?.roster.get(id) }))
      .filter(({ person }) => person);
    // Redrawn only when the queue changed: a button is not replaced under the pointer.
    const names = people.map(({ id, person }) => [id, person?.name]);
    const drawn = JSON.stringify([current?.isStaff, names]);
    if (drawn === this.drawn) return;
    this.drawn = drawn;
    this.list.replaceChildren(
      ...people.map(({ id, person }, index) => {
        const item = create("li", { className: "hand", testId: "hand" });
        item.dataset.id = id;
        const order = create("span", { className: "hand-order", text: String(index + 1) });
        const name = create("span", { className: "hand-name" });
        showNameEnd(name, person?.name ?? "");
        item.append(order, name);
        if (current?.isStaff) {
          const lower = button("hand-lower", "hands.lower");
          lower.addEventListener("click", () =>
            run(lower, () => current.request("lower_hand", { participant: id }), this.notify),
          );
          item.append(lower);
        }
        return item;
      }),
    );
    this.count.textContent = String(people.length);
    show(this.root, people.length > 0);
  }
}

// -- settings --------------------------------------------------------------------------------

/** Lock, chat, waiting-room mode and what students may do, applied as soon as changed. */
export class SettingsForm {
  /**
   * @param {HTMLElement} root an empty container
   * @param {{session: () => LessonSession | null, notify: Notify}} options
   */
  constructor(root, { session, notify }) {
    this.root = root;
    this.session = session;
    this.notify = notify;
    root.classList.add("settings-form");
    this.locked = this.#checkbox("setting-locked", "settings.locked");
    this.chat = this.#checkbox("setting-chat", "settings.chat");
    this.mode = /** @type {HTMLSelectElement} */ (
      create("select", {
        className: "select",
        testId: "setting-waiting-room",
        attrs: { id: "setting-waiting-room" },
      })
    );
    for (const [value, key] of Object.entries(WAITING_ROOM_KEYS)) {
      const option = create("option", { attrs: { value } });
      setText(option, key);
      this.mode.append(option);
    }
    const modeLabel = create("label", {
      className: "field-label",
      attrs: { for: "setting-waiting-room" },
    });
    setText(modeLabel, "settings.waiting_room");
    /** @type {Record<string, HTMLInputElement>} */
    this.permissions = {};
    const permissionBoxes = PERMISSIONS.map((name) => {
      const box = this.#checkbox(`setting-perm-${name}`, PERMISSION_KEYS[name]);
      this.permissions[name] = box.input;
      return box.label;
    });
    const legend = create("legend", { className: "field-label" });
    setText(legend, "settings.permissions");
    root.append(
      this.locked.label,
      this.chat.label,
      create("div", { className: "field" }, [modeLabel, this.mode]),
      create("fieldset", { className: "settings-permissions" }, [legend, ...permissionBoxes]),
    );
    this.locked.input.addEventListener("change", () =>
      this.#send({ locked: this.locked.input.checked }),
    );
    this.chat.input.addEventListener("change", () => this.#send({ chat: this.chat.input.checked }));
    this.mode.addEventListener("change", () => this.#send({ waiting_room: this.mode.value }));
    for (const input of Object.values(this.permissions)) {
      input.addEventListener("change", () =>
        this.#send({
          permissions: PERMISSIONS.filter((name) => this.permissions[name].checked),
        }),
      );
    }
    this.render();
  }

  /** Show the lesson's current controls. */
  render() {
    const controls = this.session()?.controls;
    if (!controls) return;
    this.locked.input.checked = Boolean(controls.locked);
    this.chat.input.checked = Boolean(controls.chat);
    this.mode.value = controls.waiting_room ?? "guests";
    for (const name of PERMISSIONS) {
      this.permissions[name].checked = (controls.permissions ?? []).includes(name);
    }
  }

  #checkbox(testId, key) {
    const input = /** @type {HTMLInputElement} */ (
      create("input", { testId, attrs: { type: "checkbox" } })
    );
    const text = create("span");
    setText(text, key);
    const label = create("label", { className: "check" }, [input, text]);
    return { input, label };
  }

  async #send(fields) {
    const current = this.session();
    if (!current) return;
    this.root.setAttribute("aria-busy", "true");
    try {
      await current.request("settings", fields, 15_000);
    } catch (error) {
      this.notify(error?.code ?? "internal", error?.extra ?? {});
      this.render(); // back to what the lesson really has
    } finally {
      this.root.removeAttribute("aria-busy");
    }
  }
}

// -- one participant ---------------------------------------------------------------------------

let closingMenus = false;

/**
 * Place an open menu next to its button. The menu is `position: fixed` (set in the CSSOM, which
 * the CSP allows), so a scrolling participant list does not clip it.
 * @param {HTMLDetailsElement} details
 */
function placeMenu(details) {
  const menu = /** @type {HTMLElement} */ (details.querySelector(".menu"));
  const summary = /** @type {HTMLElement} */ (details.querySelector("summary"));
  const anchor = summary.getBoundingClientRect();
  const height = menu.offsetHeight;
  const below = anchor.bottom + 4 + height <= window.innerHeight || anchor.top < height + 8;
  menu.style.top = `${Math.max(4, below ? anchor.bottom + 4 : anchor.top - height - 4)}px`;
  menu.style.right = `${Math.max(4, window.innerWidth - anchor.right)}px`;
}

/** A click outside an open participant menu closes it (one listener for all menus). */
function closeMenusOnOutsideClick() {
  if (closingMenus) return;
  closingMenus = true;
  const openMenus = () =>
    /** @type {HTMLDetailsElement[]} */ ([
      ...document.querySelectorAll("details.participant-menu[open]"),
    ]);
  document.addEventListener("click", (event) => {
    for (const open of openMenus()) {
      if (!open.contains(/** @type {Node} */ (event.target))) open.open = false;
    }
  });
  const follow = () => openMenus().forEach(placeMenu);
  window.addEventListener("scroll", follow, true);
  window.addEventListener("resize", follow);
}

/**
 * The actions staff may take on one participant, as a menu (`<details>`: no script needed to
 * open it). Returns the element and a function that updates it for the participant's state.
 * @param {{session: () => LessonSession | null, notify: Notify}} options
 * @returns {{element: HTMLElement, update: (person: import("./roster.js").Participant,
 *            hand: boolean) => void}}
 */
export function participantMenu({ session, notify }) {
  const summary = create("summary", { className: "menu-button", testId: "participant-menu" });
  summary.append(create("span", { className: "icon icon-more", attrs: { "aria-hidden": "true" } }));
  const menu = create("div", { className: "menu", attrs: { role: "menu" } });
  const details = /** @type {HTMLDetailsElement} */ (
    create("details", { className: "participant-menu" }, [summary, menu])
  );
  /** @type {import("./roster.js").Participant | null} */
  let person = null;
  const item = (testId, key, className = "menu-item") => {
    const element = button(testId, key, className);
    element.setAttribute("role", "menuitem");
    menu.append(element);
    return element;
  };
  const act = (control, type, fields, question = null, okKey = "confirm.ok") => {
    control.addEventListener("click", async () => {
      const current = session();
      const target = person;
      if (!current || !target) return;
      details.open = false;
      if (question && !(await confirmAction(question, { name: target.name }, okKey))) return;
      const send = () => current.request(type, { participant: target.id, ...fields }, 15_000);
      await run(control, send, notify);
    });
  };
  const muteAudio = item("action-mute-audio", "action.mute_audio");
  const muteVideo = item("action-mute-video", "action.mute_video");
  const askUnmute = item("action-ask-unmute", "action.ask_unmute");
  const lowerHand = item("action-lower-hand", "action.lower_hand");
  const connection = item("action-connection", "action.connection");
  const makeModerator = item("action-make-moderator", "action.make_moderator");
  const removeModerator = item("action-remove-moderator", "action.remove_moderator");
  const remove = item("action-remove", "action.remove", "menu-item menu-danger");
  const ban = item("action-ban", "action.ban", "menu-item menu-danger");
  act(muteAudio, "mute", { kind: "audio" });
  act(muteVideo, "mute", { kind: "video" });
  act(askUnmute, "ask_unmute", {});
  act(lowerHand, "lower_hand", {});
  connection.addEventListener("click", () => {
    details.open = false;
    if (person) openConnectionDetails({ session, notify }, person);
  });
  act(makeModerator, "set_moderator", { moderator: true });
  act(removeModerator, "set_moderator", { moderator: false });
  act(remove, "remove", {}, "action.remove_confirm", "action.remove");
  act(ban, "remove", { ban: true }, "action.ban_confirm", "action.ban");
  closeMenusOnOutsideClick();
  details.addEventListener("toggle", () => {
    if (details.open) placeMenu(details);
  });
  return {
    element: details,
    update(next, hand) {
      person = next;
      const current = session();
      const teacher = current?.selfRole === "teacher";
      const audio = next.audio && !next.audio.paused;
      const video = next.video && !next.video.paused;
      show(muteAudio, Boolean(audio));
      show(muteVideo, Boolean(video));
      show(askUnmute, !audio);
      show(lowerHand, hand);
      show(makeModerator, teacher && next.role !== "moderator");
      show(removeModerator, teacher && next.role === "moderator");
      setAriaLabel(summary, "participant.actions", { name: next.name });
      summary.dataset.i18nTitle = "participant.actions";
      summary.setAttribute("title", t("participant.actions", { name: next.name }));
      details.hidden = !current?.isStaff || next.role === "teacher";
      if (details.hidden) details.open = false;
    },
  };
}

/**
 * "Mute all students" and "Stop all students' cameras".
 * @param {HTMLButtonElement} muteAll
 * @param {HTMLButtonElement} stopVideo
 * @param {{session: () => LessonSession | null, notify: Notify}} options
 */
export function bindClassActions(muteAll, stopVideo, { session, notify }) {
  for (const [control, kind] of /** @type {const} */ ([
    [muteAll, "audio"],
    [stopVideo, "video"],
  ])) {
    control.addEventListener("click", () => {
      const current = session();
      if (!current) return;
      const send = () => current.request("mute", { participant: "students", kind }, 15_000);
      run(control, send, notify);
    });
  }
}

// -- incidents ---------------------------------------------------------------------------------

/**
 * Show one incident report prominently (newest first) in `container`.
 * @param {HTMLElement} container `data-testid="incidents"`
 * @param {{id: string, at: string, reporter: {name: string, role: string}, category: string,
 *          text: string}} incident
 */
export function showIncident(container, incident) {
  if (!incident || container.querySelector(`[data-id="${CSS.escape(String(incident.id))}"]`)) {
    return;
  }
  const box = create("div", {
    className: "incident",
    testId: "incident",
    attrs: { role: "alert" },
  });
  box.dataset.id = String(incident.id);
  box.dataset.category = String(incident.category);
  const title = create("strong", { className: "incident-title", testId: "incident-title" });
  const category = CATEGORY_KEYS[/** @type {keyof CATEGORY_KEYS} */ (incident.category)];
  setText(title, "incident.alert", {
    name: incident.reporter?.name ?? "?",
    category: t(category ?? "incident.cat_other"),
  });
  const when = create("span", { className: "incident-time", text: timeOf(incident.at) });
  const body = create("div", { className: "incident-body" }, [title, when]);
  if (incident.text) {
    body.append(
      create("p", { className: "incident-text", testId: "incident-text", text: incident.text }),
    );
  }
  const hint = create("p", { className: "incident-hint" });
  setText(hint, "incident.staff_hint");
  body.append(hint);
  const dismiss = create("button", {
    className: "banner-close",
    testId: "incident-dismiss",
    attrs: { type: "button" },
  });
  setAriaLabel(dismiss, "common.dismiss");
  dismiss.append(
    create("span", { className: "icon icon-close", attrs: { "aria-hidden": "true" } }),
  );
  dismiss.addEventListener("click", () => box.remove());
  box.append(
    create("span", { className: "icon icon-flag", attrs: { "aria-hidden": "true" } }),
    body,
    dismiss,
  );
  container.prepend(box);
}

// -- bans and the log --------------------------------------------------------------------------

/**
 * The lesson's bans, each with "Unban".
 * @param {{session: () => LessonSession | null, notify: Notify}} options
 */
export async function openBans({ session, notify }) {
  const current = session();
  if (!current) return;
  const { dialog, body } = panelDialog("bans-dialog", "bans.heading");
  const loading = create("p", { className: "hint" });
  setText(loading, "common.loading");
  body.replaceChildren(loading);
  if (!dialog.open) dialog.showModal();
  const data = await run(null, () => current.request("bans", {}, 15_000), notify);
  if (!data) {
    dialog.close();
    return;
  }
  const bans = (data.bans ?? []).filter((ban) => !ban.lifted_at);
  if (!bans.length) {
    const empty = create("p", { className: "hint", testId: "bans-empty" });
    setText(empty, "bans.empty");
    body.replaceChildren(empty);
    return;
  }
  const list = create("ul", { className: "plain-list", testId: "bans-list" });
  for (const ban of bans) {
    const item = create("li", { className: "plain-item", testId: "ban-item" });
    item.dataset.id = String(ban.id);
    const who = create("span", { className: "plain-main" }, [
      create("strong", { text: ban.name }),
    ]);
    const note = create("span", { className: "hint" });
    setText(note, "bans.by", { name: ban.banned_by ?? "?", time: timeOf(ban.banned_at) });
    who.append(note);
    const lift = button("unban", "bans.unban");
    lift.addEventListener("click", async () => {
      const done = await run(lift, () => current.request("unban", { ban: ban.id }, 15_000), notify);
      if (done) item.remove();
      if (!list.childElementCount) {
        const empty = create("p", { className: "hint", testId: "bans-empty" });
        setText(empty, "bans.empty");
        body.replaceChildren(empty);
      }
    });
    item.append(who, lift);
    list.append(item);
  }
  body.replaceChildren(list);
}

/**
 * The moderation log of the lesson, newest first.
 * @param {{session: () => LessonSession | null, notify: Notify}} options
 */
export async function openLog({ session, notify }) {
  const current = session();
  if (!current) return;
  const { dialog, body } = panelDialog("log-dialog", "modlog.heading");
  const loading = create("p", { className: "hint" });
  setText(loading, "common.loading");
  body.replaceChildren(loading);
  if (!dialog.open) dialog.showModal();
  const data = await run(null, () => current.request("moderation_log", {}, 15_000), notify);
  if (!data) {
    dialog.close();
    return;
  }
  const actions = [...(data.actions ?? [])].reverse();
  if (!actions.length) {
    const empty = create("p", { className: "hint", testId: "log-empty" });
    setText(empty, "modlog.empty");
    body.replaceChildren(empty);
    return;
  }
  const list = create("ol", { className: "plain-list", testId: "log-list" });
  for (const entry of actions) {
    const item = create("li", { className: "plain-item log-entry", testId: "log-entry" });
    item.dataset.action = String(entry.action);
    const what = create("span");
    setText(what, ACTION_KEYS[/** @type {keyof ACTION_KEYS} */ (entry.action)] ?? "modlog.other");
    const line = create("span", { className: "plain-main" }, [
      create("span", { className: "log-time", text: timeOf(entry.at) }),
      create("strong", { text: entry.actor?.name ?? "" }),
      what,
    ]);
    if (entry.target?.name) line.append(create("strong", { text: entry.target.name }));
    item.append(line);
    list.append(item);
  }
  body.replaceChildren(list);
}
