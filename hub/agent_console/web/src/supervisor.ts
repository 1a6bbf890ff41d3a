// The supervisor's live board: queues and agents as they change.

import { io } from "socket.io-client";
import { Session } from "./api";
import { clear, h } from "./dom";

interface Window {
  offered: number;
  answered: number;
  abandoned: number;
  service_level: number | null;
  asa_seconds: number | null;
}

interface Queue {
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

function table(caption: string, columns: string[], rows: (string | number)[][]): HTMLElement {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, ...rows.map((row) => h("tr", {}, ...row.map((cell) => h("td", {}, String(cell)))))),
  );
}

export function supervisorBoard(root: HTMLElement, session: Session, onLogout: () => void): void {
  const socket = io("/supervisor", { auth: { token: session.token }, transports: ["websocket"] });
  const queues = h("section", { id: "queues", "aria-live": "polite" });
  const agents = h("section", { id: "agents" });
  const notice = h("p", { class: "notice", role: "status" });
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
    agents,
  );
  socket.on("queues", (list: Queue[]) => {
    clear(queues);
    queues.append(
      table(
        "Queues",
        ["Queue", "Open", "Waiting", "Ringing", "Oldest wait", "Service level 15m", "Abandoned 15m", "ASA 15m", "Offered 60m"],
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
        ]),
      ),
    );
  });
  socket.on("agents", (list: Agent[]) => {
    clear(agents);
    const since = (iso: string) => `${Math.round((Date.now() - Date.parse(iso)) / 60000)} min`;
    agents.append(
      table(
        "Agents",
        ["Agent", "Presence", "Activity", "Reason", "In state for", "Load"],
        list.map((a) => [
          a.name,
          a.presence,
          a.activity,
          a.reason ?? "",
          since(a.since),
          Object.entries(a.load).map(([channel, n]) => `${channel} ${n}`).join(", ") || "–",
        ]),
      ),
    );
  });
  socket.on("connect_error", (err: Error) => {
    notice.textContent = `not connected: ${err.message}`;
  });
}
