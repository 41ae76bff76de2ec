// My sessions: the caller's own user's sessions, each of which it may end.
import { describeDevice, formatAgo, formatDuration } from "./format.js";
import { $, cell, say } from "./state.js";
import { api } from "./api.js";

export async function loadMine() {
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
  // "Chrome 131 on macOS · 59.100.242.122 · active 3 minutes ago · this device"
  const where = session.last_ip_address !== session.ip_address
    ? `${session.ip_address} (last seen from ${session.last_ip_address})`
    : session.ip_address;
  const line = cell("", "Session");
  const device = document.createElement("strong");
  device.textContent = describeDevice(session.device, session.user_agent);
  line.append(device, ` · ${where} · active ${formatAgo(session.idle_seconds)}`);
  if (session.own) {
    tr.classList.add("own");
    const here = document.createElement("span");
    here.className = "you";
    here.textContent = "this device";
    line.append(" · ", here);
  }
  const action = document.createElement("td");
  action.dataset.label = "";
  if (!session.own) {
    const end = document.createElement("button");
    end.type = "button";
    end.className = "danger end-one";
    end.textContent = "End";
    end.setAttribute("aria-label", `End the session of ${device.textContent} from ${session.ip_address}`);
    end.addEventListener("click", () => endMine(session));
    action.append(end);
  }
  tr.append(
    line,
    cell(session.server_name, "Server Name"),
    cell(formatDuration(session.session_time_seconds), "Signed in for"),
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

export async function endOthers() {
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
