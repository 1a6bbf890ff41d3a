// The email composer: bold, italic, lists and links in a contenteditable box, attachments.
// The hub sanitizes the HTML (nh3) before it keeps or sends it; the text part is the box's text.

import { h } from "./dom";

export interface Draft {
  body: string;
  html: string;
  attachments: { filename: string; content_type: string; content_base64: string }[];
}

export async function base64(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (let start = 0; start < bytes.length; start += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  }
  return btoa(binary);
}

export function emailComposer(send: (draft: Draft) => Promise<boolean>): HTMLElement {
  const editor = h("div", {
    class: "editor",
    contenteditable: "true",
    role: "textbox",
    "aria-multiline": "true",
    "aria-label": "Email reply",
  });
  const files = h("input", { type: "file", multiple: true, "aria-label": "Attach files" }) as HTMLInputElement;
  const command = (name: string, value?: string) => () => {
    editor.focus();
    document.execCommand(name, false, value); // deprecated but still the only rich-text API without a library
  };
  const toolbar = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Formatting" },
    h("button", { type: "button", "aria-label": "Bold", onclick: command("bold") }, "B"),
    h("button", { type: "button", "aria-label": "Italic", onclick: command("italic") }, "I"),
    h("button", { type: "button", "aria-label": "Bulleted list", onclick: command("insertUnorderedList") }, "• list"),
    h("button", {
      type: "button",
      "aria-label": "Link",
      onclick: () => {
        const url = prompt("Link address (https://…)");
        if (url && /^https?:\/\//.test(url)) command("createLink", url)();
      },
    }, "link"),
  );
  const submit = async () => {
    const body = editor.innerText.trim();
    if (!body) return;
    const attachments = await Promise.all(
      [...(files.files ?? [])].map(async (file) => ({
        filename: file.name,
        content_type: file.type || "application/octet-stream",
        content_base64: await base64(file),
      })),
    );
    if (await send({ body, html: editor.innerHTML, attachments })) {
      editor.replaceChildren();
      files.value = "";
    }
  };
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.ctrlKey) void submit();
  });
  return h(
    "div",
    { class: "composer" },
    toolbar,
    editor,
    h("div", { class: "composer-foot" }, files, h("button", { class: "send", onclick: () => void submit() }, "Send email")),
  );
}
