// Admin: people (users, teams, agents' skills), the routing policy, the channels' settings.

import { ApiError, request, Session, User } from "./api";
import { channelsScreen } from "./admin-channels";
import { routingScreen } from "./admin-routing";
import { clear, h } from "./dom";
import { select } from "./form";

interface AdminUser extends User {
  active: boolean;
  team_ids: number[];
}

interface TeamRow {
  id: number;
  name: string;
  user_ids: number[];
  queues: string[];
}

const SECTIONS = [
  ["people", "People"],
  ["routing", "Queues and hours"],
  ["channels", "Channels"],
] as const;
type Section = (typeof SECTIONS)[number][0];

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

export async function adminScreen(root: HTMLElement, session: Session, onLogout: () => void, section: Section = "people"): Promise<void> {
  const notice = h("p", { class: "notice", role: "status" });
  const say = (err: unknown) => (notice.textContent = err instanceof ApiError || err instanceof Error ? err.message : String(err));
  const content = h("main", { class: "admin" });
  const tabs = h(
    "nav",
    { class: "tabs", role: "tablist", "aria-label": "Admin sections" },
    ...SECTIONS.map(([key, label]) =>
      h("button", { role: "tab", "aria-selected": key === section ? "true" : "false", onclick: () => void adminScreen(root, session, onLogout, key).catch(say) }, label),
    ),
  );
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
    tabs,
    notice,
    content,
  );
  const teams = (await request<{ teams: TeamRow[] }>("GET", "/api/v1/teams", session.token)).teams;
  if (section === "routing") return routingScreen(content, session, say, teams.map((t) => t.name));
  if (section === "channels") {
    const policy = await request<{ document: { queues: { name: string }[] } }>("GET", "/api/v1/routing/policy", session.token);
    return channelsScreen(content, session, say, policy.document.queues.map((q) => q.name));
  }
  return peopleScreen(content, session, say, teams);
}

async function peopleScreen(root: HTMLElement, session: Session, say: (message: unknown) => void, teamRows: TeamRow[]): Promise<void> {
  const users = (await request<{ users: AdminUser[] }>("GET", "/api/v1/users", session.token)).users;
  const agents = (await request<{ agents: Agent[] }>("GET", "/api/v1/agents", session.token)).agents;
  const names = new Map(users.map((u) => [u.id, u.display_name]));
  const teamNames = new Map(teamRows.map((t) => [t.id, t.name]));
  const reload = async (done = "") => {
    const fresh = (await request<{ teams: TeamRow[] }>("GET", "/api/v1/teams", session.token)).teams;
    await peopleScreen(root, session, say, fresh);
    say(done);
  };
  const act = async (method: string, path: string, body: unknown, done: string) => {
    try {
      await request(method, path, session.token, body);
      await reload(done);
    } catch (err) {
      say(err);
    }
  };
  const username = h("input", { "aria-label": "New username", placeholder: "username", size: "12" }) as HTMLInputElement;
  const fullName = h("input", { "aria-label": "Full name", placeholder: "full name", size: "16" }) as HTMLInputElement;
  const role = h("select", { "aria-label": "Role" }, ...ROLES.map((r) => h("option", { value: r }, r))) as HTMLSelectElement;
  const teams = h("input", { "aria-label": "Teams", placeholder: "support, billing", size: "16" }) as HTMLInputElement;
  const password = h("input", { "aria-label": "Password", placeholder: "password (8+)", type: "password", autocomplete: "new-password", size: "14" }) as HTMLInputElement;
  const teamName = h("input", { "aria-label": "New team", placeholder: "team name", size: "14" }) as HTMLInputElement;
  const create = () =>
    act(
      "POST",
      "/api/v1/users",
      {
        username: username.value.trim(),
        display_name: fullName.value.trim() || undefined,
        role: role.value,
        teams: splitList(teams.value),
        password: password.value,
      },
      `Created ${username.value.trim()}.`,
    );
  clear(root);
  root.append(
    h(
      "table",
      {},
      h("caption", {}, "Users"),
      h("thead", {}, h("tr", {}, ...["User", "Name", "Role", "Teams", "Active", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        ...users.map((u) => {
          const own = u.id === session.user.id;
          const userRole = select(`Role of ${u.username}`, [...ROLES], u.role);
          userRole.disabled = own; // an admin cannot change their own role
          const userTeams = h("input", { "aria-label": `Teams of ${u.username}`, value: u.team_ids.map((id) => teamNames.get(id) ?? `#${id}`).join(", "), size: "18" }) as HTMLInputElement;
          const change = () =>
            act("PATCH", `/api/v1/users/${encodeURIComponent(u.username)}`, own ? { teams: splitList(userTeams.value) } : { role: userRole.value, teams: splitList(userTeams.value) }, `Saved ${u.username}.`);
          return h(
            "tr",
            {},
            h("td", {}, u.username),
            h("td", {}, u.display_name),
            h("td", {}, userRole),
            h("td", {}, userTeams),
            h("td", {}, u.active ? "yes" : "no"),
            h(
              "td",
              {},
              h("button", { class: "quiet", "aria-label": `Save user ${u.username}`, onclick: () => void change() }, "Save"),
              " ",
              own ? "" : h("button", { class: "quiet", "aria-label": `${u.active ? "Deactivate" : "Reactivate"} ${u.username}`, onclick: () => void act("POST", `/api/v1/users/${encodeURIComponent(u.username)}/active`, { active: !u.active }, "") }, u.active ? "Deactivate" : "Reactivate"),
            ),
          );
        }),
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
      h("caption", {}, "Teams"),
      h("thead", {}, h("tr", {}, ...["Team", "Members", "Queues", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        ...teamRows.map((t) =>
          h(
            "tr",
            {},
            h("td", {}, t.name),
            h("td", {}, t.user_ids.map((id) => names.get(id) ?? `#${id}`).join(", ")),
            h("td", {}, t.queues.join(", ")),
            h("td", {}, h("button", { class: "quiet", "aria-label": `Remove team ${t.name}`, onclick: () => void act("DELETE", `/api/v1/teams/${t.id}`, undefined, `Removed team ${t.name}.`) }, "Remove")),
          ),
        ),
      ),
    ),
    h("p", { class: "board-controls" }, teamName, " ", h("button", { onclick: () => void act("POST", "/api/v1/teams", { name: teamName.value.trim() }, `Created team ${teamName.value.trim()}.`) }, "Create team")),
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
                languages: splitList(languages.value),
                capacity: parsePairs(capacity.value),
              });
              say(`Saved ${name}.`);
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
  );
}

const ROLES = ["agent", "supervisor", "marketer", "admin"] as const;

function splitList(text: string): string[] {
  return text.split(",").map((t) => t.trim()).filter(Boolean);
}
