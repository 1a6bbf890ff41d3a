// The agent's workspace: presence, offers that ring, a tab per interaction, replies, wrap-up.

import { io, Socket } from "socket.io-client";
import { ApiError, request, Session } from "./api";
import { callControls } from "./call";
import { base64, emailComposer } from "./compose";
import { browserPhone } from "./phone";
import { clear, h, when } from "./dom";

interface TimelineEvent {
  id: number;
  kind: string;
  channel: string | null;
  direction: string;
  occurred_at: string;
  body: string | null;
  interaction_id: number | null;
  data: Record<string, unknown>;
  attachments?: { filename: string; content_type: string; inline: boolean; error: string | null }[];
}

interface Identity {
  kind: string;
  value: string;
  verified: boolean;
}

interface CustomerRecord {
  id: number;
  name: string | null;
  tags: string[];
  custom_fields: Record<string, string | number | boolean | null>;
  merge_suggestions: { id: number; customer_ids: number[]; reason: string }[];
  identities: Identity[];
  open_interactions: { id: number; channel: string; state: string }[];
  latest_events: TimelineEvent[];
}

interface Offer {
  interaction: { id: number; channel: string; customer_id: number; subject: string | null };
  customer: CustomerRecord;
  expires_at: string;
  ring_seconds: number; // by the hub's clock: the browser's may be off
}

interface Ack {
  ok: boolean;
  error?: { code: string; message: string };
  agent?: { presence: string; reason: string | null };
}

const DISPOSITIONS = ["resolved", "follow-up needed", "no answer needed", "escalated"];
const CANNED = [
  "Thank you for reaching out. I am looking into this now.",
  "Could you send me your order number, please?",
  "I have passed this on to the team; you will hear from us within one working day.",
];

export function agentWorkspace(root: HTMLElement, session: Session, onLogout: (message?: string) => void): void {
  const socket: Socket = io("/agent", { auth: { token: session.token }, transports: ["websocket"] });
  const status = h("span", { class: "presence", id: "presence" }, "connecting…");
  const offers = h("section", { class: "offers", "aria-label": "Offers" });
  const tabs = h("nav", { class: "tabs", role: "tablist", "aria-label": "Interactions" });
  const panels = h("main", { class: "panels" });
  const notice = h("p", { class: "notice", role: "status" });
  const open = new Map<number, { tab: HTMLElement; panel: HTMLElement; timeline: HTMLElement; typing: HTMLElement; channel: string }>();
  const opening = new Set<number>();

  const reasonSelect = h(
    "select",
    { "aria-label": "Away reason", id: "away-reason" },
    ...["break", "lunch", "meeting", "training"].map((r) => h("option", { value: r }, r)),
  ) as HTMLSelectElement;

  async function call(event: string, data: unknown): Promise<Ack> {
    const ack = (await socket.timeout(10000).emitWithAck(event, data)) as Ack;
    notice.textContent = ack.ok ? "" : (ack.error?.message ?? "failed");
    return ack;
  }

  function setPresence(presence: string, reason: string | null): void {
    // "missed": an offer rang out; nothing more is offered until the agent is available again.
    const shown = presence === "missed" ? "missed an offer: press Available to get work" : presence;
    status.textContent = reason && presence !== "missed" ? `${shown} (${reason})` : shown;
    status.dataset.presence = presence;
  }

  const results = h("section", { class: "results", "aria-label": "Search results" });
  const search = h("input", { type: "search", id: "search", "aria-label": "Find a customer (/)", placeholder: "Find a customer (/)" }) as HTMLInputElement;
  search.addEventListener("keydown", async (event) => {
    if (event.key !== "Enter") return;
    clear(results);
    if (!search.value.trim()) return;
    const found = await request<{ customers: { id: number; name: string | null; identities: Identity[] }[] }>("GET", `/api/v1/customers?q=${encodeURIComponent(search.value)}`, session.token);
    results.append(
      ...found.customers.map((c) =>
        h(
          "div",
          { class: "hit" },
          h("span", {}, `${c.name ?? "(no name)"} · ${c.identities.map((i) => i.value).join(", ")}`),
          c.identities.some((i) => i.kind === "phone")
            ? h("button", {
                onclick: async () => {
                  try {
                    await request("POST", `/api/v1/customers/${c.id}/call`, session.token, {});
                    clear(results);
                  } catch (err) {
                    notice.textContent = err instanceof ApiError ? err.message : String(err);
                  }
                },
              }, "Call")
            : null,
        ),
      ),
    );
    if (!found.customers.length) results.append(h("p", {}, "No customer found."));
  });
  const header = h(
    "header",
    { class: "bar" },
    h("strong", {}, session.user.display_name),
    status,
    h("button", { id: "go-available", onclick: () => void call("state", { state: "available" }) }, "Available"),
    reasonSelect,
    h("button", { id: "go-away", onclick: () => void call("state", { state: "away", reason: reasonSelect.value }) }, "Away"),
    h("button", { onclick: () => void call("state", { state: "offline" }) }, "Offline"),
    search,
    session.user.role === "supervisor" || session.user.role === "admin" ? h("a", { href: "#board" }, "Board") : null,
    session.user.role === "admin" ? h("a", { href: "#admin" }, "Admin") : null,
    h("button", { class: "quiet", onclick: () => { socket.disconnect(); onLogout(); } }, "Log out"),
  );
  clear(root);
  root.append(header, notice, results, offers, tabs, panels);

  function ring(): void {
    try {
      const context = new AudioContext();
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.frequency.value = 660;
      gain.gain.value = 0.05;
      tone.connect(gain).connect(context.destination);
      tone.start();
      tone.stop(context.currentTime + 0.4);
    } catch {
      // no audio device (a headless browser): the visual offer is enough
    }
  }

  function identities(record: CustomerRecord): HTMLElement {
    // A withheld number is an identity of that one contact ("twilio:CA..."): say so plainly.
    const shown = (i: Identity) => (i.kind === "anonymous" ? "number withheld" : `${i.kind}: ${i.value}${i.verified ? "" : " (unverified)"}`);
    return h("ul", { class: "identities" }, ...record.identities.map((i) => h("li", {}, shown(i))));
  }

  // Tags and custom fields, editable in place (PATCH /api/v1/customers/{id}).
  function customerDetails(record: CustomerRecord): HTMLElement {
    const tags = h("input", { "aria-label": "Tags", value: record.tags.join(", "), size: "30" }) as HTMLInputElement;
    const fields = h("textarea", { "aria-label": "Custom fields", rows: "3", cols: "30" }) as HTMLTextAreaElement;
    fields.value = Object.entries(record.custom_fields ?? {}).map(([k, v]) => `${k}=${v ?? ""}`).join("\n");
    const save = async () => {
      const custom: Record<string, string> = {};
      for (const line of fields.value.split("\n").map((l) => l.trim()).filter(Boolean)) {
        const at = line.indexOf("=");
        if (at < 1) {
          notice.textContent = `"${line}" is not name=value`;
          return;
        }
        custom[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      try {
        await request("PATCH", `/api/v1/customers/${record.id}`, session.token, {
          tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
          custom_fields: custom,
        });
        notice.textContent = "Customer saved.";
      } catch (err) {
        notice.textContent = err instanceof ApiError ? err.message : String(err);
      }
    };
    return h(
      "details",
      { class: "customer-details" },
      h("summary", {}, record.tags.length ? `Tags: ${record.tags.join(", ")}` : "Tags and fields"),
      h("label", {}, "Tags ", tags),
      h("label", {}, "Fields (name=value per line) ", fields),
      h("button", { class: "quiet", onclick: () => void save() }, "Save customer"),
    );
  }

  // Work pushed in by another system (a web form) has no way back: call the customer instead.
  function callBack(record: CustomerRecord): HTMLElement {
    const phone = record.identities.find((i) => i.kind === "phone");
    return h(
      "p",
      { class: "reply api" },
      "This came in through another system, which cannot carry a reply. ",
      phone
        ? h("button", {
            onclick: async () => {
              try {
                await request("POST", `/api/v1/customers/${record.id}/call`, session.token, {});
                notice.textContent = `Calling ${phone.value}…`;
              } catch (err) {
                notice.textContent = err instanceof ApiError ? err.message : String(err);
              }
            },
          }, `Call ${phone.value}`)
        : "Answer the customer on another channel, then wrap up.",
    );
  }

  // A kept file, fetched with the session's token (an <img src> could not send it).
  async function fileUrl(eventId: number, index: number): Promise<string> {
    const response = await fetch(`/api/v1/events/${eventId}/attachments/${index}`, { headers: { Authorization: `Bearer ${session.token}` } });
    if (!response.ok) throw new ApiError(response.status, "error", response.statusText);
    return URL.createObjectURL(await response.blob());
  }

  // A fax: its pages as thumbnails, the document, and what OCR read (the event's body).
  function faxDocument(event: TimelineEvent): HTMLElement | null {
    const files = event.attachments ?? [];
    if (event.channel !== "fax" || event.kind !== "message" || !files.length) return null;
    const box = h("div", { class: "fax" });
    files.forEach((file, index) => {
      if (file.inline && file.content_type === "image/png") {
        const image = h("img", { alt: `Page ${file.filename.replace(/\D+/g, "")} of the fax`, width: "160" }) as HTMLImageElement;
        void fileUrl(event.id, index).then((url) => (image.src = url)).catch(() => (image.alt = "page not available"));
        box.append(image);
      } else if (!file.inline) {
        const open = h("button", { class: "quiet", type: "button" }, file.error ? `${file.filename} (not fetched: ${file.error})` : `Open ${file.filename}`);
        open.addEventListener("click", async () => window.open(await fileUrl(event.id, index), "_blank"));
        box.append(open);
      }
    });
    const ocr = event.data?.ocr as { status?: string } | undefined;
    const pages = typeof event.data?.page_count === "number" ? `${event.data.page_count} page(s)` : "";
    const partial = event.data?.partial === true ? "only part of it came through" : "";
    const reading = event.direction !== "inbound" ? "" : ocr?.status === "read" ? "text read" : ocr ? `text: ${ocr.status}` : "reading…";
    box.append(h("span", { class: "meta" }, [pages, partial, reading].filter(Boolean).join(" · ")));
    return box;
  }

  function eventItem(event: TimelineEvent): HTMLElement {
    const failure = typeof event.data?.failure === "string" ? ` (${event.data.failure})` : "";
    const status = typeof event.data?.status === "string" ? ` · ${event.data.status}${failure}` : "";
    return h(
      "li",
      { class: `event ${event.direction}`, "data-event": String(event.id) },
      h("span", { class: "meta" }, `${when(event.occurred_at)} · ${event.channel ?? ""} · ${event.kind}${status}`),
      faxDocument(event),
      h("span", { class: "body" }, event.body ?? ""),
    );
  }

  // An event reaches a tab both as the answer to our own request and as pushes: keep one.
  // Pushes bring every change of an event, in order; an answer to our own request may come
  // after newer pushes, so it only adds an event not shown yet (fromPush false).
  function addEvent(timeline: HTMLElement, event: TimelineEvent, fromPush = true): void {
    const known = timeline.querySelector(`[data-event="${event.id}"]`);
    if (known && !fromPush) return;
    const item = eventItem(event);
    const atEnd = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
    if (known) known.replaceWith(item);
    else timeline.append(item);
    if (atEnd && !known) timeline.scrollTop = timeline.scrollHeight; // follow the conversation
  }

  function showOffer(offer: Offer): void {
    const id = offer.interaction.id;
    if (offers.querySelector(`[data-offer="${id}"]`)) return;
    const record = offer.customer;
    const countdown = h("span", { class: "countdown" });
    const card = h(
      "article",
      { class: "offer", role: "alertdialog", "aria-label": `Offer of interaction ${id}`, "data-offer": String(id) },
      h("h2", {}, `${offer.interaction.channel.toUpperCase()} from ${record.name ?? record.identities[0]?.value ?? "a customer"}`),
      countdown,
      identities(record),
      h("ol", { class: "timeline compact" }, ...[...record.latest_events].reverse().map(eventItem)),
      h("button", { class: "accept", onclick: () => void accept(id) }, "Accept (A)"),
      h("button", { class: "decline", onclick: () => void call("decline", { interaction_id: id }).then(() => card.remove()) }, "Decline (D)"),
    );
    offers.append(card);
    const until = Date.now() + offer.ring_seconds * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((until - Date.now()) / 1000));
      countdown.textContent = `${left} s to answer`;
      if (!card.isConnected) clearInterval(timer);
    };
    const timer = setInterval(tick, 500);
    tick();
    ring();
    (card.querySelector("button.accept") as HTMLButtonElement).focus();
  }

  async function accept(id: number): Promise<void> {
    const ack = await call("accept", { interaction_id: id });
    offers.querySelector(`[data-offer="${id}"]`)?.remove();
    if (ack.ok) await openInteraction(id);
  }

  async function openInteraction(id: number): Promise<void> {
    if (open.has(id)) return select(id);
    if (opening.has(id)) return; // accepted here and announced by the hub: one tab
    opening.add(id);
    try {
      await buildTab(id);
    } finally {
      opening.delete(id);
    }
  }

  async function buildTab(id: number): Promise<void> {
    const interaction = await request<{ id: number; customer_id: number; channel: string; subject: string | null }>("GET", `/api/v1/interactions/${id}`, session.token);
    const record = await request<CustomerRecord>("GET", `/api/v1/customers/${interaction.customer_id}`, session.token);
    const page = await request<{ events: TimelineEvent[]; next_before: string | null }>("GET", `/api/v1/customers/${interaction.customer_id}/timeline?limit=30`, session.token);
    const timeline = h("ol", { class: "timeline", "aria-label": "Timeline" }, ...[...page.events].reverse().map(eventItem));
    let before = page.next_before;
    // Infinite scroll: scrolling to the top of the timeline loads the page before it (the
    // button does the same from the keyboard), keeping what was on screen in place.
    const earlier = h("button", { class: "quiet" }, "Load earlier");
    let loading = false;
    const loadEarlier = async () => {
      if (!before || loading) return;
      loading = true;
      try {
        const more = await request<{ events: TimelineEvent[]; next_before: string | null }>("GET", `/api/v1/customers/${interaction.customer_id}/timeline?limit=30&before=${encodeURIComponent(before)}`, session.token);
        const height = timeline.scrollHeight;
        timeline.prepend(...[...more.events].reverse().filter((e) => !timeline.querySelector(`[data-event="${e.id}"]`)).map(eventItem));
        timeline.scrollTop += timeline.scrollHeight - height;
        before = more.next_before;
        earlier.hidden = !before;
      } finally {
        loading = false;
      }
    };
    earlier.addEventListener("click", () => void loadEarlier());
    earlier.hidden = !before;
    timeline.addEventListener("scroll", () => {
      if (timeline.scrollTop < 40) void loadEarlier();
    });
    const text = h("textarea", { "aria-label": "Reply", rows: "3", placeholder: "Write a reply (Ctrl+Enter sends)" }) as HTMLTextAreaElement;
    // Faxes: a PDF to send as it is; otherwise the text is rendered into a fax.
    const faxFile = h("input", { type: "file", accept: "application/pdf", "aria-label": "Fax a PDF" }) as HTMLInputElement;
    const send = async () => {
      const pdf = faxFile.files?.[0];
      if (!text.value.trim() && !pdf) return;
      try {
        const attachments = pdf ? [{ filename: pdf.name, content_type: "application/pdf", content_base64: await base64(pdf) }] : [];
        const body = text.value.trim() || `Faxed ${pdf?.name ?? "a document"}`;
        const sent = await request<TimelineEvent>("POST", `/api/v1/interactions/${id}/reply`, session.token, { body, attachments });
        faxFile.value = "";
        addEvent(timeline, sent, false);
        text.value = "";
        typedAt = 0;
        notice.textContent = "";
      } catch (err) {
        notice.textContent = err instanceof ApiError ? err.message : String(err);
      }
    };
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.ctrlKey) void send();
    });
    // Chat customers see the agent typing (at most one signal every 2 s while keys are pressed).
    const typingLine = h("p", { class: "typing", "aria-live": "polite" });
    let typedAt = 0;
    if (interaction.channel === "webchat") {
      text.addEventListener("input", () => {
        if (Date.now() - typedAt < 2000) return;
        typedAt = Date.now();
        void call("typing", { interaction_id: id, typing: true });
      });
    }
    const canned = h(
      "select",
      { "aria-label": "Canned reply" },
      h("option", { value: "" }, "Canned reply…"),
      ...CANNED.map((c) => h("option", { value: c }, c.length > 40 ? `${c.slice(0, 40)}…` : c)),
    ) as HTMLSelectElement;
    canned.addEventListener("change", () => {
      text.value = (text.value ? `${text.value}\n` : "") + canned.value;
      canned.value = "";
      text.focus();
    });
    const notes = h("ul", { class: "notes", "aria-label": "Notes" });
    const showNotes = async () => {
      const list = await request<{ notes: { body: string; created_at: string }[] }>("GET", `/api/v1/customers/${interaction.customer_id}/notes`, session.token);
      clear(notes);
      notes.append(...list.notes.map((n) => h("li", {}, `${when(n.created_at)} · ${n.body}`)));
    };
    const note = h("input", { "aria-label": "New note", placeholder: "Add a note" }) as HTMLInputElement;
    const addNote = async () => {
      if (!note.value.trim()) return;
      await request("POST", `/api/v1/customers/${interaction.customer_id}/notes`, session.token, { body: note.value, interaction_id: id });
      note.value = "";
      await showNotes();
    };
    note.addEventListener("keydown", (event) => {
      if (event.key === "Enter") void addNote();
    });
    void showNotes().catch(() => undefined);
    const disposition = h("select", { "aria-label": "Disposition" }, ...DISPOSITIONS.map((d) => h("option", { value: d }, d))) as HTMLSelectElement;
    const started = Date.now();
    const timer = h("span", { class: "timer" });
    const clock = setInterval(() => {
      if (!timer.isConnected) return clearInterval(clock);
      timer.textContent = `${Math.round((Date.now() - started) / 1000)} s`;
    }, 1000);
    const panel = h(
      "section",
      { class: "panel", role: "tabpanel", "data-interaction": String(id) },
      h("h2", {}, `${record.name ?? record.identities[0]?.value ?? "Customer"} · ${interaction.channel} #${id}`),
      interaction.subject ? h("p", { class: "subject" }, `Subject: ${interaction.subject}`) : null,
      identities(record),
      customerDetails(record),
      ...record.merge_suggestions.map((s) =>
        h(
          "p",
          { class: "suggestion", role: "note" },
          `Maybe the same person as customer #${s.customer_ids.find((c) => c !== record.id)}: ${s.reason} `,
          h("button", {
            class: "quiet",
            onclick: async (event: Event) => {
              const other = s.customer_ids.find((c) => c !== record.id);
              try {
                await request("POST", `/api/v1/customers/${record.id}/merge`, session.token, { merge_from: other });
                (event.target as HTMLElement).parentElement?.remove();
              } catch (err) {
                notice.textContent = err instanceof ApiError ? err.message : String(err);
              }
            },
          }, "Merge"),
          h("button", {
            class: "quiet",
            onclick: async (event: Event) => {
              await request("POST", `/api/v1/merge-suggestions/${s.id}/dismiss`, session.token, {});
              (event.target as HTMLElement).parentElement?.remove();
            },
          }, "Not the same"),
        ),
      ),
      interaction.channel === "voice" ? callControls(id, session.token, session.user.id, (m) => (notice.textContent = m)) : null,
      earlier,
      timeline,
      typingLine,
      interaction.channel === "voice"
        ? null
        : interaction.channel === "api"
          ? callBack(record)
          : interaction.channel === "email"
          ? emailComposer(async (draft) => {
              try {
                const sent = await request<TimelineEvent>("POST", `/api/v1/interactions/${id}/reply`, session.token, draft);
                addEvent(timeline, sent, false);
                notice.textContent = "";
                return true;
              } catch (err) {
                notice.textContent = err instanceof ApiError ? err.message : String(err);
                return false;
              }
            })
          : h("div", { class: "reply" }, text, h("div", { class: "reply-tools" }, interaction.channel === "fax" ? faxFile : canned, h("button", { class: "send", onclick: () => void send() }, interaction.channel === "fax" ? "Send fax" : "Send"))),
      h("details", { class: "notes-box" }, h("summary", {}, "Notes"), notes, note),
      h(
        "div",
        { class: "wrapup" },
        timer,
        disposition,
        h("button", {
          class: "wrap",
          onclick: async () => {
            const ack = await call("wrapup", { interaction_id: id, disposition: disposition.value });
            if (ack.ok) close(id);
          },
        }, "Wrap up"),
      ),
    );
    const tab = h("button", { role: "tab", "data-tab": String(id), onclick: () => select(id) }, `#${id} ${interaction.channel}`);
    tabs.append(tab);
    panels.append(panel);
    open.set(id, { tab, panel, timeline, typing: typingLine, channel: interaction.channel });
    seen(id);
    select(id);
    timeline.scrollTop = timeline.scrollHeight; // the newest at the bottom, in view
  }

  // Tell a chat customer the agent has read their messages: when the tab is in front of them.
  const readUpTo = new Map<number, number>();
  function seen(id: number): void {
    const parts = open.get(id);
    if (!parts || parts.channel !== "webchat" || parts.panel.hidden || document.visibilityState !== "visible") return;
    const inbound = [...parts.timeline.querySelectorAll(".event.inbound")];
    const last = Number((inbound[inbound.length - 1] as HTMLElement | undefined)?.dataset.event ?? 0);
    if (!last || (readUpTo.get(id) ?? 0) >= last) return;
    readUpTo.set(id, last);
    void call("read", { interaction_id: id, event_id: last });
  }

  function select(id: number): void {
    for (const [other, parts] of open) {
      const active = other === id;
      parts.panel.hidden = !active;
      parts.tab.setAttribute("aria-selected", String(active));
    }
    seen(id);
  }

  function close(id: number): void {
    const parts = open.get(id);
    parts?.tab.remove();
    parts?.panel.remove();
    open.delete(id);
    const next = [...open.keys()][0];
    if (next !== undefined) select(next);
  }

  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLInputElement) return;
    if (event.key === "/") {
      event.preventDefault();
      search.focus();
      return;
    }
    const first = offers.querySelector<HTMLElement>("[data-offer]");
    if (!first) return;
    const id = Number(first.dataset.offer);
    if (event.key === "a") void accept(id);
    if (event.key === "d") void call("decline", { interaction_id: id }).then(() => first.remove());
  });

  const phoneStatus = h("span", { class: "phone", id: "browser-phone" }, "");
  header.insertBefore(phoneStatus, search);
  let phoneStarted = false;
  const startPhone = () => {
    if (phoneStarted) return;
    phoneStarted = true;
    browserPhone(session.token, (text) => (phoneStatus.textContent = text)).catch((err) => {
      phoneStatus.textContent = `browser phone unavailable: ${err instanceof Error ? err.message : err}`;
    });
  };

  // hello comes on every (re)connect: the agent's state, offers ringing now, and the work they
  // hold (assigned or in wrap-up), which is reopened, so a reload or a new login loses nothing.
  socket.on("hello", (hello: { agent: { presence: string; reason: string | null } | null; offers: Offer[]; work: { id: number }[]; browser_calls: boolean }) => {
    if (hello.browser_calls) startPhone();
    setPresence(hello.agent?.presence ?? "offline", hello.agent?.reason ?? null);
    hello.offers.forEach(showOffer);
    for (const work of hello.work ?? []) {
      void openInteraction(work.id).catch((err) => {
        notice.textContent = err instanceof ApiError ? err.message : String(err);
      });
    }
  });
  // The hub ended this session (logged out elsewhere, expired, deactivated, role changed).
  socket.on("session_ended", (ended: { reason: string }) => {
    socket.disconnect();
    onLogout(`Your session ended: ${ended.reason}.`);
  });
  socket.on("state", (state: { presence: string; reason: string | null }) => setPresence(state.presence, state.reason));
  socket.on("offer", showOffer);
  socket.on("offer_withdrawn", (gone: { interaction_id: number }) => offers.querySelector(`[data-offer="${gone.interaction_id}"]`)?.remove());
  socket.on("assigned", (work: { interaction_id: number }) => void openInteraction(work.interaction_id));
  socket.on("message", (message: { interaction_id: number; event: TimelineEvent }) => {
    const parts = open.get(message.interaction_id);
    if (!parts) return;
    addEvent(parts.timeline, message.event);
    if (message.event.direction === "inbound") {
      parts.typing.textContent = "";
      seen(message.interaction_id);
    }
  });
  const typingTimers = new Map<number, number>();
  socket.on("typing", (typing: { interaction_id: number; typing: boolean }) => {
    const parts = open.get(typing.interaction_id);
    if (!parts) return;
    parts.typing.textContent = typing.typing ? "The customer is typing…" : "";
    clearTimeout(typingTimers.get(typing.interaction_id));
    typingTimers.set(typing.interaction_id, window.setTimeout(() => (parts.typing.textContent = ""), 6000));
  });
  document.addEventListener("visibilitychange", () => {
    for (const id of open.keys()) seen(id);
  });
  socket.on("connect_error", (err: Error) => {
    notice.textContent = `not connected: ${err.message}`;
  });
  socket.on("disconnect", () => {
    status.textContent = "reconnecting…";
  });
}
