/**
 * Modal dialogs built on `<dialog>`: a confirmation ("Remove Lan from the lesson?") and a
 * plain dialog shell the pages fill (settings, bans, the moderation log, reporting a problem).
 *
 * Buttons close the dialog through `<form method="dialog">`, so nothing here needs inline
 * script; the text comes from the catalogues.
 */

import { create } from "./dom.js";
import { setAriaLabel, setText } from "./i18n.js";

/** @type {HTMLDialogElement | null} */
let confirmation = null;

function confirmationDialog() {
  if (confirmation) return confirmation;
  const message = create("p", { className: "dialog-message", testId: "confirm-message" });
  const cancel = create("button", {
    className: "btn btn-ghost",
    testId: "confirm-cancel",
    attrs: { type: "submit", value: "cancel" },
  });
  setText(cancel, "common.cancel");
  const ok = create("button", {
    className: "btn btn-danger",
    testId: "confirm-ok",
    attrs: { type: "submit", value: "ok" },
  });
  setText(ok, "confirm.ok");
  const form = create("form", { attrs: { method: "dialog" } }, [
    message,
    create("div", { className: "dialog-actions" }, [cancel, ok]),
  ]);
  confirmation = /** @type {HTMLDialogElement} */ (
    create("dialog", { className: "dialog dialog-confirm", testId: "confirm-dialog" }, [form])
  );
  document.body.append(confirmation);
  return confirmation;
}

/**
 * Ask the person to confirm an action.
 * @param {string} key the question's catalogue key
 * @param {Record<string, string | number>} [params]
 * @param {string} [okKey] the confirming button's label (default "Confirm")
 * @returns {Promise<boolean>}
 */
export function confirmAction(key, params = {}, okKey = "confirm.ok") {
  const dialog = confirmationDialog();
  setText(/** @type {HTMLElement} */ (dialog.querySelector(".dialog-message")), key, params);
  setText(/** @type {HTMLElement} */ (dialog.querySelector('[value="ok"]')), okKey);
  if (dialog.open) dialog.close("cancel");
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    /** @type {HTMLElement} */ (dialog.querySelector('[value="cancel"]')).focus();
  });
}

/**
 * A dialog with a title, a body the caller fills, and a close button; created once per test id.
 * @param {string} testId the dialog's `data-testid`
 * @param {string} titleKey
 * @returns {{dialog: HTMLDialogElement, body: HTMLElement, created: boolean}}
 */
export function panelDialog(testId, titleKey) {
  const existing = /** @type {HTMLDialogElement | null} */ (
    document.querySelector(`dialog[data-testid="${testId}"]`)
  );
  if (existing) {
    return {
      dialog: existing,
      body: /** @type {HTMLElement} */ (existing.querySelector(".dialog-body")),
      created: false,
    };
  }
  const title = create("h2", { className: "dialog-title" });
  setText(title, titleKey);
  const close = create("button", {
    className: "btn btn-ghost btn-icon dialog-close",
    testId: `${testId}-close`,
    attrs: { type: "submit", value: "close" },
  });
  setAriaLabel(close, "common.dismiss");
  close.append(create("span", { className: "icon icon-close", attrs: { "aria-hidden": "true" } }));
  const head = create("form", { className: "dialog-head", attrs: { method: "dialog" } }, [
    title,
    close,
  ]);
  const body = create("div", { className: "dialog-body" });
  const dialog = /** @type {HTMLDialogElement} */ (
    create("dialog", { className: "dialog", testId }, [head, body])
  );
  document.body.append(dialog);
  return { dialog, body, created: true };
}
