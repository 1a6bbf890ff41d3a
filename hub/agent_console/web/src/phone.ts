// Calls in the browser through Twilio's Voice SDK, when the hub has Voice tokens to give.
//
// The hub rings the agent's browser (client:agent-N) only when the agent asked for it
// ("Answer in browser"), so an incoming call is answered at once.

import { ApiError, request } from "./api";

interface VoiceToken {
  token: string;
  identity: string;
  expires_at: string;
}

export interface BrowserPhone {
  mute(on: boolean): void;
  hangUp(): void;
}

export async function browserPhone(
  sessionToken: string,
  say: (status: string) => void,
): Promise<BrowserPhone | null> {
  let issued: VoiceToken;
  try {
    issued = await request<VoiceToken>("GET", "/api/v1/me/voice-token", sessionToken);
  } catch (err) {
    if (err instanceof ApiError && err.status === 503) return null; // calls in the browser not set up
    throw err;
  }
  const { Device } = await import("@twilio/voice-sdk"); // loaded only where it is used
  const device = new Device(issued.token, { closeProtection: true });
  let current: { mute(on: boolean): void; disconnect(): void } | null = null;
  device.on("incoming", (call) => {
    call.accept();
    current = call;
    say("on a call in the browser");
    call.on("disconnect", () => {
      current = null;
      say("browser phone ready");
    });
  });
  device.on("tokenWillExpire", async () => {
    const fresh = await request<VoiceToken>("GET", "/api/v1/me/voice-token", sessionToken);
    device.updateToken(fresh.token);
  });
  device.on("error", (error: { message: string }) => say(`browser phone: ${error.message}`));
  device.on("registered", () => say("browser phone ready"));
  await device.register();
  return {
    mute: (on) => current?.mute(on),
    hangUp: () => current?.disconnect(),
  };
}
