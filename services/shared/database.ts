/**
 * The services' embedded durable store: one SQLite database per service
 * (`node:sqlite`, built into the pinned Node), schema created and migrated at
 * start-up from versioned SQL files, writes in transactions.
 *
 * Durability: WAL with synchronous=FULL, so a write that was acknowledged
 * (its transaction committed before the RPC answered) survives a SIGKILL and
 * a power cut alike.
 */
import { DatabaseSync } from "node:sqlite";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

export type Database = DatabaseSync;

const MIGRATION_FILE = /^(\d{3,})_[a-z0-9_]+\.sql$/;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Reads `NNN_name.sql` files from a directory, in version order; anything else there is an error. */
export function loadMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .map((name) => {
      const m = MIGRATION_FILE.exec(name);
      if (!m) throw new Error(`${join(dir, name)}: migration files are named NNN_snake_case.sql`);
      return { version: Number(m[1]), name, sql: readFileSync(join(dir, name), "utf8") };
    })
    .sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) throw new Error(`${dir}: two migrations with version ${migrations[i]!.version}`);
  }
  if (migrations.length === 0) throw new Error(`${dir}: no migrations`);
  return migrations;
}

/**
 * Opens (creating if needed) a service database and brings its schema up to
 * date. `path` is a file, or ":memory:" for tests.
 */
export function openDatabase(path: string, migrations: readonly Migration[]): Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    migrate(db, migrations, path);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: Database, migrations: readonly Migration[], path: string): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
  const current = row.v ?? 0;
  const latest = migrations.at(-1)?.version ?? 0;
  // A database written by a newer release: refuse rather than run against a schema we do not know.
  if (current > latest) throw new Error(`${path}: schema version ${current} is newer than this build's ${latest}`);
  const applied = db.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
  for (const m of migrations) {
    if (m.version <= current) continue;
    transaction(db, () => {
      // Another process opening the same file may have applied it while we waited for the write lock.
      if (applied.get(m.version) !== undefined) return;
      db.exec(m.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(m.version, m.name, new Date().toISOString());
    });
  }
}

/**
 * Runs `fn` in one write transaction (BEGIN IMMEDIATE: the write lock is
 * taken up front, so two writers never deadlock on upgrade). Nested calls join
 * the outer transaction.
 */
export function transaction<T>(db: Database, fn: () => T): T {
  if (db.isTransaction) return fn();
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    // One connection serves every handler: a transaction held across an await would swallow other calls' writes.
    if (result instanceof Promise) throw new Error("transaction(): fn must be synchronous (never hold a transaction across an await)");
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}
