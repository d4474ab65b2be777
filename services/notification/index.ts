/**
 * notification-service: templated email, SMS and push per tenant. Providers
 * (SendGrid, Twilio, push gateway) are local fakes that record what they were
 * asked in the service's database; no downstream RPCs.
 */
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { notificationService } from "./handlers.ts";
import { createFakeProviders } from "./providers.ts";
import { seedNotifications } from "./seed.ts";
import { createSqliteNotificationStore } from "./store.ts";

export const notificationModule: ServiceModule = {
  name: "notification-service",
  migrationsDir: migrationsNextTo(import.meta.url),
  seed: seedNotifications,
  create: (rt) => {
    const store = createSqliteNotificationStore(rt.db);
    const now = () => rt.now();
    return notificationService({ store, providers: createFakeProviders(store, now), logger: rt.logger, now });
  },
};
