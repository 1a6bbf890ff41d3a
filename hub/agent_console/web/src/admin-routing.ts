// Admin: the routing policy (queues, business hours, routing defaults, versions), edited live.

import { ApiError, request, Session } from "./api";
import { clear, h, when } from "./dom";
import { CHANNELS, checkbox, field, input, numberInput, optionalNumber, select, textarea } from "./form";

type Doc = Record<string, unknown>;

interface Step {
  after_seconds: number;
  target?: string | null;
  overflow?: string | null;
}

interface QueueDoc {
  name: string;
  team: string;
  channels?: string[];
  priority?: number;
  vip_priority?: number;
  sla_seconds?: number;
  calendar?: string | null;
  closed_action?: string;
  closed_message?: string;
  max_size?: number | null;
  max_wait_seconds?: number | null;
  overflow?: string | null;
  sticky_seconds?: number;
  agent_order?: string | null;
  skill?: string | null;
  ring_seconds?: number | null;
  steps?: Step[];
}

interface CalendarDoc {
  name: string;
  timezone?: string;
  week?: Record<string, string[]>;
  holidays?: string[];
  holidays_country?: string | null;
  holidays_subdivision?: string | null;
}

interface PolicyDoc {
  ring_seconds?: number;
  wrap_up_seconds?: number;
  missed_on_ring_out?: boolean;
  reoffer_after_seconds?: number;
  agent_order?: string;
  default_queue?: string | null;
  capacity?: Record<string, number>;
  voice_exclusive?: boolean;
  calendars?: CalendarDoc[];
  queues: QueueDoc[];
  routes?: { channel: string; queue: string }[];
}

export interface Policy {
  version: number;
  source: string;
  created_at: string;
  file: string | null;
  document: PolicyDoc;
}

interface Version {
  version: number;
  source: string;
  created_at: string;
  created_by: number | null;
}

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
// What the hub uses when the policy sets no capacity (hub/routing/policy.py).
const DEFAULT_CAPACITY: Record<string, number> = { voice: 1, sms: 3, webchat: 3, email: 5, fax: 5, api: 5 };
const ORDERS = ["longest_idle", "least_occupied", "highest_proficiency"];

// Steps, one a line: "0: agent.skills['billing'] >= 3", "60: *" (anyone), "300: overflow sales".
export function stepsText(steps: Step[] | undefined): string {
  return (steps ?? [])
    .map((s) => `${s.after_seconds}: ${s.overflow ? `overflow ${s.overflow}` : s.target ?? "*"}`)
    .join("\n");
}

export function parseSteps(text: string): Step[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const found = /^(\d+)\s*:\s*(.*)$/.exec(line);
      if (!found) throw new Error(`step "${line}" is not "seconds: target" or "seconds: overflow queue"`);
      const after = Number(found[1]);
      const rest = found[2].trim();
      const overflow = /^overflow\s+(.+)$/.exec(rest);
      if (overflow) return { after_seconds: after, overflow: overflow[1].trim() };
      return rest === "*" || rest === "" ? { after_seconds: after } : { after_seconds: after, target: rest };
    });
}

function clean<T extends Doc>(entry: T): T {
  // Leave out what is empty, so the hub's defaults apply and the document stays readable.
  return Object.fromEntries(Object.entries(entry).filter(([, v]) => v !== null && v !== "" && v !== undefined)) as T;
}

export async function routingScreen(root: HTMLElement, session: Session, say: (message: unknown) => void, teams: string[]): Promise<void> {
  const policy = await request<Policy>("GET", "/api/v1/routing/policy", session.token);
  const versions = (await request<{ versions: Version[] }>("GET", "/api/v1/routing/policy/versions", session.token)).versions;
  const doc = policy.document;
  const queues = doc.queues.map((q) => q.name);
  const calendars = (doc.calendars ?? []).map((c) => c.name);
  const again = () => routingScreen(root, session, say, teams).catch(say);
  const save = async (method: string, path: string, body: unknown, done: string) => {
    try {
      await request(method, path, session.token, body);
      await again();
      say(done);
    } catch (err) {
      say(err);
    }
  };

  // -- queues ----------------------------------------------------------------------------------
  const editor = h("section", { class: "editor-form", "aria-label": "Queue editor" });
  const editQueue = (queue: QueueDoc | null) => {
    const isNew = queue === null;
    const q: QueueDoc = queue ?? { name: "", team: teams[0] ?? "support" };
    const name = input("Queue name", q.name, { size: "16" });
    name.disabled = !isNew;
    const team = select("Queue team", teams.includes(q.team) ? teams : [...teams, q.team], q.team);
    const channels = CHANNELS.map((c) => [c, checkbox(`Channel ${c}`, (q.channels ?? []).includes(c))] as const);
    const priority = numberInput("Priority", q.priority ?? 0, -1000, 1000);
    const vip = numberInput("VIP priority", q.vip_priority ?? 0, 0, 1000);
    const sla = numberInput("Service level seconds", q.sla_seconds ?? 20, 1, 86400);
    const calendar = select("Business hours", [["", "always open"], ...calendars.map((c): [string, string] => [c, c])], q.calendar);
    const closedAction = select("When closed", ["message", "voicemail", "callback"], q.closed_action ?? "message");
    const closedMessage = textarea("Closed message", q.closed_message ?? "We are closed right now. We will get back to you.", 2);
    const skill = input("Skill", q.skill, { size: "12" });
    const order = select("Agent order", [["", "the policy's default"], ...ORDERS.map((o): [string, string] => [o, o])], q.agent_order);
    const ring = numberInput("Ring seconds", q.ring_seconds ?? null, 5, 600);
    const maxSize = numberInput("Most waiting", q.max_size ?? null, 1);
    const maxWait = numberInput("Longest wait seconds", q.max_wait_seconds ?? null, 1);
    const overflow = select("Overflow to", [["", "none"], ...queues.filter((n) => n !== q.name).map((n): [string, string] => [n, n])], q.overflow);
    const sticky = numberInput("Sticky seconds", q.sticky_seconds ?? 0, 0, 3600);
    const steps = textarea("Steps", stepsText(q.steps), 3);
    const submit = async () => {
      let entry: QueueDoc;
      try {
        entry = clean({
          name: name.value.trim(),
          team: team.value,
          channels: channels.filter(([, box]) => box.checked).map(([c]) => c),
          priority: optionalNumber(priority) ?? 0,
          vip_priority: optionalNumber(vip) ?? 0,
          sla_seconds: optionalNumber(sla) ?? 20,
          calendar: calendar.value || null,
          closed_action: closedAction.value,
          closed_message: closedMessage.value,
          skill: skill.value.trim() || null,
          agent_order: order.value || null,
          ring_seconds: optionalNumber(ring),
          max_size: optionalNumber(maxSize),
          max_wait_seconds: optionalNumber(maxWait),
          overflow: overflow.value || null,
          sticky_seconds: optionalNumber(sticky) ?? 0,
          steps: parseSteps(steps.value),
        });
      } catch (err) {
        say(err);
        return;
      }
      if (!entry.name) return say("a queue needs a name");
      await save("PUT", `/api/v1/routing/policy/queues/${encodeURIComponent(entry.name)}`, { entry, base_version: policy.version }, `Saved queue ${entry.name}.`);
    };
    clear(editor);
    editor.append(
      h("h3", {}, isNew ? "New queue" : `Queue ${q.name}`),
      h(
        "div",
        { class: "fields" },
        field("Name", name),
        field("Team", team),
        h("fieldset", {}, h("legend", {}, "Channels"), ...channels.map(([c, box]) => h("label", {}, box, ` ${c}`))),
        field("Priority", priority),
        field("VIP boost", vip),
        field("Service level (s)", sla),
        field("Business hours", calendar),
        field("When closed", closedAction),
        field("Closed message", closedMessage),
        field("Skill", skill, "for highest-proficiency order"),
        field("Agent order", order),
        field("Ring (s)", ring),
        field("Most waiting", maxSize),
        field("Longest wait (s)", maxWait),
        field("Overflow to", overflow),
        field("Sticky (s)", sticky, "last agent first"),
        field("Steps", steps, "one a line: 0: agent.skills['billing'] >= 3 · 60: * · 300: overflow sales"),
      ),
      h("button", { onclick: () => void submit() }, "Save queue"),
      h("button", { class: "quiet", onclick: () => clear(editor) }, "Cancel"),
    );
    (isNew ? name : team).focus();
  };

  // -- business hours ---------------------------------------------------------------------------
  const hoursEditor = h("section", { class: "editor-form", "aria-label": "Business hours editor" });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = h("datalist", { id: "zones" }, ...zones.map((z) => h("option", { value: z })));
  const editCalendar = (cal: CalendarDoc | null) => {
    const isNew = cal === null;
    const c: CalendarDoc = cal ?? { name: "", timezone: "UTC", week: { mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"], thu: ["09:00-17:00"], fri: ["09:00-17:00"] } };
    const name = input("Calendar name", c.name, { size: "16" });
    name.disabled = !isNew;
    const zone = input("Timezone", c.timezone ?? "UTC", { list: "zones", size: "22" });
    const days = DAYS.map((d) => [d, input(`Hours on ${d}`, (c.week?.[d] ?? []).join(", "), { size: "24", placeholder: "closed" })] as const);
    const holidays = input("Holidays", (c.holidays ?? []).join(", "), { size: "40", placeholder: "2026-12-25, 2026-12-26" });
    const country = input("Public holidays of country", c.holidays_country, { size: "4", placeholder: "GB" });
    const subdivision = input("Subdivision", c.holidays_subdivision, { size: "6", placeholder: "ENG" });
    const submit = async () => {
      const entry = clean({
        name: name.value.trim(),
        timezone: zone.value.trim() || "UTC",
        week: Object.fromEntries(
          days.map(([d, box]) => [d, box.value.split(",").map((r) => r.trim()).filter(Boolean)] as const).filter(([, r]) => r.length),
        ),
        holidays: holidays.value.split(",").map((d) => d.trim()).filter(Boolean),
        holidays_country: country.value.trim().toUpperCase() || null,
        holidays_subdivision: subdivision.value.trim() || null,
      });
      if (!entry.name) return say("business hours need a name");
      await save("PUT", `/api/v1/routing/policy/calendars/${encodeURIComponent(entry.name)}`, { entry, base_version: policy.version }, `Saved business hours ${entry.name}.`);
    };
    clear(hoursEditor);
    hoursEditor.append(
      h("h3", {}, isNew ? "New business hours" : `Business hours ${c.name}`),
      h(
        "div",
        { class: "fields" },
        field("Name", name),
        field("Timezone", zone),
        ...days.map(([d, box]) => field(d, box, "HH:MM-HH:MM, comma between ranges")),
        field("Holidays", holidays),
        field("Public holidays of", country, "ISO country code"),
        field("Subdivision", subdivision),
      ),
      h("button", { onclick: () => void submit() }, "Save business hours"),
      h("button", { class: "quiet", onclick: () => clear(hoursEditor) }, "Cancel"),
    );
    (isNew ? name : zone).focus();
  };

  // -- routing defaults ---------------------------------------------------------------------
  const ring = numberInput("Default ring seconds", doc.ring_seconds ?? 20, 5, 600);
  const wrap = numberInput("Wrap-up seconds", doc.wrap_up_seconds ?? 30, 0, 3600);
  const order = select("Default agent order", ORDERS, doc.agent_order ?? "longest_idle");
  const defaultQueue = select("Default queue", [["", "none"], ...queues.map((n): [string, string] => [n, n])], doc.default_queue);
  const exclusive = checkbox("A call takes the agent's whole attention", doc.voice_exclusive ?? true);
  const missed = checkbox("An offer that rings out makes the agent missed", doc.missed_on_ring_out ?? true);
  const reoffer = numberInput("Offer again after (s)", doc.reoffer_after_seconds ?? 30, 0, 3600);
  const capacity = CHANNELS.map((c) => [c, numberInput(`Capacity ${c}`, doc.capacity?.[c] ?? null, 0, 50)] as const);
  capacity.forEach(([c, box]) => (box.placeholder = String(DEFAULT_CAPACITY[c] ?? "")));
  const routes = CHANNELS.map((c) => [c, select(`Route ${c}`, [["", "default queue"], ...queues.map((n): [string, string] => [n, n])], doc.routes?.find((r) => r.channel === c)?.queue)] as const);
  const saveDefaults = async () => {
    const document: PolicyDoc = {
      ...doc,
      ring_seconds: optionalNumber(ring) ?? 20,
      wrap_up_seconds: optionalNumber(wrap) ?? 30,
      agent_order: order.value,
      default_queue: defaultQueue.value || null,
      voice_exclusive: exclusive.checked,
      missed_on_ring_out: missed.checked,
      reoffer_after_seconds: optionalNumber(reoffer) ?? 30,
      capacity: Object.fromEntries(capacity.filter(([, box]) => box.value.trim() !== "").map(([c, box]) => [c, Number(box.value)])),
      routes: routes.filter(([, box]) => box.value).map(([c, box]) => ({ channel: c, queue: box.value })),
    };
    await save("PUT", "/api/v1/routing/policy", { document, base_version: policy.version }, "Saved the routing defaults.");
  };

  const download = async () => {
    try {
      const response = await fetch("/api/v1/routing/policy?format=toml", { headers: { Authorization: `Bearer ${session.token}` } });
      if (!response.ok) throw new ApiError(response.status, "error", response.statusText);
      const link = h("a", { href: URL.createObjectURL(await response.blob()), download: `routing-v${policy.version}.toml` });
      link.click();
    } catch (err) {
      say(err);
    }
  };

  clear(root);
  root.append(
    zoneList,
    h("p", { class: "board-controls" }, `Policy version ${policy.version}, from ${policy.source}, ${when(policy.created_at)}.`, policy.file ? ` Policy file: ${policy.file}.` : ""),
    h(
      "table",
      {},
      h("caption", {}, "Queues"),
      h("thead", {}, h("tr", {}, ...["Queue", "Team", "Channels", "Service level", "Hours", "Overflow", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        ...doc.queues.map((q) =>
          h(
            "tr",
            {},
            h("td", {}, q.name),
            h("td", {}, q.team),
            h("td", {}, (q.channels ?? []).join(", ") || "all"),
            h("td", {}, `${q.sla_seconds ?? 20} s`),
            h("td", {}, q.calendar ?? "always"),
            h("td", {}, q.overflow ?? ""),
            h(
              "td",
              {},
              h("button", { class: "quiet", "aria-label": `Edit queue ${q.name}`, onclick: () => editQueue(q) }, "Edit"),
              " ",
              h("button", { class: "quiet", "aria-label": `Remove queue ${q.name}`, onclick: () => confirm(`Remove queue ${q.name}?`) && void save("DELETE", `/api/v1/routing/policy/queues/${encodeURIComponent(q.name)}`, undefined, `Removed queue ${q.name}.`) }, "Remove"),
            ),
          ),
        ),
      ),
    ),
    h("p", { class: "board-controls" }, h("button", { onclick: () => editQueue(null) }, "New queue")),
    editor,
    h(
      "table",
      {},
      h("caption", {}, "Business hours"),
      h("thead", {}, h("tr", {}, ...["Name", "Timezone", "Week", "Holidays", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        ...(doc.calendars ?? []).map((c) =>
          h(
            "tr",
            {},
            h("td", {}, c.name),
            h("td", {}, c.timezone ?? "UTC"),
            h("td", {}, DAYS.filter((d) => c.week?.[d]?.length).map((d) => `${d} ${c.week?.[d].join(", ")}`).join("; ")),
            h("td", {}, [...(c.holidays ?? []), c.holidays_country ? `public holidays of ${c.holidays_country}` : ""].filter(Boolean).join(", ")),
            h(
              "td",
              {},
              h("button", { class: "quiet", "aria-label": `Edit business hours ${c.name}`, onclick: () => editCalendar(c) }, "Edit"),
              " ",
              h("button", { class: "quiet", "aria-label": `Remove business hours ${c.name}`, onclick: () => confirm(`Remove business hours ${c.name}?`) && void save("DELETE", `/api/v1/routing/policy/calendars/${encodeURIComponent(c.name)}`, undefined, `Removed business hours ${c.name}.`) }, "Remove"),
            ),
          ),
        ),
      ),
    ),
    h("p", { class: "board-controls" }, h("button", { onclick: () => editCalendar(null) }, "New business hours")),
    hoursEditor,
    h(
      "section",
      { class: "editor-form", "aria-label": "Routing defaults" },
      h("h3", {}, "Routing defaults"),
      h(
        "div",
        { class: "fields" },
        field("Ring (s)", ring),
        field("Wrap-up (s)", wrap),
        field("Agent order", order),
        field("Default queue", defaultQueue),
        h("label", { class: "check" }, exclusive, " a call blocks other work"),
        h("label", { class: "check" }, missed, " a ring-out makes the agent missed (offered nothing until they are available again)"),
        field("Offer declined or missed work again to the same agent after (s), when nobody else can take it", reoffer),
        h("fieldset", {}, h("legend", {}, "Capacity per agent"), ...capacity.map(([c, box]) => h("label", {}, `${c} `, box))),
        h("fieldset", {}, h("legend", {}, "New work by channel goes to"), ...routes.map(([c, box]) => h("label", {}, `${c} `, box))),
      ),
      h("button", { onclick: () => void saveDefaults() }, "Save routing defaults"),
    ),
    h(
      "table",
      {},
      h("caption", {}, "Policy versions"),
      h("thead", {}, h("tr", {}, ...["Version", "From", "When", ""].map((c) => h("th", { scope: "col" }, c)))),
      h(
        "tbody",
        {},
        ...versions.map((v) =>
          h(
            "tr",
            {},
            h("td", {}, String(v.version)),
            h("td", {}, v.source),
            h("td", {}, when(v.created_at)),
            h("td", {}, v.version === policy.version ? "in force" : h("button", { class: "quiet", "aria-label": `Restore version ${v.version}`, onclick: () => void save("POST", `/api/v1/routing/policy/versions/${v.version}/restore`, {}, `Restored version ${v.version}.`) }, "Restore")),
          ),
        ),
      ),
    ),
    h(
      "p",
      { class: "board-controls" },
      h("button", { class: "quiet", onclick: () => void download() }, "Download as policy file"),
      " ",
      policy.file ? h("button", { class: "quiet", onclick: () => void save("POST", "/api/v1/routing/reload", { from_file: true }, "Imported the policy file.") }, "Import the policy file again") : null,
    ),
  );
}
