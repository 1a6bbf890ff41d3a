// The console: log in, then the agent's workspace or the supervisor's board.

import "./style.css";
import { ApiError, forget, login, onSessionChange, request, savedSession, Session } from "./api";
import { adminScreen } from "./admin";
import { agentWorkspace } from "./agent";
import { clear, h } from "./dom";
import { supervisorBoard } from "./supervisor";

const root = document.getElementById("app") as HTMLElement;

function start(session: Session): void {
  // Logging out revokes the token on the hub (its open sockets end too), then forgets it.
  const logout = (message = "") => {
    void request("POST", "/api/v1/auth/logout", session.token).catch(() => undefined);
    forget();
    showLogin(message);
  };
  const role = session.user.role;
  if (location.hash === "#admin" && role === "admin") {
    adminScreen(root, session, logout).catch((err) => {
      root.textContent = `cannot open the admin screen: ${err instanceof Error ? err.message : err}`;
    });
  } else if (location.hash === "#board" && (role === "supervisor" || role === "admin")) {
    supervisorBoard(root, session, logout);
  } else {
    agentWorkspace(root, session, logout);
  }
}

function showLogin(message = ""): void {
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true }) as HTMLInputElement;
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }) as HTMLInputElement;
  const error = h("p", { class: "notice", role: "alert" }, message);
  const form = h(
    "form",
    { class: "login" },
    h("h1", {}, "hub"),
    h("label", { for: "username" }, "Username"),
    username,
    h("label", { for: "password" }, "Password"),
    password,
    h("button", { type: "submit" }, "Log in"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      start(await login(username.value, password.value));
    } catch (err) {
      error.textContent = err instanceof ApiError ? err.message : "cannot reach the hub";
    }
  });
  clear(root);
  root.append(form);
  username.focus();
}

// Another tab logged in or out: follow it (the old token is no longer good after a logout).
onSessionChange((session) => {
  if (session) location.reload();
  else showLogin("You logged out in another tab.");
});

window.addEventListener("hashchange", () => {
  const session = savedSession();
  if (session) start(session);
});

const session = savedSession();
if (session) start(session);
else showLogin();
