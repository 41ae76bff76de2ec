// A live administrator's view, kept as a frontend keeps one: load the list, then follow
// `GET /events` from the list's `last_event_id`, applying each change — so a change made
// between the load and the follow is not lost. `stream-reset` means "reload, then follow";
// `stream-ended` means the viewer's own session ended. Every message is narrowed on `type`
// by the generated types alone: no cast.
//
//   npm run build && SESSIOND_URL=http://127.0.0.1:8080 SESSIOND_SERVICE_KEYS=… node dist/live.js

import assert from "node:assert/strict";
import { createParser } from "eventsource-parser";
import { bearer, run, serviceKey, sessiond } from "./connection.js";
import type { components } from "./schema.js";

type Session = components["schemas"]["Session"];
type StreamMessage = components["schemas"]["StreamMessage"];

const organisation = `Live-${run}`;

async function logIn(user: string, roles: string[] = []) {
  const { data } = await sessiond.POST("/sessions", {
    headers: { "X-Service-Key": serviceKey },
    body: { user_id: `${user}-${run}`, name: user, ip_address: "10.1.0.1", organisation, roles },
  });
  assert.ok(data, `${user} logs in`);
  return data;
}

/** The messages of one `GET /events` connection, parsed and typed, until it closes. */
async function* follow(token: string, lastEventId: string, signal: AbortSignal, opened: () => void) {
  const { data: body, response } = await sessiond.GET("/events", {
    headers: bearer(token),
    params: { header: { "Last-Event-ID": lastEventId } },
    parseAs: "stream",
    signal,
  });
  assert.equal(response.status, 200);
  assert.ok(body);
  opened();
  const parsed: StreamMessage[] = [];
  const parser = createParser({
    onEvent: (event) => {
      // The schema of the stream's `data`: JSON.parse gives it its type, no cast.
      const message: StreamMessage = JSON.parse(event.data);
      parsed.push(message);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    parser.feed(decoder.decode(chunk, { stream: true }));
    yield* parsed.splice(0);
  }
}

/** One organisation's live sessions, as a console shows them. */
class LiveView {
  readonly sessions = new Map<string, Session>();
  lastEventId = "";
  readonly resets: string[] = [];
  ended = false;
  /** How many times it has connected to the stream. */
  connections = 0;
  private readonly changed: Array<() => void> = [];

  constructor(private readonly token: string) {}

  /** Loads the list; the events after its `last_event_id` are what it does not hold yet. */
  async load() {
    const { data } = await sessiond.GET("/sessions", {
      headers: bearer(this.token),
      params: { query: { organisation, limit: 1000 } },
    });
    assert.ok(data);
    this.sessions.clear();
    for (const session of data.items) this.sessions.set(session.id, session);
    this.lastEventId = data.last_event_id;
    this.notify();
  }

  /** Applies one message; what the follower does next. */
  apply(message: StreamMessage): "follow" | "reload" | "stop" {
    switch (message.type) {
      case "session-created":
        // Narrowed: `data` is a Session.
        if (message.data.organisation === organisation) this.sessions.set(message.data.id, message.data);
        this.lastEventId = message.id;
        break;
      case "session-ended":
        // Narrowed: `data` says which session ended, and why.
        this.sessions.delete(message.data.id);
        this.lastEventId = message.id;
        break;
      case "login-denied":
        this.lastEventId = message.id;
        break;
      case "stream-reset":
        this.resets.push(message.data.reason);
        return "reload";
      case "stream-ended":
        this.ended = true;
        this.notify();
        return "stop";
    }
    this.notify();
    return "follow";
  }

  /** Keeps the view current until its session ends or `signal` aborts. */
  async keepCurrent(signal: AbortSignal) {
    while (!signal.aborted && !this.ended) {
      try {
        const opened = () => {
          this.connections += 1;
          this.notify();
        };
        for await (const message of follow(this.token, this.lastEventId, signal, opened)) {
          const next = this.apply(message);
          if (next === "stop") return;
          if (next === "reload") {
            await this.load();
            break;
          }
        }
      } catch (e) {
        if (!signal.aborted) throw e;
      }
    }
  }

  /** Resolves once `holds` is true of the view (at most 10 s). */
  async until(holds: (view: LiveView) => boolean, what: string) {
    const deadline = setTimeout(() => this.notify(), 10_000);
    const started = Date.now();
    while (!holds(this)) {
      if (Date.now() - started >= 10_000) assert.fail(`the live view never showed ${what}`);
      await new Promise<void>((resolve) => this.changed.push(resolve));
    }
    clearTimeout(deadline);
  }

  private notify() {
    for (const resolve of this.changed.splice(0)) resolve();
  }
}

/** The organisation's sessions, as a fresh list shows them now. */
async function listed(token: string): Promise<string[]> {
  const { data } = await sessiond.GET("/sessions", {
    headers: bearer(token),
    params: { query: { organisation, limit: 1000 } },
  });
  assert.ok(data);
  return data.items.map((s) => s.id).sort();
}
const held = (view: LiveView) => [...view.sessions.keys()].sort();

const admin = await logIn("admin", ["admin"]);
const users = [await logIn("ann"), await logIn("bob"), await logIn("cyd")];

// Load, and change things before following: the follow must catch up on them.
const view = new LiveView(admin.token);
await view.load();
assert.equal(view.sessions.size, 4);
const late = await logIn("late");
const gone = await sessiond.DELETE("/sessions/current", { headers: bearer(users[0]!.token) });
assert.equal(gone.response.status, 204);

const stop = new AbortController();
const following = view.keepCurrent(stop.signal);
await view.until((v) => v.sessions.has(late.session.id) && !v.sessions.has(users[0]!.session.id), "the changes made between load and follow");

// Changes while following.
const during = await logIn("during");
const removed = await sessiond.DELETE("/sessions/{id}", {
  headers: bearer(admin.token),
  params: { path: { id: users[1]!.session.id } },
});
assert.equal(removed.response.status, 204);
await view.until((v) => v.sessions.has(during.session.id) && !v.sessions.has(users[1]!.session.id), "the changes made while following");
assert.deepEqual(held(view), await listed(admin.token), "the live view is the list");
assert.deepEqual(view.resets, []);

// Resuming from an id the server does not hold: told so (`gap`), the view reloads and goes on.
const stale = new LiveView(admin.token);
await stale.load();
stale.lastEventId = "1-0";
const staleFollowing = stale.keepCurrent(stop.signal);
await stale.until((v) => v.resets.length > 0, "a stream-reset");
assert.deepEqual(stale.resets, ["gap"]);
const afterReset = await logIn("after-reset");
await stale.until((v) => v.sessions.has(afterReset.session.id), "a login after the reset");
assert.deepEqual(held(stale), await listed(admin.token));

// The viewer's own session ends: the stream says so and closes.
const second = await logIn("second-admin", ["admin"]);
const watcher = new LiveView(second.token);
await watcher.load();
const watching = watcher.keepCurrent(new AbortController().signal);
await watcher.until((v) => v.connections > 0 && v.sessions.has(second.session.id), "its stream open");
const ended = await sessiond.DELETE("/sessions/{id}", {
  headers: bearer(admin.token),
  params: { path: { id: second.session.id } },
});
assert.equal(ended.response.status, 204);
await watching;
assert.equal(watcher.ended, true);

stop.abort();
await Promise.all([following, staleFollowing]);
console.log(`live view: followed ${view.sessions.size} sessions from the list's last_event_id; stream-reset and stream-ended handled`);
