// Admin: what the channels do (Twilio numbers and IVR, greetings, recording, mailboxes), live.

import { request, Session } from "./api";
import { clear, h } from "./dom";
import { checkbox, field, input, numberInput, optionalNumber, select, textarea } from "./form";

interface TwilioValues {
  numbers: Record<string, string>;
  voice_greeting: string;
  hold_music_url: string | null;
  voicemail_seconds: number;
  menu: Record<string, string>;
  menu_prompt: string | null;
  announce_wait: boolean;
  recording: string;
  recording_notice: string;
}

interface MailboxValues {
  display_name: string | null;
  queue: string | null;
  signature: string;
}

interface SiteValues {
  queue: string | null;
  origins: string[];
  colour: string;
  position: string;
  language: string;
  title: string;
  greeting: string;
  prechat_name: string;
  prechat_email: string;
  prechat_phone: string;
  offline_message: string;
}

interface ChannelSettings {
  version: number;
  webchat: { sites: { id: string; name: string; identity_secret: boolean; values: SiteValues; file: SiteValues }[] };
  twilio: { configured: boolean; account_sid: string | null; api_base_url: string; browser_calls: boolean; values: TwilioValues; file: TwilioValues };
  email: {
    subject_window_days: number;
    mailboxes: { name: string; address: string; imap: string; smtp: string; username: string; values: MailboxValues; file: MailboxValues }[];
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

// Rows of key -> queue, editable, with a row to add.
function pairsEditor(caption: string, keyLabel: string, pairs: Record<string, string>, queues: string[]) {
  const body = h("tbody", {});
  const rows: { key: HTMLInputElement; queue: HTMLSelectElement; row: HTMLElement }[] = [];
  const add = (key: string, queue: string) => {
    const keyInput = input(`${keyLabel} ${rows.length + 1}`, key, { size: "16" });
    const queueSelect = select(`Queue for ${keyLabel.toLowerCase()} ${rows.length + 1}`, queues, queue);
    const row = h("tr", {}, h("td", {}, keyInput), h("td", {}, queueSelect));
    const entry = { key: keyInput, queue: queueSelect, row };
    row.append(h("td", {}, h("button", { class: "quiet", onclick: () => { row.remove(); rows.splice(rows.indexOf(entry), 1); } }, "Remove")));
    rows.push(entry);
    body.append(row);
  };
  for (const [key, queue] of Object.entries(pairs)) add(key, queue);
  const table = h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, keyLabel), h("th", { scope: "col" }, "Queue"), h("th", { scope: "col" }, ""))),
    body,
  );
  const addButton = h("button", { class: "quiet", onclick: () => add("", queues[0] ?? "") }, `Add ${keyLabel.toLowerCase()}`);
  const value = () => Object.fromEntries(rows.map((r) => [r.key.value.trim(), r.queue.value] as const).filter(([k]) => k));
  return { element: h("div", {}, table, h("p", { class: "board-controls" }, addButton)), value };
}

export async function channelsScreen(root: HTMLElement, session: Session, say: (message: unknown) => void, queues: string[]): Promise<void> {
  const shown = await request<ChannelSettings>("GET", "/api/v1/channels/settings", session.token);
  const again = () => channelsScreen(root, session, say, queues).catch(say);
  const t = shown.twilio.values;
  const numbers = pairsEditor("Phone numbers (SMS and calls) and the queue each feeds", "Number", t.numbers, queues);
  const menu = pairsEditor("IVR menu: a key (or the queue's name, spoken) and its queue", "Key", t.menu, queues);
  const greeting = textarea("Voice greeting", t.voice_greeting, 2);
  const prompt = textarea("Menu prompt", t.menu_prompt, 2);
  const hold = input("Hold music URL", t.hold_music_url, { size: "40", placeholder: "Twilio's own music" });
  const voicemail = numberInput("Longest voicemail seconds", t.voicemail_seconds, 10, 600);
  const announce = checkbox("Tell waiting callers their place in line", t.announce_wait);
  const recording = select("Recording", [["off", "off"], ["announce", "announce, then record"], ["ask", "ask for consent"]], t.recording);
  const notice = textarea("Recording notice", t.recording_notice, 2);
  const window = numberInput("Subject threading window days", shown.email.subject_window_days, 0, 365);
  const mailboxes = shown.email.mailboxes.map((m) => ({
    name: m.name,
    file: m.file,
    queue: select(`Queue of mailbox ${m.name}`, [["", "the email route"], ...queues.map((q): [string, string] => [q, q])], m.values.queue),
    displayName: input(`Display name of mailbox ${m.name}`, m.values.display_name, { size: "20" }),
    signature: textarea(`Signature of mailbox ${m.name}`, m.values.signature, 3),
    row: m,
  }));

  const PRECHAT: [string, string][] = [["off", "not asked"], ["optional", "optional"], ["required", "required"]];
  const sites = shown.webchat.sites.map((site) => {
    const v = site.values;
    const label = (what: string) => `${what} of chat site ${site.id}`;
    return {
      site,
      controls: {
        title: input(label("Title"), v.title, { size: "24" }),
        greeting: textarea(label("Greeting"), v.greeting, 2),
        colour: input(label("Colour"), v.colour, { type: "color" }),
        position: select(label("Position"), ["right", "left"], v.position),
        language: select(label("Language"), [["en", "English"], ["zh", "中文"], ["es", "Español"]], v.language),
        queue: select(label("Queue"), [["", "the webchat route"], ...queues.map((q): [string, string] => [q, q])], v.queue),
        origins: input(label("Origins"), v.origins.join(", "), { size: "40", placeholder: "https://shop.example.com" }),
        prechat_name: select(label("Pre-chat name"), PRECHAT, v.prechat_name),
        prechat_email: select(label("Pre-chat email"), PRECHAT, v.prechat_email),
        prechat_phone: select(label("Pre-chat phone"), PRECHAT, v.prechat_phone),
        offline_message: textarea(label("Offline message"), v.offline_message, 2),
      } as Record<keyof SiteValues, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>,
    };
  });

  const save = async (overrides: unknown, done: string) => {
    try {
      await request("PUT", "/api/v1/channels/settings", session.token, { overrides, base_version: shown.version });
      await again();
      say(done);
    } catch (err) {
      say(err);
    }
  };
  const collect = () => {
    // Only what differs from the file is an override: the rest keeps following the file.
    const file = shown.twilio.file;
    const twilio: Record<string, unknown> = {};
    const wanted: TwilioValues = {
      numbers: numbers.value(),
      voice_greeting: greeting.value,
      hold_music_url: hold.value.trim() || null,
      voicemail_seconds: optionalNumber(voicemail) ?? file.voicemail_seconds,
      menu: menu.value(),
      menu_prompt: prompt.value.trim() || null,
      announce_wait: announce.checked,
      recording: recording.value,
      recording_notice: notice.value,
    };
    for (const [key, value] of Object.entries(wanted)) {
      if (!same(value, file[key as keyof TwilioValues]) && value !== null) twilio[key] = value;
    }
    const boxes: Record<string, Record<string, string>> = {};
    for (const m of mailboxes) {
      const changes: Record<string, string> = {};
      if (m.queue.value && m.queue.value !== m.file.queue) changes.queue = m.queue.value;
      if (m.displayName.value.trim() && m.displayName.value.trim() !== m.file.display_name) changes.display_name = m.displayName.value.trim();
      if (m.signature.value !== m.file.signature) changes.signature = m.signature.value;
      if (Object.keys(changes).length) boxes[m.name] = changes;
    }
    const email: Record<string, unknown> = { mailboxes: boxes };
    const days = optionalNumber(window);
    if (days !== null && days !== shown.email.subject_window_days) email.subject_window_days = days;
    const chatSites: Record<string, Record<string, unknown>> = {};
    for (const { site, controls } of sites) {
      const changes: Record<string, unknown> = {};
      for (const [key, control] of Object.entries(controls) as [keyof SiteValues, HTMLInputElement][]) {
        const value = key === "origins" ? control.value.split(",").map((o) => o.trim()).filter(Boolean) : key === "queue" ? control.value || null : control.value;
        if (value !== null && !same(value, site.file[key])) changes[key] = value;
      }
      if (Object.keys(changes).length) chatSites[site.id] = changes;
    }
    return { twilio, email, webchat: { sites: chatSites } };
  };

  clear(root);
  root.append(
    h(
      "section",
      { class: "editor-form", "aria-label": "Twilio" },
      h("h3", {}, "Phone and SMS (Twilio)"),
      h(
        "p",
        {},
        shown.twilio.configured
          ? `Account ${shown.twilio.account_sid ?? "?"} at ${shown.twilio.api_base_url}; calls in the browser ${shown.twilio.browser_calls ? "set up" : "not set up"}. Credentials come from the configuration file or environment.`
          : "Twilio is not set up: set twilio.account_sid and twilio.auth_token (HUB_TWILIO__AUTH_TOKEN) in the configuration.",
      ),
      numbers.element,
      menu.element,
      h(
        "div",
        { class: "fields" },
        field("Greeting", greeting),
        field("Menu prompt", prompt, "empty: made from the menu"),
        field("Hold music", hold),
        field("Voicemail (s)", voicemail),
        h("label", { class: "check" }, announce, " announce place in line and wait"),
        field("Recording", recording),
        field("Recording notice", notice),
      ),
    ),
    h(
      "section",
      { class: "editor-form", "aria-label": "Email" },
      h("h3", {}, "Email"),
      shown.email.mailboxes.length
        ? h(
            "table",
            {},
            h("caption", {}, "Mailboxes"),
            h("thead", {}, h("tr", {}, ...["Mailbox", "Servers", "Queue", "From name", "Signature"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              {},
              ...mailboxes.map((m) =>
                h("tr", {}, h("td", {}, `${m.name} <${m.row.address}>`), h("td", {}, `IMAP ${m.row.imap}, SMTP ${m.row.smtp}, as ${m.row.username}`), h("td", {}, m.queue), h("td", {}, m.displayName), h("td", {}, m.signature)),
              ),
            ),
          )
        : h("p", {}, "No mailboxes: add email.mailboxes entries (with their passwords) to the configuration file."),
      h("div", { class: "fields" }, field("Thread by subject within (days)", window)),
    ),
    h(
      "section",
      { class: "editor-form", "aria-label": "Web chat" },
      h("h3", {}, "Web chat"),
      sites.length
        ? null
        : h("p", {}, "No chat sites: add [[webchat.sites]] entries (with their identity secrets) to the configuration file."),
      ...sites.map(({ site, controls }) =>
        h(
          "fieldset",
          { class: "site" },
          h("legend", {}, `${site.name || site.id} (data-site="${site.id}")${site.identity_secret ? ", signs its users" : ""}`),
          h(
            "div",
            { class: "fields" },
            field("Title", controls.title),
            field("Greeting", controls.greeting),
            field("Colour", controls.colour),
            field("Position", controls.position),
            field("Language", controls.language),
            field("Queue", controls.queue),
            field("Pages allowed to chat", controls.origins, "scheme://host[:port], comma between"),
            field("Ask for a name", controls.prechat_name),
            field("Ask for an email", controls.prechat_email),
            field("Ask for a phone", controls.prechat_phone),
            field("When nobody is there", controls.offline_message),
          ),
        ),
      ),
    ),
    h(
      "p",
      { class: "board-controls" },
      h("button", { onclick: () => void save(collect(), "Saved the channel settings.") }, "Save channel settings"),
      " ",
      h("button", { class: "quiet", onclick: () => void save({}, "Back to the configuration file's settings.") }, "Use the file's settings"),
      ` Version ${shown.version}.`,
    ),
  );
}
