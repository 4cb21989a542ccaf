/**
 * The landing page (`/`): teach a lesson, or join one with its 9-digit code.
 */

import { byTestId, need, parseCode } from "./dom.js";
import { initI18n } from "./i18n.js";
import { hideError, showError } from "./ui.js";

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

const form = /** @type {HTMLFormElement} */ (need("code-form"));
const input = /** @type {HTMLInputElement} */ (need("code-input"));
const error = need("code-error");

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const code = parseCode(input.value);
  if (!code) {
    showError(error, "invalid_code");
    input.focus();
    return;
  }
  hideError(error);
  location.assign(`/l/${code}`);
});
