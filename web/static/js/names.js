/**
 * People's names as the page shows them. Vietnamese names run family name, middle names,
 * given name ("Nguyễn Thị Lan"), and people are called by the given name: many students of a
 * class share a family name (a third of Vietnam is "Nguyễn"), so a stand-in picture shows the
 * given name's initial, and a name cut short keeps its end.
 */

/**
 * The initial of a name's last word (the given name), for a picture-less stand-in.
 * @param {unknown} name
 * @returns {string}
 */
export function initialOf(name) {
  const words = String(name ?? "").trim().split(/\s+/).filter(Boolean);
  const given = words[words.length - 1] ?? "";
  return ([...given][0] ?? "?").toLocaleUpperCase();
}

/**
 * Show `name` in a one-line element that keeps the name's end when it is cut short (the
 * element gets the `name-end` class; the name, isolated in a `<bdi>`, stays left to right).
 * @param {HTMLElement} element
 * @param {string} name
 */
export function showNameEnd(element, name) {
  element.classList.add("name-end");
  const text = document.createElement("bdi");
  text.textContent = name;
  element.replaceChildren(text);
  element.title = name;
}

/** The name an ad-hoc lesson's teacher has on the server: she has no account (protocol.md). */
export const UNNAMED_TEACHER = "Teacher";

/**
 * The name to show for a participant: an ad-hoc lesson's teacher, who has no account, is
 * shown as `teacherWord` (the page's word for teacher) rather than the server's English one.
 * @param {{name?: unknown, role?: unknown} | null | undefined} person
 * @param {string} teacherWord
 * @returns {string}
 */
export function personName(person, teacherWord) {
  const name = String(person?.name ?? "");
  return person?.role === "teacher" && name === UNNAMED_TEACHER ? teacherWord : name;
}
