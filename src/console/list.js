// The Session Management list: a page of sessions, sorted, filtered and searched, with a
// checkbox per row, and Delete for the checked ones.
import { formatDuration } from "./format.js";
import { $, cell, PAGE_SIZE, say, state } from "./state.js";
import { api } from "./api.js";
import { loadSummary } from "./glance.js";

function listPath() {
  const params = new URLSearchParams({ sort: state.sort, order: state.order, limit: PAGE_SIZE });
  if (state.q) params.set("q", state.q);
  if (state.organisation) params.set("organisation", state.organisation);
  const cursor = state.cursors[state.cursors.length - 1];
  if (cursor) params.set("cursor", cursor);
  return `/sessions?${params}`;
}

export async function load() {
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
export function tick() {
  const elapsed = Math.floor((Date.now() - state.fetchedAt) / 1000);
  for (const td of document.querySelectorAll("td.session-time")) {
    td.textContent = formatDuration(Number(td.dataset.base) + elapsed);
  }
}

// --- selection and delete -------------------------------------------------------------------

export function selectable() {
  return [...document.querySelectorAll("input.row-check:not(:disabled)")];
}

export function syncSelection() {
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

export async function deleteSelected() {
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

export function restart() {
  state.cursors = [null];
  load();
}
