// Call controls for a voice interaction: join, hold, mute, transfer, leave, hang up.

import { ApiError, request } from "./api";
import { clear, h } from "./dom";

interface Leg {
  call_sid: string;
  role: string;
  user_id: number | null;
  number: string | null;
  status: string;
  live: boolean;
  muted: boolean;
  held: boolean;
}

export function callControls(
  interactionId: number,
  token: string,
  me: number,
  say: (message: string) => void,
): HTMLElement {
  const path = `/api/v1/interactions/${interactionId}/call`;
  const legs = h("ul", { class: "legs", "aria-label": "On the call" });
  let current: Leg[] = [];

  async function act(action: string, body: unknown = {}): Promise<void> {
    try {
      await request("POST", `${path}/${action}`, token, body);
      say("");
    } catch (err) {
      say(err instanceof ApiError ? err.message : String(err));
    }
    await refresh();
  }

  async function refresh(): Promise<void> {
    try {
      current = (await request<{ legs: Leg[] }>("GET", path, token)).legs;
    } catch {
      return;
    }
    clear(legs);
    for (const leg of current.filter((l) => l.live)) {
      const flags = [leg.held ? "on hold" : "", leg.muted ? "muted" : ""].filter(Boolean).join(", ");
      legs.append(h("li", {}, `${leg.role}: ${leg.number ?? ""} · ${leg.status}${flags ? ` · ${flags}` : ""}`));
    }
  }

  const customerHeld = () => current.some((l) => l.live && l.role === "customer" && l.held);
  const meMuted = () => current.some((l) => l.live && l.role === "agent" && l.user_id === me && l.muted);
  const phone = h("input", { "aria-label": "My phone number", placeholder: "+1…", size: "14" }) as HTMLInputElement;
  const target = h("input", { "aria-label": "Transfer to", placeholder: "queue, agent id or +number", size: "20" }) as HTMLInputElement;
  const warm = h("input", { type: "checkbox", id: `warm-${interactionId}` }) as HTMLInputElement;

  function transferBody(): Record<string, unknown> {
    const to = target.value.trim();
    const mode = warm.checked ? "warm" : "cold";
    if (to.startsWith("+")) return { number: to, mode };
    if (/^\d+$/.test(to)) return { agent_id: Number(to), mode };
    return { queue: to, mode };
  }

  const timer = setInterval(() => {
    if (!legs.isConnected) return clearInterval(timer);
    void refresh();
  }, 3000);
  void refresh();
  return h(
    "div",
    { class: "call", role: "group", "aria-label": "Call controls" },
    h("button", { onclick: () => void act("join", {}) }, "Answer in browser"),
    phone,
    h("button", { onclick: () => void act("join", { to: phone.value }) }, "Answer on phone"),
    h("button", { class: "hold", onclick: () => void act("hold", { on: !customerHeld() }) }, "Hold / resume"),
    h("button", { onclick: () => void act("mute", { on: !meMuted() }) }, "Mute / unmute"),
    target,
    h("label", { for: `warm-${interactionId}` }, warm, " warm"),
    h("button", { onclick: () => void act("transfer", transferBody()) }, "Transfer"),
    h("button", { onclick: () => void act("leave") }, "Leave"),
    h("button", { class: "hangup", onclick: () => void act("hangup") }, "Hang up"),
    legs,
  );
}
