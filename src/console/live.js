// Live updates of the list from GET /events, with polling while the stream is down.
import { $, live, LIVE_SETTLE_MS, POLL_MS, state } from "./state.js";
import { showSignIn } from "./signin.js";
import { load } from "./list.js";

// The list follows GET /events: each event (a login, a logout, an expiry, a deletion made
// anywhere) reloads the page in view, so rows appear and disappear as sessions start and end.
// An EventSource cannot send the bearer token, so the stream is read with fetch. While it is
// down the indicator says so and the list is polled instead; it reconnects with backoff and
// resumes after the last event seen.
export function stopLive() {
  if (live.controller) live.controller.abort();
  live.controller = null;
  clearTimeout(live.pending);
  live.pending = null;
}

export async function startLive() {
  stopLive();
  const controller = new AbortController();
  live.controller = controller;
  const headers = { Authorization: `Bearer ${state.token}` };
  if (live.lastId) headers["Last-Event-ID"] = live.lastId;
  try {
    const response = await fetch("/events", { headers, signal: controller.signal });
    if (response.status === 401) return showSignIn("Your session has ended or the token is not valid. Sign in again.");
    if (!response.ok || !response.body) throw new Error(`${response.status}`);
    showLive(true);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        onLiveMessage(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch {
    // Aborted, or the network failed: handled below.
  }
  if (live.controller !== controller) return;
  showLive(false);
  setTimeout(() => {
    if (live.controller === controller && state.token && state.view === "admin") startLive();
  }, live.retryMs);
  live.retryMs = Math.min(live.retryMs * 2, 30000);
}

function onLiveMessage(message) {
  let id = null;
  let data = "";
  for (const line of message.split("\n")) {
    if (line.startsWith("id:")) id = line.slice(3).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trimStart();
  }
  if (!data) return;
  if (id) live.lastId = id;
  live.retryMs = 1000;
  // Reloading counts as activity of the administrator's session, so a hidden tab waits.
  if (document.hidden) {
    live.stale = true;
    return;
  }
  // A throttle, not a debounce: under a steady stream of events the list still reloads every
  // LIVE_SETTLE_MS (a debounce would wait for a pause that a busy site never has).
  if (live.pending) return;
  live.pending = setTimeout(() => {
    live.pending = null;
    load();
  }, LIVE_SETTLE_MS);
}

function showLive(up) {
  const badge = $("live");
  badge.textContent = up ? "Live" : "Offline · refreshing every 5 s";
  badge.classList.toggle("down", !up);
  if (up) stopAutoRefresh();
  else startPolling();
}

export function stopAutoRefresh() {
  clearInterval(state.autoTimer);
  state.autoTimer = null;
}

// Polling counts as activity of the administrator's session: a tab nobody looks at must not
// keep it alive forever, so a hidden tab does not poll, and catches up when shown again.
function startPolling() {
  stopAutoRefresh();
  if (state.token) {
    state.autoTimer = setInterval(() => {
      if (!document.hidden) load();
    }, POLL_MS);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden || !state.token || state.view !== "admin") return;
  if (state.autoTimer || live.stale) {
    live.stale = false;
    load();
  }
});
