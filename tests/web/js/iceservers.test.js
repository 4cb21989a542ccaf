// Which of the server's `ice_servers` the page gives its peer connections.
import assert from "node:assert/strict";
import { test } from "node:test";

import { usableIceServers } from "../js/media.js";

test("nothing named: no ICE server at all (never a public STUN server)", () => {
  assert.deepEqual(usableIceServers(undefined), []);
  assert.deepEqual(usableIceServers(null), []);
  assert.deepEqual(usableIceServers("turn:x"), []);
});

test("the school's TURN relay with the credentials minted for this participant", () => {
  const servers = [
    {
      urls: ["turn:turn.truong.vn:3478?transport=udp", "turns:turn.truong.vn:443?transport=tcp"],
      username: "1767225600:p1",
      credential: "c2VjcmV0",
    },
  ];
  assert.deepEqual(usableIceServers(servers), servers);
});

test("a single URL string is taken; other schemes and junk entries are left out", () => {
  assert.deepEqual(
    usableIceServers([
      { urls: "turn:10.0.0.2:3478", username: "u", credential: "c" },
      { urls: ["https://evil.example", 7] },
      { urls: [] },
      null,
      { urls: "stun:10.0.0.2:3478", username: 5 },
    ]),
    [
      { urls: ["turn:10.0.0.2:3478"], username: "u", credential: "c" },
      { urls: ["stun:10.0.0.2:3478"] },
    ],
  );
});
