/**
 * The durable dedupe store: the DedupeStore contract (claim, complete,
 * release, waiters, stored fingerprint for mismatch checks), persistence of
 * completed responses across a reopen of the database file (in-flight claims
 * are not persisted), TTL expiry on an injected clock, and the size bounds.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteDedupeStore } from "../../services/shared/sqlite-dedupe-store.ts";

const dirs: string[] = [];
const dbs: DatabaseSync[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.isOpen) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function memoryDb(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  dbs.push(db);
  return db;
}

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "tt-dedupe-"));
  dirs.push(dir);
  return join(dir, "svc.db");
}

const bytes = (...b: number[]) => new Uint8Array(b);

describe("sqlite dedupe store: the DedupeStore contract", () => {
  it("claims a new scope, answers the stored response once completed", async () => {
    const s = createSqliteDedupeStore(memoryDb());
    const first = s.begin("a", "fp1");
    expect(first.state).toBe("claimed");
    if (first.state !== "claimed") return;
    s.complete("a", first.token, bytes(1, 2, 3));
    const again = s.begin("a", "fp1");
    expect(again).toEqual({ state: "completed", fingerprint: "fp1", response: bytes(1, 2, 3) });
  });

  it("reports the stored fingerprint, so a different request with the same key can be refused", () => {
    const s = createSqliteDedupeStore(memoryDb());
    const c = s.begin("a", "fp1");
    if (c.state !== "claimed") throw new Error("not claimed");
    const inFlight = s.begin("a", "fp-other");
    expect(inFlight).toMatchObject({ state: "in_flight", fingerprint: "fp1" });
    s.complete("a", c.token, bytes(9));
    expect(s.begin("a", "fp-other")).toMatchObject({ state: "completed", fingerprint: "fp1" });
  });

  it("a duplicate in flight waits on `settled`, which resolves on complete and on release", async () => {
    const s = createSqliteDedupeStore(memoryDb());
    const c = s.begin("a", "fp");
    if (c.state !== "claimed") throw new Error("not claimed");
    const waiting = s.begin("a", "fp");
    if (waiting.state !== "in_flight") throw new Error(`expected in_flight, got ${waiting.state}`);
    s.release("a", c.token);
    await waiting.settled;
    // Released: nothing stored, the next caller claims and runs the handler again.
    const retry = s.begin("a", "fp");
    expect(retry.state).toBe("claimed");
    if (retry.state !== "claimed") return;
    const waiter2 = s.begin("a", "fp");
    if (waiter2.state !== "in_flight") throw new Error("expected in_flight");
    s.complete("a", retry.token, bytes(7));
    await waiter2.settled;
    expect(s.begin("a", "fp")).toMatchObject({ state: "completed", response: bytes(7) });
  });

  it("ignores complete/release with a stale token", () => {
    const s = createSqliteDedupeStore(memoryDb());
    const c = s.begin("a", "fp");
    if (c.state !== "claimed") throw new Error("not claimed");
    s.complete("a", "not-the-token", bytes(1));
    s.release("a", "not-the-token");
    expect(s.begin("a", "fp").state).toBe("in_flight");
    s.complete("a", c.token, bytes(2));
    s.release("a", c.token);
    expect(s.begin("a", "fp")).toMatchObject({ state: "completed", response: bytes(2) });
  });

  it("answers full when the in-flight bound is reached, and claims again once one settles", () => {
    const s = createSqliteDedupeStore(memoryDb(), { maxInFlight: 2 });
    const a = s.begin("a", "fp");
    expect(s.begin("b", "fp").state).toBe("claimed");
    expect(s.begin("c", "fp")).toEqual({ state: "full" });
    if (a.state !== "claimed") throw new Error("not claimed");
    s.complete("a", a.token, bytes(1));
    expect(s.begin("c", "fp").state).toBe("claimed");
  });
});

describe("sqlite dedupe store: durability", () => {
  it("a completed response survives closing and reopening the database file; a claim in flight does not", () => {
    const file = tempFile();
    const db1 = new DatabaseSync(file);
    dbs.push(db1);
    const s1 = createSqliteDedupeStore(db1);
    const done = s1.begin("done", "fp-d");
    const running = s1.begin("running", "fp-r");
    if (done.state !== "claimed" || running.state !== "claimed") throw new Error("not claimed");
    s1.complete("done", done.token, bytes(4, 2));
    db1.close(); // "crash": the running call never completes

    const db2 = new DatabaseSync(file);
    dbs.push(db2);
    const s2 = createSqliteDedupeStore(db2);
    expect(s2.begin("done", "fp-d")).toEqual({ state: "completed", fingerprint: "fp-d", response: bytes(4, 2) });
    expect(s2.begin("running", "fp-r").state).toBe("claimed");
    expect(s2.size).toBe(2);
  });
});

describe("sqlite dedupe store: expiry and bounds", () => {
  it("a stored response expires after the TTL (injected clock) and is removed from the table", () => {
    let now = 1_000_000;
    const db = memoryDb();
    const s = createSqliteDedupeStore(db, { ttlMs: 60_000, now: () => now });
    const c = s.begin("a", "fp");
    if (c.state !== "claimed") throw new Error("not claimed");
    s.complete("a", c.token, bytes(1));
    now += 59_999;
    expect(s.begin("a", "fp").state).toBe("completed");
    now += 1;
    expect(s.begin("a", "fp").state).toBe("claimed");
    expect(db.prepare("SELECT COUNT(*) AS n FROM rpc_dedupe").get()).toEqual({ n: 0 });
  });

  it("expired rows of other scopes are swept when a response is stored", () => {
    let now = 0;
    const db = memoryDb();
    const s = createSqliteDedupeStore(db, { ttlMs: 1_000, now: () => now });
    for (const scope of ["x", "y"]) {
      const c = s.begin(scope, "fp");
      if (c.state === "claimed") s.complete(scope, c.token, bytes(1));
    }
    now = 5_000;
    const z = s.begin("z", "fp");
    if (z.state !== "claimed") throw new Error("not claimed");
    s.complete("z", z.token, bytes(1));
    expect(db.prepare("SELECT scope FROM rpc_dedupe").all()).toEqual([{ scope: "z" }]);
    expect(s.size).toBe(1);
  });

  it("keeps at most maxEntries responses, evicting the oldest first", () => {
    let now = 0;
    const s = createSqliteDedupeStore(memoryDb(), { maxEntries: 3, now: () => now++ });
    for (const scope of ["1", "2", "3", "4"]) {
      const c = s.begin(scope, "fp");
      if (c.state === "claimed") s.complete(scope, c.token, bytes(1));
    }
    expect(s.begin("1", "fp").state).toBe("claimed");
    for (const scope of ["2", "3", "4"]) expect(s.begin(scope, "fp").state).toBe("completed");
  });

  it("keeps the stored bytes under maxBytes, evicting the oldest; a response larger than the bound is not stored", () => {
    let now = 0;
    const s = createSqliteDedupeStore(memoryDb(), { maxBytes: 1_000, now: () => now++ });
    for (const scope of ["a", "b", "c"]) {
      const c = s.begin(scope, "fp");
      if (c.state === "claimed") s.complete(scope, c.token, new Uint8Array(400));
    }
    expect(s.bytes).toBeLessThanOrEqual(1_000);
    expect(s.begin("a", "fp").state).toBe("claimed");
    expect(s.begin("c", "fp").state).toBe("completed");
    const big = s.begin("big", "fp");
    if (big.state !== "claimed") throw new Error("not claimed");
    s.complete("big", big.token, new Uint8Array(2_000));
    expect(s.begin("big", "fp").state).toBe("claimed");
  });
});
