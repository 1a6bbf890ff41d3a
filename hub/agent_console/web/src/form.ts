// Small form builders for the admin screens: labelled inputs, selects, checkboxes.

import { h } from "./dom";

export function input(label: string, value: string | number | null | undefined, attrs: Record<string, string> = {}): HTMLInputElement {
  return h("input", { "aria-label": label, value: value === null || value === undefined ? "" : String(value), ...attrs }) as HTMLInputElement;
}

export function numberInput(label: string, value: number | null | undefined, min = 0, max = 100000): HTMLInputElement {
  return input(label, value, { type: "number", min: String(min), max: String(max), size: "6" });
}

export function select(label: string, options: (string | [string, string])[], value: string | null | undefined): HTMLSelectElement {
  const element = h(
    "select",
    { "aria-label": label },
    ...options.map((o) => {
      const [v, text] = typeof o === "string" ? [o, o] : o;
      return h("option", { value: v, selected: v === (value ?? "") }, text);
    }),
  ) as HTMLSelectElement;
  return element;
}

export function checkbox(label: string, checked: boolean): HTMLInputElement {
  return h("input", { type: "checkbox", "aria-label": label, checked }) as HTMLInputElement;
}

export function textarea(label: string, value: string | null | undefined, rows = 3): HTMLTextAreaElement {
  const element = h("textarea", { "aria-label": label, rows: String(rows), cols: "48" }) as HTMLTextAreaElement;
  element.value = value ?? "";
  return element;
}

// A visible label around a control (the control keeps its aria-label for tests and readers).
export function field(text: string, control: HTMLElement, hint = ""): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, text), control, hint ? h("small", {}, hint) : null);
}

// An optional whole number: "" is null.
export function optionalNumber(element: HTMLInputElement): number | null {
  const text = element.value.trim();
  return text === "" ? null : Number(text);
}

export const CHANNELS = ["voice", "sms", "email", "webchat", "fax", "api"];
