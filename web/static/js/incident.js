/**
 * "Report a problem": anyone in a lesson tells the teacher and the school about an intruder,
 * harassment, inappropriate content, a technical problem or anything else
 * (`report_incident`, docs/protocol.md "Incident reports").
 */

import { create, show } from "./dom.js";
import { errorMessage, setText } from "./i18n.js";
import { panelDialog } from "./dialogs.js";
import { CATEGORY_KEYS } from "./moderation.js";

const MAX_TEXT = 1000;

/**
 * Open the report dialog (built on first use).
 * @param {() => import("./session.js").LessonSession | null} session
 * @param {(key: string) => void} [onSent] e.g. show a notice on the page
 */
export function openReportDialog(session, onSent = () => {}) {
  const { dialog, body, created } = panelDialog("report-dialog", "incident.heading");
  if (created) build(body, session, dialog, onSent);
  reset(body);
  dialog.showModal();
}

function build(body, session, dialog, onSent) {
  const form = /** @type {HTMLFormElement} */ (
    create("form", { className: "report-form", testId: "report-form", attrs: { novalidate: "" } })
  );
  const lead = create("p", { className: "hint report-lead" });
  setText(lead, "incident.lead");
  const legend = create("legend", { className: "field-label" });
  setText(legend, "incident.category");
  const choices = create("fieldset", { className: "report-categories" }, [legend]);
  for (const [value, key] of Object.entries(CATEGORY_KEYS)) {
    const input = create("input", {
      testId: `report-category-${value}`,
      attrs: { type: "radio", name: "category", value },
    });
    const text = create("span");
    setText(text, key);
    choices.append(create("label", { className: "check" }, [input, text]));
  }
  const textLabel = create("label", { className: "field-label", attrs: { for: "report-text" } });
  setText(textLabel, "incident.text");
  const text = /** @type {HTMLTextAreaElement} */ (
    create("textarea", {
      className: "textarea",
      testId: "report-text",
      attrs: { id: "report-text", rows: "3", maxlength: String(MAX_TEXT) },
    })
  );
  const error = create("p", {
    className: "alert",
    testId: "report-error",
    attrs: { role: "alert" },
  });
  const submit = /** @type {HTMLButtonElement} */ (
    create("button", {
      className: "btn btn-danger btn-block",
      testId: "report-submit",
      attrs: { type: "submit" },
    })
  );
  setText(submit, "incident.submit");
  const field = create("div", { className: "field" }, [textLabel, text]);
  form.append(lead, choices, field, error, submit);
  const sent = create("div", { className: "report-sent", testId: "report-sent" });
  const sentText = create("p", { className: "report-sent-text", attrs: { role: "status" } });
  setText(sentText, "incident.sent");
  const close = create("button", {
    className: "btn btn-primary",
    testId: "report-done",
    attrs: { type: "button" },
  });
  setText(close, "common.dismiss");
  close.addEventListener("click", () => dialog.close());
  sent.append(
    create("span", { className: "icon icon-check", attrs: { "aria-hidden": "true" } }),
    sentText,
    close,
  );
  body.append(form, sent);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = /** @type {HTMLInputElement | null} */ (
      form.querySelector('input[name="category"]:checked')
    );
    if (!chosen) {
      error.dataset.code = "no_category";
      setText(error, "incident.choose");
      show(error);
      return;
    }
    const current = session();
    if (!current) return;
    submit.disabled = true;
    setText(submit, "incident.sending");
    show(error, false);
    try {
      const fields = { category: chosen.value };
      const details = text.value.trim();
      await current.request("report_incident", details ? { ...fields, text: details } : fields);
      show(form, false);
      show(sent);
      close.focus();
      onSent("incident.sent");
    } catch (failure) {
      const { key, params } = errorMessage(failure?.code ?? "internal", failure?.extra ?? {});
      error.dataset.code = failure?.code ?? "internal";
      setText(error, key, params);
      show(error);
    } finally {
      submit.disabled = false;
      setText(submit, "incident.submit");
    }
  });
}

function reset(body) {
  const form = /** @type {HTMLFormElement} */ (body.querySelector(".report-form"));
  form.reset();
  show(form);
  show(/** @type {HTMLElement} */ (body.querySelector(".report-sent")), false);
  const error = /** @type {HTMLElement} */ (body.querySelector('[data-testid="report-error"]'));
  delete error.dataset.code;
  show(error, false);
}
