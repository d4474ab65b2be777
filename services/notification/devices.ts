/** Push device registration: only well-formed tokens are stored, so every push goes to a plausible device. */
import type { NotificationStore, Platform } from "./store.ts";

// APNs tokens are 64 hex characters; FCM and web-push registration tokens are longer URL-safe strings.
const DEVICE_TOKEN = /^[A-Za-z0-9_:.-]{32,512}$/;

export function isDeviceToken(token: string): boolean {
  return DEVICE_TOKEN.test(token);
}

export function registerDevice(store: NotificationStore, tenantId: string, userId: string, deviceToken: string, platform: Platform, at: string): void {
  if (!isDeviceToken(deviceToken)) throw new RangeError("not a push device token");
  store.addDevice(tenantId, userId, deviceToken, platform, at);
}
