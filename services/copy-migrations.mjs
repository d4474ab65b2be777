// Part of `npm run build`: tsc compiles services/ to services/dist/ but copies no SQL, and each
// compiled service reads its migrations next to its own index.js (migrationsNextTo).
import { cpSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";

const root = new URL(".", import.meta.url).pathname;
for (const service of readdirSync(root)) {
  const from = join(root, service, "migrations");
  if (service !== "dist" && existsSync(from)) cpSync(from, join(root, "dist", service, "migrations"), { recursive: true });
}
