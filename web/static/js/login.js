/**
 * The login page (`/login`): username and password → `POST /api/login`, which sets the
 * session cookie; then on to `?next=` (a path on this site), else an administrator to the
 * administration page (`/admin`) and a teacher to her lessons (`/lessons`).
 */

import { byTestId, need } from "./dom.js";
import { initI18n, setText } from "./i18n.js";
import { ApiError, api, hideApiError, safeNext, showApiError } from "./account.js";
import { landingPage } from "./admin-rules.js";

initI18n(/** @type {HTMLSelectElement} */ (byTestId("lang-switch")));

const form = /** @type {HTMLFormElement} */ (need("login-form"));
const username = /** @type {HTMLInputElement} */ (need("login-username"));
const password = /** @type {HTMLInputElement} */ (need("login-password"));
const submit = /** @type {HTMLButtonElement} */ (need("login-submit"));
const error = need("login-error");
const label = /** @type {HTMLElement} */ (submit.querySelector(".btn-label"));

const next = safeNext(new URLSearchParams(location.search).get("next"));

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
    const { user } = await api("/api/login", {
      method: "POST",
      body: { username: name, password: password.value },
    });
    password.value = "";
    location.assign(landingPage(user?.role, next));
  } catch (failure) {
    showApiError(error, failure);
    password.value = "";
    password.focus();
    setBusy(false);
  }
});

// Already logged in: straight on.
api("/api/me").then(
  ({ user }) => location.replace(landingPage(user?.role, next)),
  () => username.focus(),
);
