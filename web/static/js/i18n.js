/**
 * Translations: one flat message catalogue per language (`i18n/vi.js`, `i18n/en.js`).
 *
 * Every user-visible string comes from here. The language is the visitor's choice from the
 * switch (remembered in localStorage), else the first of `navigator.languages` (vi* → vi, anything
 * else → en). Elements marked `data-i18n="key"` (text), `data-i18n-placeholder`,
 * `data-i18n-aria-label` and `data-i18n-title` are filled by `applyI18n`; text set with `setText`
 * keeps its key, so a language switch re-renders it too.
 */

import en from "./i18n/en.js";
import vi from "./i18n/vi.js";
import { local } from "./storage.js";

/** @type {Record<string, Record<string, string>>} */
export const CATALOGUES = { vi, en };
export const LANGUAGES = Object.freeze(["vi", "en"]);
const STORAGE_KEY = "lophoc.lang";

/**
 * The language for a stored choice and the browser's preferences.
 * @param {string | null} stored
 * @param {readonly string[]} preferred navigator.languages
 * @returns {"vi" | "en"}
 */
export function detectLanguage(stored, preferred) {
  if (stored === "vi" || stored === "en") return stored;
  const first = (preferred ?? [])[0] ?? "";
  return first.toLowerCase().startsWith("vi") ? "vi" : "en";
}

let current = detectLanguage(
  local.get(STORAGE_KEY),
  navigator.languages?.length ? navigator.languages : [navigator.language ?? ""],
);
const listeners = new Set();
const own = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

/** @returns {"vi" | "en"} the current language */
export function getLanguage() {
  return /** @type {"vi" | "en"} */ (current);
}

/**
 * The message for `key` in the current language, with `{name}` placeholders filled.
 * A key missing from the catalogue is shown as itself (the tests keep that from shipping).
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 * @returns {string}
 */
export function t(key, params = {}) {
  const template = CATALOGUES[current][key] ?? CATALOGUES.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    own(params, name) ? String(params[name]) : whole,
  );
}

/**
 * Whether a key exists (used to fall back for error codes this client does not know).
 * @param {string} key
 */
export function hasKey(key) {
  return own(CATALOGUES.en, key);
}

/**
 * The message for an error `code` (server or client side), `error.unknown` for unknown codes.
 * @param {string} code
 * @param {Record<string, any>} [extra] fields of the error, e.g. `retry_after`
 * @returns {{key: string, params: Record<string, string | number>}}
 */
export function errorMessage(code, extra = {}) {
  const key = `error.${code}`;
  if (hasKey(key)) {
    const params = {};
    for (const [name, value] of Object.entries(extra)) {
      if (typeof value === "string" || typeof value === "number") params[name] = value;
    }
    return { key, params };
  }
  return { key: "error.unknown", params: { code: String(code) } };
}

function params(element) {
  const raw = element.dataset.i18nArgs;
  if (!raw) return {};
  try {
    return JSON.parse(raw);
  } catch {
    return {};
  }
}

/**
 * Fill every `data-i18n*` element under `root` (and `root` itself) in the current language.
 * @param {ParentNode & Partial<HTMLElement>} [root]
 */
export function applyI18n(root = document) {
  const all = (selector) => {
    const found = [...root.querySelectorAll(selector)];
    if (root instanceof Element && root.matches(selector)) found.unshift(root);
    return found;
  };
  for (const element of all("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n, params(element));
  }
  for (const element of all("[data-i18n-placeholder]")) {
    element.setAttribute("placeholder", t(element.dataset.i18nPlaceholder));
  }
  for (const element of all("[data-i18n-aria-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nAriaLabel, params(element)));
  }
  for (const element of all("[data-i18n-title]")) {
    element.setAttribute("title", t(element.dataset.i18nTitle, params(element)));
  }
}

/**
 * Set an element's text from a key, and remember the key so a language switch re-renders it.
 * @param {HTMLElement} element
 * @param {string} key
 * @param {Record<string, string | number>} [values]
 */
export function setText(element, key, values) {
  element.dataset.i18n = key;
  if (values && Object.keys(values).length) element.dataset.i18nArgs = JSON.stringify(values);
  else delete element.dataset.i18nArgs;
  element.textContent = t(key, values);
}

/**
 * Set an element's tooltip (`title`) from a key, re-rendered on a language switch.
 * @param {HTMLElement} element
 * @param {string} key
 */
export function setTitle(element, key) {
  element.dataset.i18nTitle = key;
  element.setAttribute("title", t(key));
}

/**
 * Set an element's accessible name from a key, re-rendered on a language switch.
 * @param {HTMLElement} element
 * @param {string} key
 * @param {Record<string, string | number>} [values]
 */
export function setAriaLabel(element, key, values) {
  element.dataset.i18nAriaLabel = key;
  if (values && Object.keys(values).length) element.dataset.i18nArgs = JSON.stringify(values);
  element.setAttribute("aria-label", t(key, values));
}

/**
 * Remove a key set by `setText` and empty the element.
 * @param {HTMLElement} element
 */
export function clearText(element) {
  delete element.dataset.i18n;
  delete element.dataset.i18nArgs;
  element.textContent = "";
}

/**
 * Switch the page's language: remember it, set `<html lang>`, re-render, tell listeners.
 * @param {string} language "vi" or "en"
 */
export function setLanguage(language) {
  if (!LANGUAGES.includes(language)) return;
  current = language;
  local.set(STORAGE_KEY, language);
  document.documentElement.lang = language;
  applyI18n(document);
  for (const listener of listeners) listener(language);
}

/**
 * Call `listener(language)` after every language switch.
 * @param {(language: string) => void} listener
 */
export function onLanguageChange(listener) {
  listeners.add(listener);
}

/**
 * Translate the page now and wire the language `<select>` (`data-testid="lang-switch"`).
 * @param {HTMLSelectElement | null} select
 */
export function initI18n(select) {
  document.documentElement.lang = current;
  applyI18n(document);
  if (!select) return;
  select.value = current;
  select.addEventListener("change", () => setLanguage(select.value));
}
