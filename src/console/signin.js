// Signing in (a token from the link or the prompt), signing out, and choosing the view.
import { $, state, TOKEN_KEY } from "./state.js";
import { api } from "./api.js";
import { load } from "./list.js";
import { loadMine } from "./mine.js";
import { startLive, stopAutoRefresh, stopLive } from "./live.js";

export function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    // Out of the address bar (and history) at once.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return token;
}

export function showSignIn(message) {
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
export async function signOut() {
  const token = state.token;
  if (token) {
    await fetch("/sessions/current", { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  }
  showSignIn("Signed out.");
}

export async function signIn(token) {
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

export async function showView(view) {
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
