// Admin: users, agents' skills, languages and capacity, and reloading the routing policy.

import { ApiError, request, Session, User } from "./api";
import { clear, h } from "./dom";

interface AdminUser extends User {
  active: boolean;
}

interface Agent {
  id: number;
  skills: Record<string, number>;
  languages: string[];
  capacity: Record<string, number>;
  teams: string[];
}

const pairs = (values: Record<string, number>) =>
  Object.entries(values).map(([k, v]) => `${k}:${v}`).join(", ");

function parsePairs(text: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [key, value] = part.split(":").map((p) => p.trim());
    if (!key || !value || !/^\d+$/.test(value)) throw new Error(`"${part}" is not name:number`);
    found[key] = Number(value);
  }
  return found;
}

export async function adminScreen(root: HTMLElement, session: Session, onLogout: () => void): Promise<void> {
  const notice = h("p", { class: "notice", role: "status" });
  const say = (err: unknown) => (notice.textContent = err instanceof ApiError || err instanceof Error ? err.message : String(err));
  const users = (await request<{ users: AdminUser[] }>("GET", "/api/v1/users", session.token)).users;
  const agents = (await request<{ agents: Agent[] }>("GET", "/api/v1/agents", session.token)).agents;
  const names = new Map(users.map((u) => [u.id, u.display_name]));
  const policy = h("p", {});
  const reload = () => adminScreen(root, session, onLogout).catch(say);
  const username = h("input", { "aria-label": "New username", placeholder: "username", size: "12" }) as HTMLInputElement;
  const fullName = h("input", { "aria-label": "Full name", placeholder: "full name", size: "16" }) as HTMLInputElement;
  const role = h("select", { "aria-label": "Role" }, ...["agent", "supervisor", "marketer", "admin"].map((r) => h("option", { value: r }, r))) as HTMLSelectElement;
  const teams = h("input", { "aria-label": "Teams", placeholder: "support, billing", size: "16" }) as HTMLInputElement;
  const password = h("input", { "aria-label": "Password", placeholder: "password (8+)", type: "password", autocomplete: "new-password", size: "14" }) as HTMLInputElement;
  const create = async () => {
    try {
      await request("POST", "/api/v1/users", session.token, {
        username: username.value.trim(),
        display_name: fullName.value.trim() || undefined,
        role: role.value,
        teams: teams.value.split(",").map((t) => t.trim()).filter(Boolean),
        password: password.value,
      });
      await reload();
    } catch (err) {
      say(err);
    }
  };
  const setActive = async (user: AdminUser, active: boolean) => {
    try {
      await request("POST", `/api/v1/users/${encodeURIComponent(user.username)}/active`, session.token, { active });
      await reload();
    } catch (err) {
      say(err);
    }
  };
  clear(root);
  root.append(
    h(
      "header",
      { class: "bar" },
      h("strong", {}, `${session.user.display_name} · admin`),
      h("a", { href: "#board" }, "Board"),
      h("a", { href: "#" }, "Workspace"),
      h("button", { class: "quiet", onclick: onLogout }, "Log out"),
    ),
    notice,
    h(
      "table",
      {},
      h("caption", {}, "Users"),
      h("thead", {}, h("tr", {}, ...["User", "Name", "Role", "Active", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        ...users.map((u) =>
          h(
            "tr",
            {},
            h("td", {}, u.username),
            h("td", {}, u.display_name),
            h("td", {}, u.role),
            h("td", {}, u.active ? "yes" : "no"),
            h("td", {}, u.id === session.user.id ? "" : h("button", { class: "quiet", "aria-label": `${u.active ? "Deactivate" : "Reactivate"} ${u.username}`, onclick: () => void setActive(u, !u.active) }, u.active ? "Deactivate" : "Reactivate")),
          ),
        ),
      ),
    ),
    h(
      "p",
      { class: "board-controls new-user" },
      h("strong", {}, "New user "),
      username,
      fullName,
      role,
      teams,
      password,
      h("button", { onclick: () => void create() }, "Create user"),
    ),
    h(
      "table",
      {},
      h("caption", {}, "Agents: skills (name:1-5), languages, capacity per channel"),
      h("thead", {}, h("tr", {}, ...["Agent", "Teams", "Skills", "Languages", "Capacity", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        ...agents.map((a) => {
          const name = names.get(a.id) ?? `#${a.id}`;
          const skills = h("input", { "aria-label": `Skills of ${name}`, value: pairs(a.skills), size: "24" }) as HTMLInputElement;
          const languages = h("input", { "aria-label": `Languages of ${name}`, value: a.languages.join(", "), size: "10" }) as HTMLInputElement;
          const capacity = h("input", { "aria-label": `Capacity of ${name}`, value: pairs(a.capacity), size: "24" }) as HTMLInputElement;
          const save = async () => {
            try {
              await request("PUT", `/api/v1/agents/${a.id}/profile`, session.token, {
                skills: parsePairs(skills.value),
                languages: languages.value.split(",").map((l) => l.trim()).filter(Boolean),
                capacity: parsePairs(capacity.value),
              });
              notice.textContent = `Saved ${name}.`;
            } catch (err) {
              say(err);
            }
          };
          return h(
            "tr",
            {},
            h("td", {}, name),
            h("td", {}, a.teams.join(", ")),
            h("td", {}, skills),
            h("td", {}, languages),
            h("td", {}, capacity),
            h("td", {}, h("button", { "aria-label": `Save ${name}`, onclick: () => void save() }, "Save")),
          );
        }),
      ),
    ),
    h(
      "section",
      { class: "board-controls" },
      h("h2", {}, "Routing policy"),
      h("button", {
        onclick: async () => {
          try {
            const loaded = await request<{ source: string; queues: string[] }>("POST", "/api/v1/routing/reload", session.token, {});
            policy.textContent = `Loaded ${loaded.source}: queues ${loaded.queues.join(", ")}`;
          } catch (err) {
            say(err);
          }
        },
      }, "Reload routing policy"),
      policy,
    ),
  );
}
