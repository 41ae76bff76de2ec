// At a glance: the totals and the largest organisations and servers, as bar charts.
import { $ } from "./state.js";
import { api } from "./api.js";

const GLANCE_BARS = 8;

export async function loadSummary() {
  let summary;
  try {
    // Only the bars it draws; the rest come summed in `other`.
    summary = await api("GET", `/sessions/summary?limit=${GLANCE_BARS}`);
  } catch {
    return;
  }
  if (!summary) return;
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  $("glance-total").textContent = plural(summary.total, "session", "sessions");
  $("glance-users").textContent = `of ${plural(summary.users, "user", "users")}`;
  const largest = Math.max(1, ...summary.by_organisation.map((o) => o.sessions), ...summary.by_server.map((s) => s.sessions));
  const more = (count, one, many, sessions) => {
    if (!count) return [];
    const li = document.createElement("li");
    li.className = "bar-more";
    li.textContent = `+ ${count} more ${count === 1 ? one : many} · ${plural(sessions, "session", "sessions")}`;
    return [li];
  };
  const other = summary.other;
  $("glance-organisations").replaceChildren(
    ...summary.by_organisation.map((o) => {
      const seats = o.seats === null ? "" : ` · ${o.users} of ${o.seats} seats`;
      return bar(o.organisation, o.sessions, largest, `${plural(o.sessions, "session", "sessions")} · ${plural(o.users, "user", "users")}${seats}`, o.seats !== null && o.users >= o.seats);
    }),
    ...more(other.by_organisation.organisations, "organisation", "organisations", other.by_organisation.sessions),
  );
  $("glance-servers").replaceChildren(
    ...summary.by_server.map((s) => bar(s.server_name, s.sessions, largest, plural(s.sessions, "session", "sessions"), false)),
    ...more(other.by_server.servers, "server", "servers", other.by_server.sessions),
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
