/**
 * The login page (`/login`): username and password → `POST /api/login`, which sets the
 * session cookie; then on to `?next=` (a path on this site) or the teacher's lessons.
 */

import { byTestId, need } from "./dom.js";
import { initI18n, setText } from "./i18n.js";
import { ApiError, api, hideApiError, safeNext, showApiError } from "./account.js";

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

const form = /** @type {HTMLFormElement} */ (need("login-form"));
const username = /** @type {HTMLInputElement} */ (need("login-username"));
const password = /** @type {HTMLInputElement} */ (need("login-password"));
const submit = /** @type {HTMLButtonElement} */ (need("login-submit"));
const error = need("login-error");
const label = /** @type {HTMLElement} */ (submit.querySelector(".btn-label"));

const destination = safeNext(new URLSearchParams(location.search).get("next")) ?? "/lessons";

function setBusy(busy) {
  submit.disabled = busy;
  form.setAttribute("aria-busy", busy ? "true" : "false");
  setText(label, busy ? "login.busy" : "login.submit");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  hideApiError(error);
  const name = username.value.trim();
  if (!name || !password.value) {
    showApiError(error, new ApiError(400, "login_missing"));
    (name ? password : username).focus();
    return;
  }
  setBusy(true);
  try {
    await api("/api/login", { method: "POST", body: { username: name, password: password.value } });
    password.value = "";
    location.assign(destination);
  } catch (failure) {
    showApiError(error, failure);
    password.value = "";
    password.focus();
    setBusy(false);
  }
});

// Already logged in: straight on.
api("/api/me").then(
  () => location.replace(destination),
  () => username.focus(),
);
