// Names as the page shows them: the stand-in initial is the given name's (the last word).
import assert from "node:assert/strict";
import { test } from "node:test";

import { UNNAMED_TEACHER, initialOf, personName } from "../js/names.js";

test("a Vietnamese name's initial is its given name's", () => {
  assert.equal(initialOf("Nguyễn Thị Lan"), "L");
  assert.equal(initialOf("  Trần   Văn   Ánh  "), "Á");
  assert.equal(initialOf("Nguyễn Văn An"), "A");
  assert.equal(initialOf("Nguyễn Văn Bình"), "B"); // not "N" for a whole class of Nguyễns
});

test("one word, lower case, nothing", () => {
  assert.equal(initialOf("bảo"), "B");
  assert.equal(initialOf(""), "?");
  assert.equal(initialOf(null), "?");
  assert.equal(initialOf("   "), "?");
});

test("letters outside the basic plane count as one", () => {
  assert.equal(initialOf("Lê 𝒜nh"), "𝒜");
});


test("an ad-hoc lesson's teacher is shown in the page's language; everyone else as named", () => {
  assert.equal(personName({ name: UNNAMED_TEACHER, role: "teacher" }, "Giáo viên"), "Giáo viên");
  assert.equal(personName({ name: "Nguyễn Thị Lan", role: "teacher" }, "Giáo viên"), "Nguyễn Thị Lan");
  // A student who calls herself "Teacher" is not turned into one.
  assert.equal(personName({ name: "Teacher", role: "student" }, "Giáo viên"), "Teacher");
  assert.equal(personName(null, "Giáo viên"), "");
});
