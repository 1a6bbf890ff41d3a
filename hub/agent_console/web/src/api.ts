// The hub's HTTP API, with the session token the login gave.

export interface User {
  id: number;
  username: string;
  display_name: string;
  role: "agent" | "supervisor" | "marketer" | "admin";
}

export interface Session {
  token: string;
  user: User;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// Kept in localStorage, so a second tab of the console is logged in too; logging out in one
// tab logs out all of them (the "storage" event, see main.ts).
const KEY = "hub.session";

export function savedSession(): Session | null {
  const raw = localStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    return null;
  }
}

export function forget(): void {
  localStorage.removeItem(KEY);
}

export function onSessionChange(listener: (session: Session | null) => void): void {
  window.addEventListener("storage", (event) => {
    if (event.key === KEY) listener(savedSession());
  });
}

export async function login(username: string, password: string): Promise<Session> {
  const answer = await request<{ token: string; user: User }>("POST", "/api/v1/auth/login", null, {
    username,
    password,
  });
  const session = { token: answer.token, user: answer.user };
  localStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export async function request<T>(
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return undefined as T;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.code ?? "error", error.message ?? response.statusText);
  }
  return data as T;
}
