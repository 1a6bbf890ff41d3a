// The supervisor's live board: queues and agents as they change.

import { io } from "socket.io-client";
import { ApiError, request, Session } from "./api";
import { clear, h } from "./dom";

interface Window {
  offered: number;
  answered: number;
  abandoned: number;
  service_level: number | null;
  asa_seconds: number | null;
  csat_average: number | null;
  rated: number;
}

interface Queue {
  id: number;
  name: string;
  open: boolean;
  sla_seconds: number;
  live: { waiting: number; ringing: number; oldest_wait_seconds: number | null };
  windows: Record<string, Window>;
}

interface Agent {
  id: number;
  name: string;
  presence: string;
  activity: string;
  reason: string | null;
  since: string;
  load: Record<string, number>;
}

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

function seconds(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : `${Math.round(value)} s`;
}

type Cell = string | number | Node;

function table(caption: string, columns: string[], rows: Cell[][]): HTMLElement {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      ...rows.map((row) =>
        h("tr", {}, ...row.map((cell) => h("td", {}, cell instanceof Node ? cell : String(cell)))),
      ),
    ),
  );
}

interface Interval {
  start: string;
  offered: number;
  answered: number;
  abandoned: number;
  service_level: number | null;
}

// Volume as bars, service level as a line: an SVG drawn with DOM calls (no user text in it).
function chart(intervals: Interval[]): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const width = 640;
  const height = 160;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 20}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Volume and service level by interval");
  const most = Math.max(1, ...intervals.map((i) => i.offered));
  const step = width / Math.max(1, intervals.length);
  const points: string[] = [];
  intervals.forEach((interval, n) => {
    const bar = document.createElementNS(ns, "rect");
    const tall = (interval.offered / most) * height;
    bar.setAttribute("x", String(n * step + 2));
    bar.setAttribute("y", String(height - tall));
    bar.setAttribute("width", String(step - 4));
    bar.setAttribute("height", String(tall));
    bar.setAttribute("fill", "#9bbcf0");
    svg.append(bar);
    if (interval.service_level !== null) {
      points.push(`${n * step + step / 2},${height - interval.service_level * height}`);
    }
    const every = Math.ceil(60 / step); // a label per ~60 px, so they never overlap
    if (n % every !== 0) return;
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(n * step + 2));
    label.setAttribute("y", String(height + 14));
    label.setAttribute("font-size", "10");
    label.textContent = new Date(interval.start).toLocaleTimeString(undefined, { timeStyle: "short" });
    svg.append(label);
  });
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#0b5a24");
  line.setAttribute("stroke-width", "2");
  svg.append(line);
  return svg;
}

export function supervisorBoard(root: HTMLElement, session: Session, onLogout: (message?: string) => void): void {
  const socket = io("/supervisor", { auth: { token: session.token }, transports: ["websocket"] });
  socket.on("session_ended", (ended: { reason: string }) => {
    socket.disconnect();
    onLogout(`Your session ended: ${ended.reason}.`);
  });
  const queues = h("section", { id: "queues", "aria-live": "polite" });
  const agents = h("section", { id: "agents" });
  const notice = h("p", { class: "notice", role: "status" });
  const calls = h("section", { id: "calls" });
  const moveId = h("input", { "aria-label": "Interaction to move", placeholder: "#", size: "6" }) as HTMLInputElement;
  const moveTo = h("input", { "aria-label": "Move to queue", placeholder: "queue", size: "12" }) as HTMLInputElement;
  const mover = h(
    "p",
    { class: "board-controls" },
    h("label", {}, "Move waiting interaction ", moveId),
    h("label", {}, " to ", moveTo),
    h("button", {
      class: "quiet",
      onclick: async () => {
        try {
          const id = Number(moveId.value.replace("#", ""));
          await request("POST", `/api/v1/interactions/${id}/move`, session.token, { queue: moveTo.value.trim() });
          notice.textContent = `Moved #${id} to ${moveTo.value.trim()}.`;
        } catch (err) {
          notice.textContent = err instanceof ApiError ? err.message : String(err);
        }
      },
    }, "Move"),
  );

  const report = h("section", { id: "report", "aria-live": "polite" });
  const every = h(
    "select",
    { "aria-label": "Interval" },
    ...["15", "30", "60"].map((m) => h("option", { value: m }, `${m} min`)),
  ) as HTMLSelectElement;
  every.value = "30";
  clear(root);
  root.append(
    h(
      "header",
      { class: "bar" },
      h("strong", {}, `${session.user.display_name} · supervisor board`),
      h("button", { class: "quiet", onclick: () => { socket.disconnect(); onLogout(); } }, "Log out"),
    ),
    notice,
    queues,
    mover,
    h("p", { class: "board-controls" }, h("label", {}, "Reports by ", every)),
    report,
    agents,
    calls,
  );

  async function showReport(queue: Queue): Promise<void> {
    const path = `/api/v1/queues/${queue.id}/stats?interval=${every.value}&count=16`;
    try {
      const stats = await request<{ intervals: Interval[] }>("GET", path, session.token);
      const csv = h("button", { class: "quiet" }, "Download CSV");
      csv.addEventListener("click", async () => {
        const response = await fetch(`${path}&format=csv`, { headers: { Authorization: `Bearer ${session.token}` } });
        const link = document.createElement("a");
        link.href = URL.createObjectURL(await response.blob());
        link.download = `${queue.name}-intervals.csv`;
        link.click();
        URL.revokeObjectURL(link.href);
      });
      clear(report);
      report.append(
        h("h2", {}, `${queue.name}: the last ${stats.intervals.length} intervals of ${every.value} minutes`),
        chart(stats.intervals),
        table(
          "Intervals",
          ["Start", "Offered", "Answered", "Abandoned", "Service level"],
          stats.intervals.map((i) => [new Date(i.start).toLocaleTimeString(undefined, { timeStyle: "short" }), i.offered, i.answered, i.abandoned, percent(i.service_level)]),
        ),
        csv,
      );
    } catch (err) {
      notice.textContent = err instanceof ApiError ? err.message : String(err);
    }
  }

  async function setState(agent: Agent, state: string): Promise<void> {
    try {
      await request("POST", `/api/v1/agents/${agent.id}/state`, session.token, { state, reason: state === "away" ? "set by supervisor" : undefined });
      notice.textContent = "";
    } catch (err) {
      notice.textContent = err instanceof ApiError ? err.message : String(err);
    }
  }

  const myPhone = h("input", { "aria-label": "Listen on phone number", placeholder: "browser, or +1…", size: "14" }) as HTMLInputElement;

  async function monitor(interactionId: number, mode: string): Promise<void> {
    const to = myPhone.value.trim() || undefined;
    try {
      await request("POST", `/api/v1/interactions/${interactionId}/call/monitor`, session.token, { mode, to });
      notice.textContent = `${mode} on call #${interactionId}`;
    } catch (err) {
      notice.textContent = err instanceof ApiError ? err.message : String(err);
    }
  }

  async function showCalls(names: Map<number, string>): Promise<void> {
    let found: { interaction_id: number; agent_id: number | null; legs: { role: string; number: string | null }[] }[];
    try {
      found = (await request<{ calls: typeof found }>("GET", "/api/v1/calls", session.token)).calls;
    } catch {
      return; // calls are not set up in this hub
    }
    clear(calls);
    calls.append(
      table(
        "Calls",
        ["Call", "Agent", "Customer", "Monitor"],
        found.map((c) => [
          `#${c.interaction_id}`,
          c.agent_id === null ? "–" : (names.get(c.agent_id) ?? `#${c.agent_id}`),
          c.legs.find((l) => l.role === "customer")?.number ?? "",
          h(
            "span",
            {},
            ...["listen", "whisper", "barge"].map((mode) =>
              h("button", { class: "quiet", "aria-label": `${mode} on call ${c.interaction_id}`, onclick: () => void monitor(c.interaction_id, mode) }, mode),
            ),
          ),
        ]),
      ),
      h("p", { class: "board-controls" }, h("label", {}, "Listen on ", myPhone)),
    );
  }

  // Routing falling behind (events not handled yet, or work a free agent could take waiting):
  // said at the top of the board, so a supervisor never wonders why nothing moves.
  const behind = h("p", { class: "notice warning", role: "alert", id: "routing-behind", hidden: "" });
  queues.before(behind);
  socket.on("routing", (health: { behind: boolean; bus_backlog: number; stuck: number; oldest_stuck_seconds: number; free_agents: number } | null) => {
    behind.hidden = !health?.behind;
    if (!health?.behind) return;
    const parts = [];
    if (health.bus_backlog) parts.push(`${health.bus_backlog} events not handled yet`);
    if (health.stuck) parts.push(`${health.stuck} contact(s) a free agent could take have waited up to ${seconds(health.oldest_stuck_seconds)}`);
    behind.textContent = `Routing is falling behind: ${parts.join("; ")}. The hub is catching up and mends what it finds; if this stays, check the hub's logs.`;
  });
  socket.on("queues", (list: Queue[]) => {
    clear(queues);
    queues.append(
      table(
        "Queues",
        ["Queue", "Open", "Waiting", "Ringing", "Oldest wait", "Service level 15m", "Abandoned 15m", "ASA 15m", "Offered 60m", "CSAT 60m", "Report"],
        list.map((q) => [
          q.name,
          q.open ? "open" : "closed",
          q.live.waiting,
          q.live.ringing,
          seconds(q.live.oldest_wait_seconds),
          percent(q.windows["15m"]?.service_level),
          q.windows["15m"]?.abandoned ?? 0,
          seconds(q.windows["15m"]?.asa_seconds),
          q.windows["60m"]?.offered ?? 0,
          q.windows["60m"]?.csat_average ? `${q.windows["60m"].csat_average.toFixed(1)} (${q.windows["60m"].rated})` : "",
          h("button", { class: "quiet", onclick: () => void showReport(q) }, "Report"),
        ]),
      ),
    );
  });
  socket.on("agents", (list: Agent[]) => {
    void showCalls(new Map(list.map((a) => [a.id, a.name])));
    clear(agents);
    const since = (iso: string) => `${Math.round((Date.now() - Date.parse(iso)) / 60000)} min`;
    agents.append(
      table(
        "Agents",
        ["Agent", "Presence", "Activity", "Reason", "In state for", "Load", "Set"],
        list.map((a) => [
          a.name,
          a.presence,
          a.activity,
          a.reason ?? "",
          since(a.since),
          Object.entries(a.load).map(([channel, n]) => `${channel} ${n}`).join(", ") || "–",
          h(
            "span",
            {},
            h("button", { class: "quiet", "aria-label": `Set ${a.name} away`, onclick: () => void setState(a, "away") }, "Away"),
            h("button", { class: "quiet", "aria-label": `Set ${a.name} offline`, onclick: () => void setState(a, "offline") }, "Offline"),
          ),
        ]),
      ),
    );
  });
  socket.on("connect_error", (err: Error) => {
    notice.textContent = `not connected: ${err.message}`;
  });
}
