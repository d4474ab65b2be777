/**
 * What every service module gets from the process that hosts it (`tt-rpc
 * serve`, the mesh, a test): its database, its identity (for calling other
 * services as itself), a logger, the environment, and a clock.
 *
 * A service module is data plus one factory: where its migrations live, how
 * to seed demo data, and how to build its handlers from a runtime.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import type { MaterialSource } from "@tickettoken/rpc";
import type { Logger } from "@tickettoken/rpc";
import type { ServiceRegistration } from "@tickettoken/rpc";
import type { ServiceName } from "@tickettoken/rpc";
import { closeClient, type ServiceClientOptions } from "@tickettoken/rpc";
import { loadMigrations, openDatabase, transaction, type Database } from "./database.ts";

export interface ServiceRuntime {
  readonly name: ServiceName;
  readonly db: Database;
  /** This service's own identity: downstream calls are made as this workload. */
  readonly identity: MaterialSource;
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  now(): Date;
  /**
   * A generated client of another service, calling as this service. The
   * address comes from `<NAME>_RPC_ADDRESS` / `<NAME>_SERVICE_URL` in `env`
   * (mesh ports by default). Closed when the runtime closes.
   */
  client<C extends object>(factory: (options: ServiceClientOptions) => C, options?: Pick<ServiceClientOptions, "resilience">): C;
}

export interface ServiceModule {
  readonly name: ServiceName;
  /** Directory of `NNN_name.sql` migrations. */
  readonly migrationsDir: string;
  /** Writes the demo data set; called once, in a transaction, when the database is new. */
  seed?(db: Database, now: Date): void;
  /** Builds the service's handlers. */
  create(rt: ServiceRuntime): ServiceRegistration;
}

/** `migrations/` next to a module's index.ts: `migrationsNextTo(import.meta.url)`. */
export function migrationsNextTo(moduleUrl: string): string {
  return join(fileURLToPath(new URL(".", moduleUrl)), "migrations");
}

export interface OpenServiceOptions {
  readonly identity: MaterialSource;
  readonly logger: Logger;
  /** Database file, or ":memory:". */
  readonly database: string;
  /** Seed demo data into a new database (default true). */
  readonly seed?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => Date;
  readonly resilience?: ServiceClientOptions["resilience"];
}

export interface OpenService {
  readonly registration: ServiceRegistration;
  readonly runtime: ServiceRuntime;
  /** Closes downstream clients and the database. */
  close(): void;
}

export function openService(module: ServiceModule, opts: OpenServiceOptions): OpenService {
  const db = openDatabase(opts.database, loadMigrations(module.migrationsDir));
  const now = opts.now ?? (() => new Date());
  const clients: object[] = [];
  try {
    if (opts.seed !== false && module.seed && isNew(db)) {
      transaction(db, () => {
        module.seed!(db, now());
        db.prepare("INSERT INTO demo_seed (seeded_at) VALUES (?)").run(now().toISOString());
      });
    }
    const env = opts.env ?? process.env;
    const runtime: ServiceRuntime = {
      name: module.name,
      db,
      identity: opts.identity,
      logger: opts.logger,
      env,
      now,
      client(factory, options) {
        const resilience = options?.resilience ?? opts.resilience;
        const c = factory({ identity: opts.identity, env, ...(resilience ? { resilience } : {}) });
        clients.push(c);
        return c;
      },
    };
    const registration = module.create(runtime);
    return {
      registration,
      runtime,
      close() {
        for (const c of clients) closeClient(c);
        clients.length = 0;
        if (db.isOpen) db.close();
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}

/** New database: seed once. Tracked in its own table so emptying a business table never re-seeds. */
function isNew(db: Database): boolean {
  db.exec("CREATE TABLE IF NOT EXISTS demo_seed (seeded_at TEXT NOT NULL)");
  return db.prepare("SELECT 1 FROM demo_seed").get() === undefined;
}
