/** auth-service: users, roles, permissions and end-user access tokens per tenant (no downstream calls). */
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { authService } from "./handlers.ts";
import { seedAuth } from "./seed.ts";
import { createSqliteAuthStore } from "./store.ts";
import { createUserTokens } from "./user-tokens.ts";

export const authModule: ServiceModule = {
  name: "auth-service",
  migrationsDir: migrationsNextTo(import.meta.url),
  seed: seedAuth,
  create: (rt) => {
    const store = createSqliteAuthStore(rt.db);
    return authService(store, createUserTokens(store, rt.db, () => rt.now()), rt.logger);
  },
};
