// Names as the page shows them: the stand-in initial is the given name's (the last word).
import assert from "node:assert/strict";
import { test } from "node:test";

import { initialOf } from "../js/names.js";

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
