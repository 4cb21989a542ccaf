/**
 * The lesson chat, as both pages show it: the messages (lesson-wide and private ones, marked),
 * a box to write, and whom to write to.
 *
 * Students, guests and moderators write to everyone or privately to the teacher; the teacher
 * writes to everyone or privately to anyone ("reply privately"). Staff delete messages (not
 * the teacher's: nobody may act on the teacher). The server decides every one of these; the
 * panel only offers what it would allow and shows its refusals.
 *
 * Dispatches `unread` (read `unread`) when the count of messages arrived while hidden changes.
 */

import { create, show } from "./dom.js";
import { errorMessage, getLanguage, setAriaLabel, setText } from "./i18n.js";

const MAX_CHARS = 500;

/** Role labels shown next to names. */
const ROLE_KEYS = {
  teacher: "participant.role_teacher",
  moderator: "participant.role_moderator",
  guest: "participant.role_guest",
};

/**
 * @typedef {{id: string, from: string, name: string, role: string, text: string, at: number,
 *            to: string | null}} ChatMessage
 */

/** One chat panel bound to the page's lesson session. */
export class ChatPanel extends EventTarget {
  /** @type {Map<string, {message: ChatMessage, item: HTMLElement}>} */
  #messages = new Map();
  #unread = 0;
  #visible = true;
  #sending = false;

  /**
   * @param {HTMLElement} root an empty container (`data-testid="chat-panel"`)
   * @param {object} options
   * @param {() => import("./session.js").LessonSession | null} options.session
   * @param {(key: string, params?: object) => Promise<boolean>} options.confirm
   */
  constructor(root, { session, confirm }) {
    super();
    this.root = root;
    this.session = session;
    this.confirm = confirm;
    root.classList.add("chat");
    this.list = create("ol", {
      className: "chat-list",
      testId: "chat-list",
      attrs: { "aria-live": "polite" },
    });
    this.empty = create("p", { className: "chat-empty", testId: "chat-empty" });
    setText(this.empty, "chat.empty");
    this.disabledNote = create("p", { className: "chat-note", testId: "chat-disabled" });
    this.error = create("p", {
      className: "alert chat-error",
      testId: "chat-error",
      attrs: { role: "alert" },
    });
    show(this.error, false);
    this.to = /** @type {HTMLSelectElement} */ (
      create("select", { className: "chat-to", testId: "chat-to" })
    );
    setAriaLabel(this.to, "chat.to_label");
    this.input = /** @type {HTMLTextAreaElement} */ (
      create("textarea", {
        className: "chat-input",
        testId: "chat-input",
        attrs: { rows: "2", maxlength: String(MAX_CHARS), enterkeyhint: "send" },
      })
    );
    this.input.dataset.i18nPlaceholder = "chat.placeholder";
    setAriaLabel(this.input, "chat.placeholder");
    this.send = /** @type {HTMLButtonElement} */ (
      create("button", {
        className: "btn btn-primary chat-send",
        testId: "chat-send",
        attrs: { type: "submit" },
      })
    );
    setText(this.send, "chat.send");
    this.form = /** @type {HTMLFormElement} */ (
      create("form", { className: "chat-form", testId: "chat-form", attrs: { novalidate: "" } }, [
        create("div", { className: "chat-to-row" }, [this.to]),
        create("div", { className: "chat-write" }, [this.input, this.send]),
      ])
    );
    root.append(
      create("div", { className: "chat-scroll" }, [this.empty, this.list]),
      this.disabledNote,
      this.error,
      this.form,
    );
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#submit();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.#submit();
      }
    });
    this.input.addEventListener("input", () => this.#hideError());
    this.to.addEventListener("change", () => {
      this.form.dataset.private = this.to.value ? "true" : "false";
    });
    this.refresh();
  }

  /** @returns {number} messages from others that arrived while the panel was hidden */
  get unread() {
    return this.#unread;
  }

  /**
   * Say whether people can see the panel now (a closed drawer on a phone cannot be read).
   * @param {boolean} visible
   */
  setVisible(visible) {
    this.#visible = visible;
    if (visible) {
      this.#setUnread(0);
      this.#scrollToEnd();
    }
  }

  /**
   * Start over from the join response's history.
   * @param {ChatMessage[]} messages
   */
  reset(messages) {
    this.#messages.clear();
    this.list.replaceChildren();
    for (const message of messages ?? []) this.add(message, false);
    this.#setUnread(0);
    this.refresh();
  }

  /**
   * Show one message (a `chat` event, or one's own after the server accepted it).
   * @param {ChatMessage} message
   * @param {boolean} [counts] whether it counts as unread while hidden
   */
  add(message, counts = true) {
    if (!message || typeof message.id !== "string" || this.#messages.has(message.id)) return;
    const item = this.#render(message);
    this.#messages.set(message.id, { message, item });
    this.list.append(item);
    show(this.empty, false);
    const own = message.from === this.session()?.participantId;
    if (counts && !own && !this.#visible) this.#setUnread(this.#unread + 1);
    this.#scrollToEnd();
  }

  /**
   * Take a deleted message away.
   * @param {string} id
   */
  remove(id) {
    const known = this.#messages.get(id);
    if (!known) return;
    known.item.remove();
    this.#messages.delete(id);
    show(this.empty, this.#messages.size === 0);
  }

  /** Redraw what depends on the roster, one's role and the lesson's settings. */
  refresh() {
    const current = this.session();
    this.#renderRecipients(current);
    const { everyone, privately } = this.#allowed(current);
    const open = Boolean(current) && (everyone || privately);
    this.input.disabled = !open;
    this.to.disabled = !open;
    this.send.disabled = !open || this.#sending;
    let note = null;
    if (current && !open) note = current.controls.chat ? "chat.not_allowed" : "chat.off";
    else if (current && !everyone) note = "chat.private_only";
    if (note) setText(this.disabledNote, note);
    show(this.disabledNote, Boolean(note));
    for (const { message, item } of this.#messages.values()) this.#renderDynamic(message, item);
    show(this.empty, this.#messages.size === 0);
  }

  // -- internals -------------------------------------------------------------------------

  #allowed(current) {
    if (!current) return { everyone: false, privately: false };
    if (current.isStaff) return { everyone: true, privately: true };
    return { everyone: current.may("chat"), privately: current.may("private_chat") };
  }

  #renderRecipients(current) {
    const previous = this.to.value;
    const options = [{ value: "", key: "chat.to_everyone", params: {} }];
    const { everyone, privately } = this.#allowed(current);
    if (current) {
      if (current.selfRole === "teacher") {
        for (const person of current.roster.list()) {
          options.push({ value: person.id, key: "chat.to_person", params: { name: person.name } });
        }
      } else {
        const teacher = current.roster.teacher();
        if (teacher) options.push({ value: teacher.id, key: "chat.to_teacher", params: {} });
      }
    }
    // Rebuilt only when the choice changed: an open list is not replaced while one picks.
    const drawn = JSON.stringify([everyone, privately, options.map((option) => option.value)]);
    if (drawn === this.to.dataset.drawn) return;
    this.to.dataset.drawn = drawn;
    this.to.replaceChildren(
      ...options.map((option) => {
        const element = /** @type {HTMLOptionElement} */ (
          create("option", { attrs: { value: option.value } })
        );
        setText(element, option.key, option.params);
        element.disabled = option.value ? !privately : !everyone;
        return element;
      }),
    );
    const usable = [...this.to.options].filter((option) => !option.disabled);
    const keep = usable.some((option) => option.value === previous);
    this.to.value = keep ? previous : (usable[0]?.value ?? "");
    this.form.dataset.private = this.to.value ? "true" : "false";
  }

  #render(message) {
    const current = this.session();
    const self = current?.participantId;
    const item = create("li", { className: "chat-message", testId: "chat-message" });
    item.dataset.id = message.id;
    item.dataset.from = message.from;
    item.dataset.private = message.to ? "true" : "false";
    item.dataset.mine = message.from === self ? "true" : "false";
    const name = create("span", { className: "chat-name" });
    if (message.from === self) setText(name, "chat.you");
    else name.textContent = message.name;
    const meta = create("div", { className: "chat-meta" }, [name]);
    const roleKey = ROLE_KEYS[message.role];
    if (roleKey) {
      const tag = create("span", { className: "tag" });
      setText(tag, roleKey);
      meta.append(tag);
    }
    if (message.to) {
      meta.append(create("span", { className: "tag tag-private", testId: "chat-private" }));
    }
    const time = create("time", { className: "chat-time" });
    const at = new Date(Number(message.at) * 1000);
    if (!Number.isNaN(at.getTime())) {
      time.setAttribute("datetime", at.toISOString());
      time.textContent = at.toLocaleTimeString(getLanguage(), {
        hour: "2-digit",
        minute: "2-digit",
      });
    }
    meta.append(time);
    const text = create("p", { className: "chat-text", testId: "chat-text", text: message.text });
    const actions = create("div", { className: "chat-actions" });
    item.append(meta, text, actions);
    this.#renderDynamic(message, item);
    return item;
  }

  /** What depends on the roster and one's role: the private mark, reply and delete. */
  #renderDynamic(message, item) {
    const current = this.session();
    const drawn = JSON.stringify([
      current?.participantId,
      current?.selfRole,
      message.to && current?.roster.get(message.to)?.name,
      Boolean(current?.roster.get(message.from)),
    ]);
    if (item.dataset.drawn === drawn) return; // nothing changed: keep the buttons in place
    item.dataset.drawn = drawn;
    const tag = /** @type {HTMLElement | null} */ (item.querySelector(".tag-private"));
    if (tag && message.to) {
      const recipient = current?.roster.get(message.to);
      if (message.to === current?.participantId) setText(tag, "chat.private_to_you");
      else if (recipient?.role === "teacher" || (!recipient && message.role !== "teacher")) {
        // Students write privately only to the teacher: a recipient who left was the teacher.
        setText(tag, "chat.private_to_teacher");
      } else setText(tag, "chat.private_to", { name: recipient?.name ?? "…" });
    }
    const actions = /** @type {HTMLElement} */ (item.querySelector(".chat-actions"));
    actions.replaceChildren();
    if (!current) return;
    const own = message.from === current.participantId;
    if (current.selfRole === "teacher" && !own && current.roster.get(message.from)) {
      const reply = create("button", {
        className: "link-button",
        testId: "chat-reply",
        attrs: { type: "button" },
      });
      setText(reply, "chat.reply");
      reply.addEventListener("click", () => {
        this.to.value = message.from;
        this.form.dataset.private = "true";
        this.input.focus();
      });
      actions.append(reply);
    }
    if (current.isStaff && message.role !== "teacher") {
      const remove = create("button", {
        className: "link-button link-danger",
        testId: "chat-delete",
        attrs: { type: "button" },
      });
      setText(remove, "chat.delete");
      remove.addEventListener("click", () => this.#delete(message));
      actions.append(remove);
    }
    show(actions, actions.childElementCount > 0);
  }

  async #delete(message) {
    const current = this.session();
    if (!current || !(await this.confirm("chat.delete_confirm"))) return;
    try {
      await current.request("delete_message", { message: message.id });
      this.remove(message.id);
    } catch (error) {
      if (error?.code === "not_found") this.remove(message.id);
      else this.#showError(error?.code ?? "internal", error?.extra);
    }
  }

  async #submit() {
    const current = this.session();
    const text = this.input.value.trim();
    if (!current || !text || this.#sending) return;
    const to = this.to.value || null;
    this.#sending = true;
    this.send.disabled = true;
    this.#hideError();
    try {
      const data = await current.request("chat", to ? { text, to } : { text });
      this.input.value = "";
      this.add(data.message, false);
    } catch (error) {
      const code = error?.code ?? "internal";
      if (code === "forbidden") this.#showError(code, {}, to ? "chat.private_off" : "chat.off");
      else this.#showError(code, error?.extra);
    } finally {
      this.#sending = false;
      this.refresh();
    }
  }

  /**
   * @param {string} code the error code (kept in `data-code`)
   * @param {Record<string, any>} [extra] e.g. `retry_after`
   * @param {string | null} [key] a message other than the code's own
   */
  #showError(code, extra = {}, key = null) {
    let shown = errorMessage(code, extra);
    if (key) shown = { key, params: {} };
    else if (code === "rate_limited") {
      const wait = Number(extra?.retry_after) || 2;
      shown = { key: "chat.rate_limited", params: { retry_after: wait } };
    }
    this.error.dataset.code = code;
    setText(this.error, shown.key, shown.params);
    show(this.error);
  }

  #hideError() {
    delete this.error.dataset.code;
    show(this.error, false);
  }

  #setUnread(count) {
    if (this.#unread === count) return;
    this.#unread = count;
    this.dispatchEvent(new Event("unread"));
  }

  #scrollToEnd() {
    const scroller = this.list.parentElement;
    if (scroller) scroller.scrollTop = scroller.scrollHeight;
  }
}
