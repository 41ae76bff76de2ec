// A typed client of sessiond: every path, body and answer below is checked by `tsc --strict`
// against types generated from sessiond's OpenAPI document, then run against a live server.
//
//   npm ci && npm run build      (generates src/schema.d.ts from ../../openapi/openapi.json first)
//   SESSIOND_URL=http://127.0.0.1:8080 SESSIOND_SERVICE_KEYS=… npm start

import assert from "node:assert/strict";
import { bearer, run, serviceKey, sessiond } from "./connection.js";
import type { components } from "./schema.js";

type Session = components["schemas"]["Session"];

/** An app server logs a user in; returns the new session and its token. */
async function logIn(body: components["schemas"]["NewSessionRequest"]) {
  const { data, error, response } = await sessiond.POST("/sessions", {
    headers: { "X-Service-Key": serviceKey },
    body,
  });
  return { data, error, status: response.status };
}

// Log in, then validate the token as an app server does on every request.
const teresa = await logIn({
  user_id: `tpringle-${run}`,
  name: "Teresa Pringle",
  ip_address: "59.100.242.122",
  user_agent: "Firefox",
});
assert.equal(teresa.status, 201);
assert.ok(teresa.data);
const token: string = teresa.data.token;
const ended: string[] = teresa.data.ended;
assert.deepEqual(ended, []);

const current = await sessiond.GET("/sessions/current", { headers: bearer(token) });
assert.ok(current.data);
const me: Session = current.data;
assert.equal(me.own, true);
// Always sent, possibly null: the type says so, no optional chaining needed.
const agent: string | null = me.user_agent;
assert.equal(agent, "Firefox");

// The same user from another address is refused, and the problem says by which sessions.
const denied = await logIn({
  user_id: `tpringle-${run}`,
  name: "Teresa Pringle",
  ip_address: "203.0.113.7",
});
assert.equal(denied.status, 409);
assert.ok(denied.error);
if ("sessions" in denied.error) {
  // Narrowed to the login-denied problem: `code` is "login-denied" and `sessions` is there.
  const code: "login-denied" = denied.error.code;
  const inTheWay: string[] = denied.error.sessions.map((s) => s.ip_address);
  assert.equal(code, "login-denied");
  assert.deepEqual(inTheWay, ["59.100.242.122"]);
} else {
  assert.fail(`expected login-denied, got ${denied.error.code}`);
}

// An administrator lists every session of this run, a page at a time, following the cursor.
const admin = await logIn({
  user_id: `admin-${run}`,
  name: "Ada Admin",
  ip_address: "10.0.0.1",
  roles: ["admin"],
  organisation: `Org-${run}`,
});
assert.ok(admin.data);
const adminToken = admin.data.token;
for (let i = 0; i < 5; i++) {
  const user = await logIn({
    user_id: `user-${run}-${i}`,
    name: `User ${i}`,
    ip_address: `10.0.1.${i}`,
    organisation: `Org-${run}`,
  });
  assert.equal(user.status, 201);
}
const seen: string[] = [];
let cursor: string | null = null;
do {
  const page: { data?: components["schemas"]["SessionList"] } = await sessiond.GET("/sessions", {
    headers: bearer(adminToken),
    params: {
      query: { organisation: `Org-${run}`, sort: "name", limit: 2, ...(cursor === null ? {} : { cursor }) },
    },
  });
  assert.ok(page.data);
  seen.push(...page.data.items.map((s) => s.id));
  // `next_cursor` goes straight back as `cursor`.
  cursor = page.data.next_cursor;
} while (cursor !== null);
assert.equal(seen.length, 6, "the administrator and five users");

// Bulk delete: every id is reported in exactly one list; the caller's own is refused.
const others = seen.filter((id) => id !== admin.data!.session.id);
const bulk = await sessiond.DELETE("/sessions", {
  headers: bearer(adminToken),
  body: { ids: [...others, admin.data.session.id] },
});
assert.ok(bulk.data);
assert.equal(bulk.data.deleted.length, others.length);
assert.deepEqual(
  bulk.data.refused.map((r) => r.reason),
  ["own-session"],
);

// Log out: the token stops working at once.
const out = await sessiond.DELETE("/sessions/current", { headers: bearer(token) });
assert.equal(out.response.status, 204);
const after = await sessiond.GET("/sessions/current", { headers: bearer(token) });
assert.equal(after.response.status, 401);
assert.ok(after.error);
assert.equal(after.error.code, "unauthorized");

console.log(`typed client: ${seen.length} sessions listed over pages, all checks passed`);
