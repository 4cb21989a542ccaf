/**
 * Web Storage that never throws.
 *
 * Private browsing modes and locked-down school devices may refuse `localStorage` /
 * `sessionStorage` (a `SecurityError` on access, a `QuotaExceededError` on write). Losing a
 * remembered name or language is acceptable; breaking the page is not.
 */

/**
 * @param {"localStorage" | "sessionStorage"} name
 * @returns {Storage | null}
 */
function open(name) {
  try {
    return window[name];
  } catch {
    return null;
  }
}

/** A small wrapper over one Web Storage area. */
export class SafeStorage {
  /** @param {"localStorage" | "sessionStorage"} name */
  constructor(name) {
    this.name = name;
  }

  /**
   * @param {string} key
   * @returns {string | null} the stored value, or null when missing or unreadable
   */
  get(key) {
    try {
      return open(this.name)?.getItem(key) ?? null;
    } catch {
      return null;
    }
  }

  /**
   * @param {string} key
   * @param {string} value
   */
  set(key, value) {
    try {
      open(this.name)?.setItem(key, value);
    } catch {
      /* storage full or refused: the value is simply not remembered */
    }
  }

  /** @param {string} key */
  remove(key) {
    try {
      open(this.name)?.removeItem(key);
    } catch {
      /* nothing to do */
    }
  }

  /**
   * @param {string} key
   * @returns {any} the parsed JSON value, or null
   */
  getJson(key) {
    const text = this.get(key);
    if (text === null) return null;
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  /**
   * @param {string} key
   * @param {any} value
   */
  setJson(key, value) {
    this.set(key, JSON.stringify(value));
  }
}

/** Remembered across visits: language, display name. */
export const local = new SafeStorage("localStorage");
/** Per tab, survives a reload: resume tokens, the teacher's lesson. */
export const session = new SafeStorage("sessionStorage");
