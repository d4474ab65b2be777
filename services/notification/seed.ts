/** notification-service's part of the demo data set: push devices of demo users (u-2 has none). */
import type { Database } from "../shared/database.ts";
import { ACME, GLOBEX } from "../shared/demo-data.ts";
import { registerDevice } from "./devices.ts";
import { createSqliteNotificationStore, type Platform } from "./store.ts";

export const DEMO_DEVICES: readonly { tenantId: string; userId: string; deviceToken: string; platform: Platform }[] = [
  { tenantId: ACME, userId: "u-1", deviceToken: "a1".repeat(32), platform: "ios" },
  { tenantId: ACME, userId: "u-1", deviceToken: "fcm-demo-u1-android-0000000000000000000000", platform: "android" },
  { tenantId: GLOBEX, userId: "u-g1", deviceToken: "c3".repeat(32), platform: "ios" },
];

export function seedNotifications(db: Database, now: Date): void {
  const store = createSqliteNotificationStore(db);
  for (const d of DEMO_DEVICES) registerDevice(store, d.tenantId, d.userId, d.deviceToken, d.platform, now.toISOString());
}
