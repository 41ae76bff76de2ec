// The Session Management page: lists sessions through the API with the administrator's own
// bearer token, and ends the checked ones with one DELETE /sessions. Every session holder also
// gets My sessions: its own user's sessions, each of which it may end. This module wires the
// page; each part lives in a module of its own.
import { $, state, TOKEN_KEY } from "./state.js";
import { deleteSelected, load, restart, selectable, syncSelection, tick } from "./list.js";
import { endOthers, loadMine } from "./mine.js";
import { showSignIn, showView, signIn, signOut, tokenFromFragment } from "./signin.js";

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
