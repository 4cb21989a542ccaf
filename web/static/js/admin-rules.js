/**
 * The administration page's rules, apart from the page so that they run under Node's test
 * runner (tests/web/js/admin-rules.test.js): what a new username and password must be (the
 * server's own rules, `classroom/accounts.py` and `classroom/passwords.py`, checked before
 * sending so a typo is caught at once; the server still decides), an account's state, the
 * order people are listed in, who can still be added to a class, and where a login lands.
 */

/** Password lengths the server accepts, in characters (after NFC). */
export const PASSWORD_CHARS = Object.freeze({ min: 8, max: 256 });

const USERNAME = /^[a-z][a-z0-9._-]{2,31}$/;
const MAX_USERNAME_INPUT = 64;

/**
 * A username as the server stores it (NFC, trimmed, lower case), or null unless it is 3–32 of
 * `a-z 0-9 . _ -` starting with a letter.
 * @param {unknown} typed
 * @returns {string | null}
 */
export function normaliseUsername(typed) {
  if (typeof typed !== "string" || typed.length > MAX_USERNAME_INPUT) return null;
  const clean = typed.normalize("NFC").trim().toLowerCase();
  return USERNAME.test(clean) ? clean : null;
}

/**
 * What is wrong with a new password (and its second typing, when the form asks twice), as an
 * error code: `weak_password` (not 8–256 characters), `password_mismatch`, or null.
 * @param {string} password
 * @param {string} [again] the same password typed a second time
 * @returns {"weak_password" | "password_mismatch" | null}
 */
export function passwordProblem(password, again) {
  const text = String(password ?? "").normalize("NFC");
  const length = [...text].length;
  const loneSurrogate = /[\uD800-\uDFFF]/u.test(text);
  if (length < PASSWORD_CHARS.min || length > PASSWORD_CHARS.max || loneSurrogate) {
    return "weak_password";
  }
  if (again !== undefined && String(again).normalize("NFC") !== text) return "password_mismatch";
  return null;
}

/**
 * @param {{disabled_at?: string | null}} user
 * @returns {"active" | "disabled"}
 */
export function accountState(user) {
  return user?.disabled_at ? "disabled" : "active";
}

const collator = new Intl.Collator("vi", { sensitivity: "base", numeric: true });

/** A name's given name: its last word ("Nguyễn Thị Lan" → "Lan"). */
function givenName(name) {
  const words = String(name ?? "").trim().split(/\s+/);
  return words[words.length - 1] ?? "";
}

/**
 * Vietnamese order for people: by given name, then the whole name, then username (as class
 * lists are kept, so the Nguyễns are not all together).
 * @param {{full_name: string, username: string}} a
 * @param {{full_name: string, username: string}} b
 */
export function byGivenName(a, b) {
  return (
    collator.compare(givenName(a.full_name), givenName(b.full_name)) ||
    collator.compare(a.full_name, b.full_name) ||
    collator.compare(a.username, b.username)
  );
}

/**
 * A sorted copy.
 * @template {{full_name: string, username: string}} T
 * @param {T[]} people
 * @returns {T[]}
 */
export function sortPeople(people) {
  return [...people].sort(byGivenName);
}

/**
 * The teachers who can be added to a class: active ones not already teaching it, sorted.
 * @template {{username: string, full_name: string, disabled_at?: string | null}} T
 * @param {{teachers: Array<{username: string}>}} schoolClass
 * @param {T[]} teachers
 * @returns {T[]}
 */
export function addableTeachers(schoolClass, teachers) {
  const already = new Set((schoolClass.teachers ?? []).map((teacher) => teacher.username));
  return sortPeople(
    teachers.filter((teacher) => accountState(teacher) === "active" && !already.has(teacher.username)),
  );
}

/**
 * Where a login goes on to: the page that asked for it (`next`, already checked to be on this
 * site), else an administrator's page or a teacher's.
 * @param {string | undefined} role
 * @param {string | null} next
 * @returns {string}
 */
export function landingPage(role, next) {
  if (next) return next;
  return role === "admin" ? "/admin" : "/lessons";
}
