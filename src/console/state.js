// What every part of the console shares: the signed-in caller, the list's view, the live
// stream's state, and small helpers for the page's elements.
export const TOKEN_KEY = "sessiond.token";
export const PAGE_SIZE = 50;
// While the event stream is down, the list is polled this often instead.
export const POLL_MS = 5000;
// Events reload the list at most this often, however many keep coming.
export const LIVE_SETTLE_MS = 200;

export const $ = (id) => document.getElementById(id);

export const state = {
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
export const live = { controller: null, lastId: null, retryMs: 1000, pending: null, stale: false };


// Puts a message in a status line (announced: the lines are aria-live), marked if an error.
export function say(status, message, isError) {
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// A table cell with its column's name (shown beside the value when the table reads as cards).
export function cell(text, label, className) {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  if (className) td.className = className;
  return td;
}
