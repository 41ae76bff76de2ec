// The Session Management page: lists sessions through the API with the administrator's own
// bearer token, and ends the checked ones with one DELETE /sessions. Every session holder also
// gets My sessions: its own user's sessions, each of which it may end.
import { formatDuration } from "./format.js";

const TOKEN_KEY = "sessiond.token";
const PAGE_SIZE = 50;
// While the event stream is down, the list is polled this often instead.
const POLL_MS = 5000;
// A burst of events reloads the list once.
const LIVE_SETTLE_MS = 200;

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  me: null,
  sort: "name",
  order: "asc",
  q: "",
  organisation: "",
  cursors: [null], // the cursor of each page visited; the last is the current page
  rows: [],
  fetchedAt: 0,
  selected: new Set(),
  organisations: new Set(),
  autoTimer: null,
};

// The live event stream: what it last saw (to resume), and its reconnection delay.
const live = { controller: null, lastId: null, retryMs: 1000, pending: null, stale: false };

// --- signing in -----------------------------------------------------------------------------

function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    // Out of the address bar (and history) at once.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return token;
}

function showSignIn(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  stopLive();
  stopAutoRefresh();
  $("console").hidden = true;
  $("mine").hidden = true;
  $("views").hidden = true;
  $("sign-out").hidden = true;
  $("whoami").textContent = "";
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("token-input").value = "";
  $("token-input").focus();
}

// Signing out ends the session on the server too: the token stops working everywhere.
async function signOut() {
  const token = state.token;
  if (token) {
    await fetch("/sessions/current", { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  showSignIn("Signed out.");
}

async function signIn(token) {
  state.token = token;
  const me = await api("GET", "/sessions/current");
  if (!me) return;
  state.me = me;
  sessionStorage.setItem(TOKEN_KEY, token);
  const role = me.roles.includes("admin") ? "admin" : me.roles.includes("org_admin") ? "org_admin" : "";
  $("whoami").textContent = `${me.name}${role ? ` · ${role}` : ""}`;
  $("sign-out").hidden = false;
  $("signin").hidden = true;
  // Administrators get both views; anyone else sees its own sessions.
  state.admin = role !== "";
  $("views").hidden = !state.admin;
  if (state.admin) {
    await showView("admin");
  } else {
    await showView("mine");
  }
}

async function showView(view) {
  state.view = view;
  $("console").hidden = view !== "admin";
  $("mine").hidden = view !== "mine";
  $("view-admin").setAttribute("aria-pressed", String(view === "admin"));
  $("view-mine").setAttribute("aria-pressed", String(view === "mine"));
  $("crumb-view").textContent = view === "admin" ? "Session Management" : "My sessions";
  if (view === "admin") {
    startLive();
    await load();
  } else {
    stopLive();
    stopAutoRefresh();
    await loadMine();
  }
}

// --- my sessions ----------------------------------------------------------------------------

async function loadMine() {
  let mine;
  try {
    mine = await api("GET", "/sessions/mine");
  } catch (e) {
    return showMineStatus(e.message, true);
  }
  if (!mine) return;
  $("mine-total").textContent = `${mine.total} ${mine.total === 1 ? "session" : "sessions"}`;
  $("mine-sessions").querySelector("tbody").replaceChildren(...mine.items.map(mineRow));
  $("end-others").disabled = mine.items.every((s) => s.own);
}

function mineRow(session) {
  const tr = document.createElement("tr");
  tr.dataset.id = session.id;
  const ip = cell(session.ip_address, "IP Address", "mono");
  if (session.own) {
    tr.classList.add("own");
    const here = document.createElement("span");
    here.className = "you";
    here.textContent = "this device";
    ip.append(" ", here);
  }
  const action = document.createElement("td");
  action.dataset.label = "";
  if (!session.own) {
    const end = document.createElement("button");
    end.type = "button";
    end.className = "danger end-one";
    end.textContent = "End";
    end.setAttribute("aria-label", `End the session from ${session.ip_address}`);
    end.addEventListener("click", () => endMine(session));
    action.append(end);
  }
  tr.append(
    ip,
    cell(session.server_name, "Server Name"),
    cell(session.user_agent || "—", "User Agent"),
    cell(formatDuration(session.session_time_seconds), "Session Time"),
    cell(`${formatDuration(session.idle_seconds)} ago`, "Last Active"),
    action,
  );
  return tr;
}

async function endMine(session) {
  try {
    if (!(await api("DELETE", `/sessions/${session.id}`))) return;
    showMineStatus(`Ended the session from ${session.ip_address}.`);
  } catch (e) {
    showMineStatus(e.message, true);
  }
  await loadMine();
}

async function endOthers() {
  try {
    const ended = await api("DELETE", "/sessions/mine");
    if (!ended) return;
    const n = ended.deleted.length;
    showMineStatus(`Ended ${n} other ${n === 1 ? "session" : "sessions"}; this device stays signed in.`);
  } catch (e) {
    showMineStatus(e.message, true);
  }
  await loadMine();
}

function showMineStatus(message, isError = false) {
  say($("mine-status"), message, isError);
}

// --- talking to the API ---------------------------------------------------------------------

class Refused extends Error {}

// Returns the parsed body, or null after handling a 401/403 by returning to the prompt.
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Refused("sessiond cannot be reached");
  }
  if (response.status === 401) {
    showSignIn("Your session has ended or the token is not valid. Sign in again.");
    return null;
  }
  if (response.status === 403) {
    const data = await response.json().catch(() => ({}));
    throw new Refused(data.detail || "Not allowed.");
  }
  if (response.status === 204) return {};
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Refused(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

// --- the list -------------------------------------------------------------------------------

function listPath() {
  const params = new URLSearchParams({ sort: state.sort, order: state.order, limit: PAGE_SIZE });
  if (state.q) params.set("q", state.q);
  if (state.organisation) params.set("organisation", state.organisation);
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) params.set("cursor", cursor);
  return `/sessions?${params}`;
}

// --- at a glance ----------------------------------------------------------------------------

const GLANCE_BARS = 8;

async function loadSummary() {
  let summary;
  try {
    summary = await api("GET", "/sessions/summary");
  } catch {
    return;
  }
  if (!summary) return;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  $("glance-total").textContent = plural(summary.total, "session", "sessions");
  $("glance-users").textContent = `of ${plural(summary.users, "user", "users")}`;
  const largest = Math.max(1, ...summary.by_organisation.map((o) => o.sessions), ...summary.by_server.map((s) => s.sessions));
  $("glance-organisations").replaceChildren(
    ...summary.by_organisation.slice(0, GLANCE_BARS).map((o) => {
      const seats = o.seats === null ? "" : ` · ${o.users} of ${o.seats} seats`;
      return bar(o.organisation, o.sessions, largest, `${plural(o.sessions, "session", "sessions")} · ${plural(o.users, "user", "users")}${seats}`, o.seats !== null && o.users >= o.seats);
    }),
  );
  $("glance-servers").replaceChildren(
    ...summary.by_server.slice(0, GLANCE_BARS).map((s) => bar(s.server_name, s.sessions, largest, plural(s.sessions, "session", "sessions"), false)),
  );
}

// One row of a bar chart: the label, a bar as long as its share, and the figures in words.
function bar(label, value, largest, words, full) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.className = "bar-label";
  name.textContent = label;
  const track = document.createElement("span");
  track.className = "bar-track";
  const fill = document.createElement("span");
  fill.className = full ? "bar-fill full" : "bar-fill";
  fill.style.width = `${Math.max(2, (100 * value) / largest)}%`;
  track.append(fill);
  const figures = document.createElement("span");
  figures.className = "bar-figures";
  figures.textContent = words;
  li.append(name, track, figures);
  return li;
}

async function load() {
  loadSummary();
  let page;
  try {
    page = await api("GET", listPath());
  } catch (e) {
    if (state.cursors.length > 1 && /cursor/.test(e.message)) {
      state.cursors = [null];
      return load();
    }
    return showStatus(e.message, true);
  }
  if (!page) return;
  state.rows = page.items;
  state.fetchedAt = Date.now();
  state.nextCursor = page.next_cursor;
  const present = new Set(page.items.map((s) => s.id));
  state.selected = new Set([...state.selected].filter((id) => present.has(id)));
  page.items.forEach((s) => state.organisations.add(s.organisation));
  renderOrganisations();
  render(page.total);
}

function render(total) {
  const tbody = document.querySelector("#sessions tbody");
  tbody.replaceChildren(...state.rows.map(row));
  $("empty").hidden = state.rows.length > 0;
  $("total").textContent = `${total} ${total === 1 ? "session" : "sessions"}`;
  const pageNo = state.cursors.length;
  $("page-info").textContent = `Page ${pageNo}`;
  $("first-page").disabled = pageNo === 1;
  $("prev-page").disabled = pageNo === 1;
  $("next-page").disabled = !state.nextCursor;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const active = th.dataset.sort === state.sort;
    if (active) th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
  syncSelection();
}

function cell(text, label, className) {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

function row(session) {
  const tr = document.createElement("tr");
  tr.dataset.id = session.id;
  const check = document.createElement("input");
  check.type = "checkbox";
  check.className = "row-check";
  check.setAttribute("aria-label", `Select ${session.name}`);
  check.checked = state.selected.has(session.id);
  if (session.own) {
    check.disabled = true;
    check.title = "Your own session: sign out instead";
    tr.classList.add("own");
  }
  check.addEventListener("change", () => {
    if (check.checked) state.selected.add(session.id);
    else state.selected.delete(session.id);
    syncSelection();
  });
  const checkCell = document.createElement("td");
  checkCell.className = "check";
  checkCell.append(check);

  const name = cell(session.name, "Name", "name");
  name.title = session.user_id;
  if (session.own) {
    const you = document.createElement("span");
    you.className = "you";
    you.textContent = "(you)";
    name.append(" ", you);
  }
  const time = cell(formatDuration(session.session_time_seconds), "Session Time", "session-time");
  time.dataset.base = session.session_time_seconds;
  tr.append(
    checkCell,
    name,
    cell(session.organisation, "Organisation"),
    cell(session.ip_address, "IP Address", "mono"),
    cell(session.server_name, "Server Name"),
    cell(formatDuration(session.timeout_seconds), "Timeout"),
    time,
  );
  return tr;
}

function renderOrganisations() {
  const select = $("organisation");
  const known = new Set([...select.options].map((o) => o.value));
  for (const org of [...state.organisations].sort()) {
    if (!known.has(org)) select.append(new Option(org, org));
  }
}

// The Session Time column keeps counting between refreshes.
function tick() {
  const elapsed = Math.floor((Date.now() - state.fetchedAt) / 1000);
  for (const td of document.querySelectorAll("td.session-time")) {
    td.textContent = formatDuration(Number(td.dataset.base) + elapsed);
  }
}

// --- selection and delete -------------------------------------------------------------------

function selectable() {
  return [...document.querySelectorAll("input.row-check:not(:disabled)")];
}

function syncSelection() {
  const boxes = selectable();
  const checked = boxes.filter((b) => b.checked).length;
  const all = $("select-all");
  all.checked = boxes.length > 0 && checked === boxes.length;
  all.indeterminate = checked > 0 && checked < boxes.length;
  const n = state.selected.size;
  $("delete").disabled = n === 0;
  $("delete").textContent = n ? `Delete (${n})` : "Delete";
}

function confirmDelete(count) {
  const dialog = $("confirm");
  $("confirm-text").textContent =
    `End ${count} ${count === 1 ? "session" : "sessions"}? ${count === 1 ? "Its user" : "Their users"} will have to log in again.`;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

async function deleteSelected() {
  const ids = [...state.selected];
  if (!ids.length || !(await confirmDelete(ids.length))) return;
  let result;
  try {
    result = await api("DELETE", "/sessions", { ids });
  } catch (e) {
    return showStatus(`Nothing was deleted: ${e.message}`, true);
  }
  if (!result) return;
  const parts = [];
  const plural = (n) => (n === 1 ? "session" : "sessions");
  if (result.deleted.length) parts.push(`Deleted ${result.deleted.length} ${plural(result.deleted.length)}.`);
  if (result.not_found.length) parts.push(`${result.not_found.length} not found (already ended).`);
  if (result.refused.length) parts.push(`${result.refused.length} refused (your own session).`);
  state.selected.clear();
  showStatus(parts.join(" "));
  await load();
}

function showStatus(message, isError = false) {
  say($("status"), message, isError);
}

// Puts a message in a status line (announced: the lines are aria-live), marked if an error.
function say(status, message, isError) {
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// --- live updates ---------------------------------------------------------------------------

// The list follows GET /events: each event (a login, a logout, an expiry, a deletion made
// anywhere) reloads the page in view, so rows appear and disappear as sessions start and end.
// An EventSource cannot send the bearer token, so the stream is read with fetch. While it is
// down the indicator says so and the list is polled instead; it reconnects with backoff and
// resumes after the last event seen.
function stopLive() {
  if (live.controller) live.controller.abort();
  live.controller = null;
  clearTimeout(live.pending);
}

async function startLive() {
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
  clearTimeout(live.pending);
  live.pending = setTimeout(() => load(), LIVE_SETTLE_MS);
}

function showLive(up) {
  const badge = $("live");
  badge.textContent = up ? "Live" : "Offline · refreshing every 5 s";
  badge.classList.toggle("down", !up);
  if (up) stopAutoRefresh();
  else startPolling();
}

function stopAutoRefresh() {
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

// --- wiring ---------------------------------------------------------------------------------

function restart() {
  state.cursors = [null];
  load();
}

function wire() {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token-input").value.trim()).catch((err) => ($("signin-error").textContent = err.message));
  });
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", () => load());
  $("mine-refresh").addEventListener("click", () => loadMine());
  $("end-others").addEventListener("click", endOthers);
  $("view-admin").addEventListener("click", () => showView("admin"));
  $("view-mine").addEventListener("click", () => showView("mine"));
  $("delete").addEventListener("click", deleteSelected);
  $("select-all").addEventListener("change", (e) => {
    for (const box of selectable()) {
      box.checked = e.target.checked;
      const id = box.closest("tr").dataset.id;
      if (box.checked) state.selected.add(id);
      else state.selected.delete(id);
    }
    syncSelection();
  });
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const sort = th.dataset.sort;
      state.order = state.sort === sort && state.order === "asc" ? "desc" : "asc";
      state.sort = sort;
      restart();
    });
  }
  let debounce;
  $("search").addEventListener("input", (e) => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.q = e.target.value.trim();
      restart();
    }, 250);
  });
  $("organisation").addEventListener("change", (e) => {
    state.organisation = e.target.value;
    restart();
  });
  $("next-page").addEventListener("click", () => {
    if (!state.nextCursor) return;
    state.cursors.push(state.nextCursor);
    load();
  });
  $("prev-page").addEventListener("click", () => {
    if (state.cursors.length > 1) state.cursors.pop();
    load();
  });
  $("first-page").addEventListener("click", restart);
  setInterval(tick, 1000);
}

wire();
// A #token=… link opened in a tab that already shows the page signs in too; a tab signed in
// already switches identity only when the administrator says so.
window.addEventListener("hashchange", () => {
  const token = tokenFromFragment();
  if (!token || token === state.token) return;
  if (state.token && state.me && !confirm(`You are signed in as ${state.me.name}. Sign in with the session of this link instead?`)) {
    return;
  }
  signIn(token).catch((e) => showSignIn(e.message));
});
const token = tokenFromFragment() || sessionStorage.getItem(TOKEN_KEY);
if (token) {
  signIn(token).catch((e) => showSignIn(e.message));
} else {
  showSignIn("");
}
