// The chat widget a site embeds with one tag:
//   <script src="https://hub.example.com/webchat/widget.js" data-site="shop" async></script>
// It draws itself in a shadow root (the page's CSS cannot break it, nor it the page's), writes
// every text with textContent (nothing a visitor or agent types is ever parsed as HTML), keeps
// the visitor id in localStorage (one conversation across reloads and tabs), and resends what
// the hub did not acknowledge (the client id makes a resend harmless).

import { io, Socket } from "socket.io-client";
import { STRINGS, Strings } from "./strings";

interface SiteSettings {
  id: string;
  name: string;
  title: string;
  greeting: string;
  colour: string;
  position: "right" | "left";
  language: string;
  prechat: { name: Field; email: Field; phone: Field };
  offline_message: string;
}
type Field = "off" | "optional" | "required";

interface ChatMessage {
  id: number;
  interaction_id: number | null;
  direction: "inbound" | "outbound";
  body: string;
  at: string;
  author: string | null;
  status?: string | null;
  attachments: { filename: string; url: string; size: number | null }[];
}

interface Welcome {
  visitor: string;
  site: SiteSettings;
  history: ChatMessage[];
  chat: { interaction_id: number; state: string; agent: string | null } | null;
  availability: { open: boolean; agents: number };
}

interface Ack {
  ok: boolean;
  event_id?: number;
  interaction_id?: number;
  error?: { code: string; message: string };
}

interface Pending {
  client_id: string;
  text: string;
  uploads: string[];
  profile?: Record<string, string>;
}

const script = document.currentScript as HTMLScriptElement | null;

function el(tag: string, attrs: Record<string, string> = {}, ...children: (Node | string | null)[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) if (child !== null) node.append(typeof child === "string" ? document.createTextNode(child) : child);
  return node;
}

function css(colour: string, side: string): string {
  return `
  :host { all: initial; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a1a1a; }
  button, input, textarea { font: inherit; }
  .launcher { position: fixed; bottom: 20px; ${side}: 20px; z-index: 2147483000; border: 0; border-radius: 28px; padding: 12px 18px; background: ${colour}; color: #fff; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
  .panel { position: fixed; bottom: 84px; ${side}: 20px; z-index: 2147483000; width: 340px; max-width: calc(100vw - 40px); height: 480px; max-height: calc(100vh - 110px); display: flex; flex-direction: column; background: #fff; border-radius: 10px; box-shadow: 0 8px 28px rgba(0,0,0,.25); overflow: hidden; }
  .panel[hidden] { display: none; }
  header { background: ${colour}; color: #fff; padding: 10px 12px; display: flex; justify-content: space-between; align-items: center; }
  header button { background: transparent; border: 0; color: #fff; font-size: 20px; cursor: pointer; }
  .status { font-size: 13px; color: #444; padding: 6px 12px; background: #f3f5f8; min-height: 1.2em; }
  .log { flex: 1; overflow-y: auto; padding: 10px 12px; display: flex; flex-direction: column; gap: 6px; margin: 0; list-style: none; }
  .msg { max-width: 80%; padding: 7px 10px; border-radius: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
  .msg.inbound { align-self: flex-end; background: ${colour}; color: #fff; }
  .msg.outbound { align-self: flex-start; background: #eef1f5; }
  .msg .who, .msg .meta { display: block; font-size: 11px; opacity: .8; }
  .msg a { color: inherit; }
  .typing { font-size: 12px; color: #555; padding: 0 12px; min-height: 1.1em; font-style: italic; }
  form { border-top: 1px solid #e3e6ea; padding: 8px; display: grid; gap: 6px; }
  form input, form textarea { border: 1px solid #c3c9d3; border-radius: 6px; padding: 6px 8px; }
  .row { display: flex; gap: 6px; align-items: flex-end; }
  .row textarea { flex: 1; resize: none; }
  .send { background: ${colour}; color: #fff; border: 0; border-radius: 6px; padding: 8px 12px; cursor: pointer; }
  .quiet { background: #fff; color: #333; border: 1px solid #c3c9d3; border-radius: 6px; padding: 6px 10px; cursor: pointer; }
  .stars { display: flex; gap: 4px; }
  .stars button[aria-pressed="true"] { background: ${colour}; color: #fff; }
  .error { color: #9b1c1c; font-size: 13px; }
  :focus-visible { outline: 3px solid #f0b400; outline-offset: 1px; }
  `;
}

class ChatWidget {
  private socket: Socket | null = null;
  private strings: Strings = STRINGS.en;
  private site: SiteSettings | null = null;
  private token: string | null;
  private pending: Pending[];
  private shown = new Set<number>();
  private chatId: number | null = null;
  private started = false;
  private endedAsked = new Set<number>();
  private readonly root: ShadowRoot;
  private readonly launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false" });
  private readonly panel = el("section", { class: "panel", role: "dialog", hidden: "" });
  private readonly title = el("strong");
  private readonly status = el("p", { class: "status", role: "status" });
  private readonly log = el("ol", { class: "log", role: "log", "aria-live": "polite" });
  private readonly typing = el("p", { class: "typing", "aria-live": "polite" });
  private readonly foot = el("div");
  private typingTimer = 0;
  private typedAt = 0;

  constructor(
    private readonly hub: string,
    private readonly siteId: string,
  ) {
    this.token = localStorage.getItem(this.key("visitor"));
    this.pending = JSON.parse(localStorage.getItem(this.key("pending")) ?? "[]") as Pending[];
    const host = el("div", { "data-hub-chat": siteId });
    document.body.append(host);
    this.root = host.attachShadow({ mode: "open" });
  }

  private key(name: string): string {
    return `hub.chat.${this.siteId}.${name}`;
  }

  async start(): Promise<void> {
    const settings = (await (await fetch(`${this.hub}/webchat/sites/${encodeURIComponent(this.siteId)}/settings`)).json()) as SiteSettings;
    this.apply(settings);
    const close = el("button", { type: "button" }, "×");
    this.launcher.addEventListener("click", () => this.toggle());
    close.addEventListener("click", () => this.toggle(false));
    this.panel.append(el("header", {}, this.title, close), this.status, this.log, this.typing, this.foot);
    this.root.append(el("style", {}, css(settings.colour, settings.position)), this.launcher, this.panel);
    if (localStorage.getItem(this.key("open")) === "1") this.toggle(true);
    this.connect();
  }

  private apply(settings: SiteSettings): void {
    this.site = settings;
    this.strings = STRINGS[settings.language.split("-")[0]] ?? STRINGS.en;
    this.title.textContent = settings.title;
    this.launcher.textContent = this.strings.chat;
    this.launcher.setAttribute("aria-label", settings.title);
    this.panel.setAttribute("aria-label", settings.title);
  }

  private toggle(open = this.panel.hidden): void {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    localStorage.setItem(this.key("open"), open ? "1" : "0");
    if (open) {
      this.markRead();
      (this.panel.querySelector("textarea, input") as HTMLElement | null)?.focus();
    }
  }

  private connect(): void {
    const socket = io(`${this.hub}/chat`, {
      transports: ["websocket", "polling"],
      auth: (send) => send({ site: this.siteId, visitor: this.token ?? undefined, ...this.user() }),
    });
    this.socket = socket;
    socket.on("welcome", (welcome: Welcome) => this.welcome(welcome));
    socket.on("message", (data: { event: ChatMessage }) => this.receive(data.event));
    socket.on("agent", (agent: { name: string | null }) => {
      this.say(this.strings.joined(agent.name ?? this.strings.agent));
      this.status.textContent = this.strings.talkingTo(agent.name ?? this.strings.agent);
    });
    socket.on("waiting", (w: { position: number; estimated_seconds: number | null }) => {
      this.status.textContent = this.strings.waiting(w.position, w.estimated_seconds);
    });
    socket.on("typing", (t: { typing: boolean; name: string | null }) => {
      this.typing.textContent = t.typing ? this.strings.typing(t.name ?? this.strings.agent) : "";
      clearTimeout(this.typingTimer);
      this.typingTimer = window.setTimeout(() => (this.typing.textContent = ""), 6000);
    });
    socket.on("read", (r: { up_to: number }) => {
      for (const item of this.log.querySelectorAll<HTMLElement>(".msg.inbound")) {
        if (Number(item.dataset.id) <= r.up_to) (item.querySelector(".meta") as HTMLElement).textContent = this.strings.seen;
      }
    });
    socket.on("ended", (e: { interaction_id: number; rated: boolean }) => this.ended(e.interaction_id, e.rated));
    socket.on("connect_error", () => (this.status.textContent = this.strings.offlineNow));
    socket.on("disconnect", () => (this.status.textContent = this.strings.reconnecting));
  }

  private user(): { user?: { id: string; signature: string } } {
    const id = script?.dataset.userId;
    const signature = script?.dataset.userSignature;
    return id && signature ? { user: { id, signature } } : {};
  }

  private welcome(welcome: Welcome): void {
    this.token = welcome.visitor;
    localStorage.setItem(this.key("visitor"), welcome.visitor);
    this.apply(welcome.site);
    if (!this.shown.size) this.say(welcome.site.greeting);
    welcome.history.forEach((m) => this.receive(m));
    this.chatId = welcome.chat?.interaction_id ?? null;
    this.started = welcome.history.length > 0;
    const nobody = !welcome.availability.open || welcome.availability.agents === 0;
    if (welcome.chat?.agent) this.status.textContent = this.strings.talkingTo(welcome.chat.agent);
    else if (!welcome.chat && nobody) this.status.textContent = welcome.site.offline_message;
    else this.status.textContent = "";
    if (!welcome.chat && nobody && !this.pending.length) this.offlineForm();
    else this.composer();
    void this.resend();
  }

  private receive(message: ChatMessage): void {
    if (this.shown.has(message.id)) return;
    this.shown.add(message.id);
    const who = message.direction === "outbound" ? message.author ?? this.strings.agent : this.strings.you;
    const item = el(
      "li",
      { class: `msg ${message.direction}`, "data-id": String(message.id) },
      el("span", { class: "who" }, who),
      message.body,
      ...message.attachments.map((a) =>
        el("a", { href: `${this.hub}${a.url}?visitor=${encodeURIComponent(this.token ?? "")}`, target: "_blank", rel: "noopener" }, `📎 ${a.filename}`),
      ),
      el("span", { class: "meta" }),
    );
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
    if (message.direction === "outbound") {
      this.typing.textContent = "";
      const read = !this.panel.hidden && document.visibilityState === "visible";
      this.socket?.emit("seen", { event_id: message.id, read });
      if (!read) this.launcher.textContent = `${this.strings.chat} •`;
    }
  }

  private markRead(): void {
    this.launcher.textContent = this.strings.chat;
    const last = [...this.log.querySelectorAll<HTMLElement>(".msg.outbound")].pop();
    if (last) this.socket?.emit("seen", { event_id: Number(last.dataset.id), read: true });
  }

  private say(text: string): void {
    this.log.append(el("li", { class: "msg outbound" }, text));
  }

  private composer(): void {
    const s = this.strings;
    const site = this.site as SiteSettings;
    const error = el("p", { class: "error", role: "alert" });
    const text = el("textarea", { rows: "2", "aria-label": s.message, placeholder: s.placeholder, maxlength: "2000" }) as HTMLTextAreaElement;
    const file = el("input", { type: "file", "aria-label": s.attach, accept: "image/*,application/pdf,text/plain" }) as HTMLInputElement;
    const fields: Record<string, HTMLInputElement> = {};
    const prechat = el("div");
    if (!this.started) {
      for (const name of ["name", "email", "phone"] as const) {
        const rule = site.prechat[name];
        if (rule === "off") continue;
        const input = el("input", { "aria-label": s.fields[name], placeholder: `${s.fields[name]}${rule === "required" ? " *" : ""}`, type: name === "email" ? "email" : name === "phone" ? "tel" : "text" }) as HTMLInputElement;
        if (rule === "required") input.required = true;
        fields[name] = input;
        prechat.append(input);
      }
    }
    const send = el("button", { class: "send", type: "submit" }, s.send);
    const transcript = el("button", { class: "quiet", type: "button" }, s.transcript);
    const form = el("form", {}, prechat, el("div", { class: "row" }, text, send), file, transcript, error) as HTMLFormElement;
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    text.addEventListener("input", () => {
      if (Date.now() - this.typedAt < 2000) return;
      this.typedAt = Date.now();
      this.socket?.emit("typing", { typing: true });
    });
    transcript.addEventListener("click", async () => {
      const email = fields.email?.value || prompt(s.transcriptAsk) || "";
      if (!email) return;
      const ack = await this.call("transcript", { email });
      error.textContent = ack.ok ? s.transcriptSent : ack.error?.message ?? "";
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const uploads: string[] = [];
      try {
        if (file.files?.length) uploads.push(await this.upload(file.files[0]));
      } catch (err) {
        error.textContent = err instanceof Error ? err.message : String(err);
        return;
      }
      if (!text.value.trim() && !uploads.length) return;
      const profile = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v.value.trim()]).filter(([, v]) => v));
      const message: Pending = { client_id: crypto.randomUUID().replace(/-/g, ""), text: text.value, uploads, ...(Object.keys(profile).length ? { profile } : {}) };
      this.remember(message);
      text.value = "";
      this.typedAt = 0; // the next key pressed says "typing" at once
      file.value = "";
      const ack = await this.deliver(message);
      if (!ack.ok) error.textContent = ack.error?.message ?? s.notSent;
      else {
        this.started = true;
        prechat.remove();
      }
    });
    this.foot.replaceChildren(form);
  }

  private offlineForm(): void {
    const s = this.strings;
    const error = el("p", { class: "error", role: "alert" });
    const name = el("input", { "aria-label": s.fields.name, placeholder: s.fields.name }) as HTMLInputElement;
    const email = el("input", { "aria-label": s.fields.email, placeholder: `${s.fields.email} *`, type: "email", required: "" }) as HTMLInputElement;
    const text = el("textarea", { rows: "3", "aria-label": s.message, placeholder: s.leaveMessage, required: "" }) as HTMLTextAreaElement;
    const form = el("form", {}, name, email, text, el("button", { class: "send", type: "submit" }, s.send), error) as HTMLFormElement;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ack = await this.call("leave_message", { client_id: crypto.randomUUID().replace(/-/g, ""), name: name.value || undefined, email: email.value, text: text.value });
      if (!ack.ok) {
        error.textContent = ack.error?.message ?? s.notSent;
        return;
      }
      this.foot.replaceChildren(el("p", { class: "status" }, s.leftMessage));
    });
    this.foot.replaceChildren(form);
  }

  private ended(interactionId: number, rated: boolean): void {
    this.chatId = null;
    this.status.textContent = this.strings.endedNote;
    if (rated || this.endedAsked.has(interactionId)) return;
    this.endedAsked.add(interactionId);
    const s = this.strings;
    let score = 0;
    const stars = el("div", { class: "stars", role: "group", "aria-label": s.rate });
    for (let n = 1; n <= 5; n++) {
      const star = el("button", { type: "button", class: "quiet", "aria-pressed": "false", "aria-label": s.stars(n) }, `${n} ★`);
      star.addEventListener("click", () => {
        score = n;
        stars.querySelectorAll("button").forEach((b, i) => b.setAttribute("aria-pressed", String(i + 1 === n)));
      });
      stars.append(star);
    }
    const comment = el("textarea", { rows: "2", "aria-label": s.comment, placeholder: s.comment }) as HTMLTextAreaElement;
    const error = el("p", { class: "error", role: "alert" });
    const form = el("form", {}, el("strong", {}, s.rate), stars, comment, el("button", { class: "send", type: "submit" }, s.sendRating), error) as HTMLFormElement;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!score) return void (error.textContent = s.pickStars);
      const ack = await this.call("rate", { interaction_id: interactionId, score, comment: comment.value });
      if (!ack.ok) return void (error.textContent = ack.error?.message ?? "");
      this.started = true;
      this.composer();
      this.say(s.thanks);
    });
    this.foot.replaceChildren(form);
  }

  private async upload(file: File): Promise<string> {
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await fetch(`${this.hub}/webchat/uploads?site=${encodeURIComponent(this.siteId)}`, {
      method: "POST",
      headers: { "X-Visitor": this.token ?? "" },
      body: form,
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer?.error?.message ?? this.strings.notSent);
    return answer.upload as string;
  }

  private remember(message: Pending): void {
    this.pending.push(message);
    localStorage.setItem(this.key("pending"), JSON.stringify(this.pending));
  }

  private forget(clientId: string): void {
    this.pending = this.pending.filter((p) => p.client_id !== clientId);
    localStorage.setItem(this.key("pending"), JSON.stringify(this.pending));
  }

  private async deliver(message: Pending): Promise<Ack> {
    const ack = await this.call("message", message);
    if (ack.ok || ack.error?.code !== "unavailable") this.forget(message.client_id);
    if (ack.ok && ack.event_id) {
      this.receive({ id: ack.event_id, interaction_id: ack.interaction_id ?? null, direction: "inbound", body: message.text, at: new Date().toISOString(), author: null, attachments: [] });
      this.chatId = ack.interaction_id ?? this.chatId;
    }
    return ack;
  }

  private async resend(): Promise<void> {
    for (const message of [...this.pending]) await this.deliver(message);
  }

  private call(event: string, data: unknown): Promise<Ack> {
    const socket = this.socket;
    if (!socket?.connected) return Promise.resolve({ ok: false, error: { code: "unavailable", message: this.strings.reconnecting } });
    return socket.timeout(10000).emitWithAck(event, data).catch(() => ({ ok: false, error: { code: "unavailable", message: this.strings.reconnecting } }));
  }
}

const site = script?.dataset.site;
if (script && site) {
  const widget = new ChatWidget(new URL(script.src, location.href).origin, site);
  const go = () => widget.start().catch((err) => console.error("hub chat:", err));
  if (document.body) go();
  else document.addEventListener("DOMContentLoaded", go);
}
