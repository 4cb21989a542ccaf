/**
 * DOM helpers shared by the pages.
 *
 * Untrusted text (names, titles) only ever goes into `textContent` or attribute values: nothing
 * here touches `innerHTML`.
 */

/**
 * The element with `data-testid="id"` (the pages' public contract), or null.
 * @param {string} id
 * @param {ParentNode} [root]
 * @returns {HTMLElement | null}
 */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/**
 * Like `byTestId`, but a missing element is a bug in the page and throws.
 * @param {string} id
 * @param {ParentNode} [root]
 * @returns {HTMLElement}
 */
export function need(id, root = document) {
  const element = byTestId(id, root);
  if (!element) throw new Error(`page element missing: ${id}`);
  return element;
}

/**
 * Show or hide an element with the `hidden` attribute.
 * @param {HTMLElement} element
 * @param {boolean} [visible]
 */
export function show(element, visible = true) {
  element.hidden = !visible;
}

/**
 * Create an element.
 * @param {string} tag
 * @param {{className?: string, testId?: string, text?: string,
 *          attrs?: Record<string, string>}} [options]
 * @param {Node[]} [children]
 * @returns {HTMLElement}
 */
export function create(tag, options = {}, children = []) {
  const element = document.createElement(tag);
  if (options.className) element.className = options.className;
  if (options.testId) element.dataset.testid = options.testId;
  if (options.text !== undefined) element.textContent = options.text;
  for (const [name, value] of Object.entries(options.attrs ?? {})) {
    element.setAttribute(name, value);
  }
  for (const child of children) element.append(child);
  return element;
}

/**
 * Format a 9-digit lesson code for people: "123 456 789".
 * @param {string} code
 * @returns {string}
 */
export function formatCode(code) {
  const digits = String(code ?? "").replace(/\D/g, "");
  return digits.length === 9 ? digits.replace(/(\d{3})(\d{3})(\d{3})/, "$1 $2 $3") : digits;
}

/**
 * Digits of a code as typed ("123 456-789" → "123456789"), or null unless exactly 9 digits.
 * @param {string} typed
 * @returns {string | null}
 */
export function parseCode(typed) {
  const digits = String(typed ?? "").replace(/[\s-]/g, "");
  return /^\d{9}$/.test(digits) ? digits : null;
}
