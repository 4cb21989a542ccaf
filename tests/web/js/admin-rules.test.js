// The administration page's rules: the server's username and password rules as the page checks
// them before sending, account states, Vietnamese order, who can join a class, where a login
// lands.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  PASSWORD_CHARS,
  accountState,
  addableTeachers,
  landingPage,
  normaliseUsername,
  passwordProblem,
  sortPeople,
} from "../js/admin-rules.js";

test("usernames as the server keeps them", () => {
  assert.equal(normaliseUsername("  CoThu "), "cothu");
  assert.equal(normaliseUsername("thu.nguyen-2"), "thu.nguyen-2");
  assert.equal(normaliseUsername("a_b"), "a_b");
  assert.equal(normaliseUsername("ab"), null); // too short
  assert.equal(normaliseUsername("a".repeat(32)), "a".repeat(32));
  assert.equal(normaliseUsername("a".repeat(33)), null);
  assert.equal(normaliseUsername("2thu"), null); // starts with a digit
  assert.equal(normaliseUsername("cô.thu"), null); // letters with marks are not a-z
  assert.equal(normaliseUsername("co thu"), null);
  assert.equal(normaliseUsername(` ${"a".repeat(64)}`), null); // over the input limit
  assert.equal(normaliseUsername(undefined), null);
});

test("new passwords are 8 to 256 characters, counted as the server counts", () => {
  assert.deepEqual(PASSWORD_CHARS, { min: 8, max: 256 });
  assert.equal(passwordProblem("1234567"), "weak_password");
  assert.equal(passwordProblem("12345678"), null);
  assert.equal(passwordProblem("x".repeat(256)), null);
  assert.equal(passwordProblem("x".repeat(257)), "weak_password");
  // Eight Vietnamese letters typed decomposed are eight characters after NFC, not sixteen.
  const decomposed = "mật khẩu".normalize("NFD");
  assert.ok(decomposed.length > 8);
  assert.equal(passwordProblem(decomposed), null);
  assert.equal(passwordProblem("ă".normalize("NFD").repeat(129)), null); // 129 after NFC
  // A letter outside the basic plane is one character; a lone surrogate is not text.
  assert.equal(passwordProblem("𝒜".repeat(8)), null);
  assert.equal(passwordProblem("1234567\uD800"), "weak_password");
  assert.equal(passwordProblem(""), "weak_password");
});

test("a password typed twice must match, NFC either way", () => {
  assert.equal(passwordProblem("mật khẩu mới", "mật khẩu mới"), null);
  assert.equal(passwordProblem("mật khẩu mới", "mật khẩu mới".normalize("NFD")), null);
  assert.equal(passwordProblem("mật khẩu mới", "mật khẩu moi"), "password_mismatch");
  assert.equal(passwordProblem("mật khẩu mới", ""), "password_mismatch");
  // Too short is said first: fixing the second field would not help.
  assert.equal(passwordProblem("123", "1234"), "weak_password");
});

test("an account is active until disabled", () => {
  assert.equal(accountState({ disabled_at: null }), "active");
  assert.equal(accountState({}), "active");
  assert.equal(accountState({ disabled_at: "2026-12-04T10:00:00Z" }), "disabled");
});

const people = [
  { username: "lan", full_name: "Nguyễn Thị Lan" },
  { username: "duc", full_name: "Trần Minh Đức" },
  { username: "an2", full_name: "Phạm Văn An" },
  { username: "an1", full_name: "Lê Thị An" },
  { username: "dung", full_name: "Hoàng Dung" },
  { username: "anh", full_name: "Võ Ánh" },
];

test("people are listed by given name, Vietnamese letters in their place", () => {
  assert.deepEqual(
    sortPeople(people).map((person) => person.username),
    ["an1", "an2", "anh", "dung", "duc", "lan"],
  );
  assert.equal(people[0].username, "lan", "sorting makes a copy");
});

test("only active teachers not yet teaching the class can be added", () => {
  const teachers = [
    ...people,
    { username: "mai", full_name: "Đỗ Thị Mai", disabled_at: "2026-12-01T00:00:00Z" },
  ];
  const schoolClass = { teachers: [{ username: "lan" }, { username: "anh" }] };
  assert.deepEqual(
    addableTeachers(schoolClass, teachers).map((teacher) => teacher.username),
    ["an1", "an2", "dung", "duc"],
  );
  assert.deepEqual(addableTeachers({ teachers: [] }, []), []);
});

test("a login lands where it was asked for, else by role", () => {
  assert.equal(landingPage("admin", null), "/admin");
  assert.equal(landingPage("teacher", null), "/lessons");
  assert.equal(landingPage(undefined, null), "/lessons");
  assert.equal(landingPage("admin", "/classes/x/roster"), "/classes/x/roster");
  assert.equal(landingPage("teacher", "/admin"), "/admin"); // that page then sends her on
});
